"""Train and measure entropy models on cached latents (training/cache_latents.py).

    python -m training.train_entropy --variants shipped,hyper,elic,cb,groups,hyper_hs192 --minutes 20
    python -m training.train_entropy --variants elic --minutes 40     # resume elic and train to 40 min in total

The transforms are frozen: the cache holds y before the gain, from the
exported encoder, so a variant changes only the code length of the same
quantised latents. Each step draws one rate position t ~ U[0, A-1] per
sample; y_g = y * gain(t), and the loss in bits is

    bits_y (uniform-noise proxy) + bits_z (noise proxy) + sum_c K_c(t) (y_g - y_hat)^2,

with y_hat = mu + round(y_g - mu) (the codec's quantisation) and K = the
weights file's rdo.cost table / rdo.alpha (bits per unit squared latent
error: what a mean shift costs in distortion, without running g_s); each
sample's loss is divided by the shipped model's held-out bpp at its t, so
every rate counts by its relative saving.

Held-out score (``evaluate``): every held-out image (cache split "val",
variant "orig": the val images of training/data.py, centre-cropped to a
multiple of 64) coded whole, at each of the 8 anchors, with the real hard
quantisation y_hat = mu + round(y_g - mu), z_hat = round(h_a(y_g)) and the
scale snapped to the codec's 64-entry table: bpp = (bits_y + bits_z) /
pixels and dpp = the distortion term above per pixel. Also on train.py's 24
val crops ("fixed256") and on the even / odd halves of the val images. For
the shipped model the code length under the real integer h_s and the
quantised CDF tables is measured as well (``shipped_real``).

State: ~/.cache/lmcodec/entropy/<variant>/state.pt (resumable: the time
budget --minutes, in CPU minutes per thread, is the total over all runs of a
variant); results are
appended to ~/.cache/lmcodec/entropy/log.txt and collected in results.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .cache_latents import DEFAULT_CACHE, DEFAULT_WEIGHTS, LatentBank, cache_path
from .context_models import VARIANTS, build_variant, interp_rows

DEFAULT_OUT = Path(os.environ.get("LMCODEC_ENTROPY", Path.home() / ".cache" / "lmcodec" / "entropy"))


class Logger:
    def __init__(self, path: Path | None):
        self.path = path
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, msg: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        print(line, flush=True)
        if self.path:
            with open(self.path, "a") as f:
                f.write(line + "\n")


def k_table(tensors: dict, meta: dict, anchors: int, M: int) -> torch.Tensor:
    """log of the distortion cost per unit squared latent error in bits, (A, M):
    rdo.cost / rdo.alpha (interpolated in the log domain, as the codec does)."""
    if "rdo.cost" not in tensors:
        return torch.full((anchors, M), -50.0)
    K = np.asarray(tensors["rdo.cost"], dtype=np.float64) / float(meta.get("rdo.alpha", 1.0))
    return torch.from_numpy(np.log(K)).float()


COMPACT_DIR = Path(__file__).resolve().parent / "checkpoints" / "entropy"


def compact_path(name: str) -> Path:
    """The committed compact state of a variant (fp16 weights, step, budget used)."""
    return COMPACT_DIR / f"{name}.pt"


def compact_for(name: str, base) -> dict | None:
    """The committed compact state of a variant if it was trained on these base weights, else None."""
    if not compact_path(name).exists():
        return None
    st = torch.load(compact_path(name), map_location="cpu", weights_only=False)
    return st if st.get("base_model_id") == bytes(base._loaded_meta["model_id"]).hex() else None


def save_compact(name: str, out: Path, base_model_id: str) -> Path:
    """Writes the compact state of a variant from its resume state under ``out``."""
    st = torch.load(out / name / "state.pt", map_location="cpu", weights_only=False)
    compact = {"model_fp16": {k: v.half() if v.is_floating_point() else v for k, v in st["model"].items()},
               "step": int(st["step"]), "elapsed": float(st["elapsed"]), "variant": name,
               "base_model_id": base_model_id}
    atomic_save(compact, compact_path(name))
    return compact_path(name)


def atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


# ------------------------------------------------------------------ eval --

@torch.no_grad()
def evaluate(model, bank: LatentBank, logK: torch.Tensor, anchors: int, ts=None) -> dict:
    """Hard-quantised code length of every image of ``bank`` at each rate position.
    Returns {"t": [...], "bpp": [...], "dpp": [...], "bpp_even", "bpp_odd", "pixels"}."""
    model.eval()
    ts = list(range(anchors)) if ts is None else ts
    res = {"t": ts, "bpp": [], "bpp_y": [], "dpp": [], "bpp_even": [], "bpp_odd": []}
    px = np.array([h * w for h, w in bank.pixels], dtype=np.float64)
    for t in ts:
        tt = torch.tensor([float(t)])
        K = torch.exp(interp_rows(logK, tt))
        bits = np.zeros(len(bank))
        bits_y = np.zeros(len(bank))
        dist = np.zeros(len(bank))
        for i, y in enumerate(bank.images):
            out = model(y.float().unsqueeze(0), tt, K, train=False)
            bits[i] = float(out["bits_y"] + out["bits_z"])
            bits_y[i] = float(out["bits_y"])
            dist[i] = float(out["dist"])
        res["bpp"].append(bits.sum() / px.sum())
        res["bpp_y"].append(bits_y.sum() / px.sum())
        res["dpp"].append(dist.sum() / px.sum())
        res["bpp_even"].append(bits[0::2].sum() / px[0::2].sum())
        res["bpp_odd"].append(bits[1::2].sum() / px[1::2].sum())
    res["pixels"] = float(px.sum())
    res["images"] = len(bank)
    model.train()
    return res


@torch.no_grad()
def evaluate_real(weights: Path, bank: LatentBank, anchors: int) -> dict:
    """The shipped model's code length with the codec's own integer h_s and
    quantised CDF tables (plain rounding, no RDO), per anchor."""
    from .reference_codec import ReferenceCodec, _code_length

    rc = ReferenceCodec(weights)
    model = rc.model
    px = np.array([h * w for h, w in bank.pixels], dtype=np.float64)
    res = {"t": list(range(anchors)), "bpp": [], "bpp_even": [], "bpp_odd": []}
    zc, yc = rc.z_tables, rc.y_tables
    for t in range(anchors):
        gain, _ = model.gains(float(t))
        bits = np.zeros(len(bank))
        for i, y in enumerate(bank.images):
            yg = y.float().unsqueeze(0) * gain.view(1, -1, 1, 1)
            z = torch.round(model.h_a(yg))[0].to(torch.int64)
            b = 0.0
            for c in range(z.shape[0]):
                n = z[c].numel()
                b += _code_length(zc.cdfs[c][None, :], z[c].reshape(-1).numpy() - zc.offsets[c],
                                  np.full(n, zc.lengths[c] - 2), np.zeros(n, dtype=np.int64))
            mu, idx = rc._params(z.unsqueeze(0))
            r = torch.round(yg - mu)[0].reshape(-1).to(torch.int64).numpy()
            idx = idx[0].reshape(-1).numpy().astype(np.int64)
            b += _code_length(yc.cdfs, r - yc.offsets[idx], yc.lengths[idx] - 2, idx)
            bits[i] = b
        res["bpp"].append(bits.sum() / px.sum())
        res["bpp_even"].append(bits[0::2].sum() / px[0::2].sum())
        res["bpp_odd"].append(bits[1::2].sum() / px[1::2].sum())
    return res


def savings(ev: dict, ref: dict) -> dict:
    """Per-anchor relative change vs ref (negative = fewer bits), and the mean over anchors.
    'rate' compares bpp; 'rdj' is the change of bpp + dpp (dpp: the distortion
    term in bits per pixel) relative to the reference's bpp, i.e. the rate
    saving at equal distortion to first order."""
    out = {}
    for key, f in (("rate", lambda e, i: e["bpp"][i]), ("rdj", lambda e, i: e["bpp"][i] + e["dpp"][i]),
                   ("rate_even", lambda e, i: e["bpp_even"][i]), ("rate_odd", lambda e, i: e["bpp_odd"][i])):
        if key == "rdj" and ("dpp" not in ev or "dpp" not in ref):
            continue
        den = (lambda e, i: e["bpp"][i]) if key == "rdj" else f
        per = [100.0 * (f(ev, i) - f(ref, i)) / den(ref, i) for i in range(len(ev["t"]))]
        out[key + "_pct"] = [round(p, 3) for p in per]
        out[key + "_pct_mean"] = round(float(np.mean(per)), 3)
    return out


# ------------------------------------------------------------------ train --

def load_results(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {}


def save_results(path: Path, res: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, path)


def run_variant(name: str, base, logK: torch.Tensor, train_bank: LatentBank | None, val_banks: dict, args,
                log: Logger, results: dict, results_path: Path) -> None:
    A = base.cfg.anchors
    model = build_variant(base, name)
    macs = model.decode_macs_per_pixel()
    macs["ctx_plus_hs_delta"] = macs["ctx"] + macs["h_s"] - results.get("_hs_macs", macs["h_s"])
    entry = results.setdefault(name, {})
    entry["spec"] = model.spec.to_dict()
    entry["decode_mac_per_px"] = {k: round(v, 1) for k, v in macs.items()}
    state_path = Path(args.out) / name / "state.pt"
    ref = results.get("shipped", {}).get("final", {}).get("val")

    def do_eval(step: int, minutes: float, final: bool) -> dict:
        ev = {k: evaluate(model, b, logK, A) for k, b in val_banks.items()}
        rec = {"step": step, "minutes": round(minutes, 2), "val": ev["val"]}
        if "fixed256" in ev:
            rec["fixed256"] = ev["fixed256"]
        if ref is not None:
            rec["vs_shipped_val"] = savings(ev["val"], ref)
            if "fixed256" in ev and "fixed256" in results["shipped"]["final"]:
                rec["vs_shipped_fixed256"] = savings(ev["fixed256"], results["shipped"]["final"]["fixed256"])
        summ = rec.get("vs_shipped_val", {})
        log(f"[{name}] eval step {step} ({minutes:.1f} min): val bpp "
            f"{[round(float(v), 4) for v in ev['val']['bpp']]} dpp {[round(float(v), 4) for v in ev['val']['dpp']]} "
            f"rate {summ.get('rate_pct_mean')} % rd(J) {summ.get('rdj_pct_mean')} % "
            f"(even {summ.get('rate_even_pct_mean')} / odd {summ.get('rate_odd_pct_mean')}) "
            f"fixed256 rate {rec.get('vs_shipped_fixed256', {}).get('rate_pct_mean')} %")
        entry.setdefault("evals", []).append({k: v for k, v in rec.items() if k not in ("val", "fixed256")}
                                             | {"bpp": ev["val"]["bpp"], "dpp": ev["val"]["dpp"]})
        if final:
            entry["final"] = rec
        save_results(results_path, results)
        return rec

    if not model.spec.trainable:
        if "final" not in entry:
            do_eval(0, 0.0, True)
        return

    ctx_params = list(model.context_parameters())
    ctx_ids = {id(p) for p in ctx_params}
    main = [p for n, p in model.named_parameters() if id(p) not in ctx_ids and not n.endswith("quantiles")]
    new_hs = [p for p in model.h_s.parameters()] if model.spec.hs_hidden else []
    new_ids = {id(p) for p in new_hs}
    main = [p for p in main if id(p) not in new_ids]
    aux = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    groups = [{"params": main, "lr": args.lr, "base_lr": args.lr}]
    if ctx_params:
        groups.append({"params": ctx_params, "lr": args.ctx_lr, "base_lr": args.ctx_lr})
    if new_hs:
        groups.append({"params": new_hs, "lr": args.lr * 3, "base_lr": args.lr * 3})
    opt = torch.optim.Adam(groups)
    aux_opt = torch.optim.Adam(aux, lr=1e-3)
    step, elapsed = 0, 0.0
    rng = np.random.default_rng(args.seed)
    if state_path.exists():
        st = torch.load(state_path, map_location="cpu", weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        aux_opt.load_state_dict(st["aux_opt"])
        step, elapsed = int(st["step"]), float(st["elapsed"])
        rng = np.random.default_rng(args.seed + step)
        log(f"[{name}] resumed at step {step}, {elapsed / 60:.1f} min")
    elif compact_for(name, base) is not None:  # a fresh machine: the committed compact state (weights only)
        st = compact_for(name, base)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in st["model_fp16"].items()})
        step, elapsed = int(st["step"]), float(st["elapsed"])
        rng = np.random.default_rng(args.seed + step)
        log(f"[{name}] started from {compact_path(name)} (step {step}, {elapsed / 60:.1f} min; fresh optimiser)")
    budget = args.minutes * 60
    if elapsed >= budget and "final" in entry and entry["final"]["step"] == step:
        log(f"[{name}] done already ({step} steps, {elapsed / 60:.1f} min); skipped")
        return
    log(f"[{name}] spec {model.spec.to_dict()} decode MAC/px {entry['decode_mac_per_px']} "
        f"params ctx {sum(p.numel() for p in ctx_params)} budget {args.minutes} min")

    # per-sample weights: 1 / the shipped model's held-out bpp at t (log-interpolated)
    ref_bpp = torch.tensor(ref["bpp"] if ref else [1.0] * A, dtype=torch.float32).log().view(A, 1)
    px_per_sample = args.crop * args.crop * 256
    model.train()
    # The budget is counted in this process's CPU time per thread, not wall
    # time: on a machine shared with other jobs (nice 19), minutes spent
    # waiting for a core must not eat the schedule. On an idle machine the
    # two agree.
    def clock() -> float:
        return time.process_time() / max(1, torch.get_num_threads())

    last_save = time.time()
    last_eval = clock()  # evaluations every --eval-every minutes of training CPU time, like the budget
    run_t0 = clock()
    run_elapsed0 = elapsed
    ema_loss = None
    step0 = step
    while elapsed < budget:
        frac = elapsed / budget
        warm = min(1.0, (step + 1) / args.warmup)
        d0 = 1 - args.decay_frac
        decay = 1.0
        if frac > d0:
            f = (frac - d0) / args.decay_frac
            decay = args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, f)))
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * warm * decay
        y, t = train_bank.sample(args.batch, args.crop, rng, A)
        K = torch.exp(interp_rows(logK, t))
        out = model(y, t, K, train=True)
        w = torch.exp(-interp_rows(ref_bpp, t)[:, 0])  # 1 / bpp_ref(t)
        per = (out["bits_y"] + out["bits_z"] + args.dist_weight * out["dist"]) / px_per_sample
        loss = (per * w).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip > 0:
            torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], args.clip)
        opt.step()
        a = model.z_prior.aux_loss()
        aux_opt.zero_grad(set_to_none=True)
        a.backward()
        aux_opt.step()
        step += 1
        elapsed = run_elapsed0 + (clock() - run_t0)
        lv = float(loss.detach())
        if not math.isfinite(lv):
            log(f"[{name}] non-finite loss at step {step}; stopping this variant")
            return
        ema_loss = lv if ema_loss is None else 0.98 * ema_loss + 0.02 * lv
        if step % 50 == 0:
            log(f"[{name}] step {step} {elapsed / 60:.1f} min loss(rel) {ema_loss:.4f} "
                f"lr {opt.param_groups[0]['lr']:.2e} cpu s/step {(clock() - run_t0) / max(1, step - step0):.2f}")
        now = time.time()
        if now - last_save > args.save_every * 60:
            atomic_save({"model": model.state_dict(), "opt": opt.state_dict(), "aux_opt": aux_opt.state_dict(),
                         "step": step, "elapsed": elapsed}, state_path)
            last_save = now
        if clock() - last_eval > args.eval_every * 60 and elapsed < budget:
            c0 = clock()
            do_eval(step, elapsed / 60, False)
            last_eval = clock()
            run_t0 += last_eval - c0  # evaluation time does not count as training time
    atomic_save({"model": model.state_dict(), "opt": opt.state_dict(), "aux_opt": aux_opt.state_dict(),
                 "step": step, "elapsed": elapsed}, state_path)
    entry["steps"] = step
    entry["minutes"] = round(elapsed / 60, 2)
    do_eval(step, elapsed / 60, True)


def report(results: dict) -> str:
    """A markdown table of every measured variant, recomputed from the stored
    held-out measurements: the final one, or the latest of a run still going."""
    ship = results.get("shipped", {}).get("final")
    if not ship:
        return "(no shipped-model measurement yet)"
    ref = ship["val"]
    lines = ["| variant | decode MAC/px (h_s + context) | steps | min | rate % (mean of 8 anchors) | even / odd % | "
             "rate+dist % | fixed256 rate % | rate % per anchor (t = 0..7) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, entry in results.items():
        if name.startswith("_") or name == "shipped_real" or not entry.get("evals"):
            continue
        mac = entry.get("decode_mac_per_px", {})
        fin = entry.get("final")
        last = entry["evals"][-1]
        final = fin is not None and fin["step"] == last["step"]
        if final:
            v = fin["val"]
        else:
            v = {"t": ref["t"], "bpp": last["bpp"], "bpp_even": last["bpp"], "bpp_odd": last["bpp"]}
            if "dpp" in last:
                v["dpp"] = last["dpp"]
        sv = savings(v, ref)
        eo = f"{sv['rate_even_pct_mean']:+.2f} / {sv['rate_odd_pct_mean']:+.2f}" if final else ""
        fx = ""
        if final and "fixed256" in fin and "fixed256" in ship:
            fx = f"{savings(fin['fixed256'], ship['fixed256'])['rate_pct_mean']:+.2f}"
        rdj = f"{sv['rdj_pct_mean']:+.2f}" if "rdj_pct_mean" in sv else ""
        tag = "" if final else " (in progress)"
        lines.append(f"| {name}{tag} | {mac.get('h_s', 0):.0f} + {mac.get('ctx', 0):.0f} | {last['step']} | "
                     f"{last['minutes']:.1f} | {sv['rate_pct_mean']:+.2f} | {eo} | {rdj} | {fx} | "
                     f"{' '.join(f'{p:+.2f}' for p in sv['rate_pct'])} |")
    real = results.get("shipped_real")
    lines.append("")
    lines.append(f"Shipped model, held-out bpp per anchor (float measure): {' '.join(f'{b:.4f}' for b in ref['bpp'])}; "
                 f"distortion term dpp: {' '.join(f'{b:.4f}' for b in ref['dpp'])}.")
    if real:
        lines.append(f"With the codec's integer h_s and CDF tables: {' '.join(f'{b:.4f}' for b in real['val']['bpp'])} "
                     f"({real['vs_float_val']['rate_pct_mean']:+.2f} % vs the float measure).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="shipped,hyper,elic,cb,groups,hyper_hs192")
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    ap.add_argument("--latents", default=None, help="cache dir (default: cache_latents' dir for these weights)")
    ap.add_argument("--train-variants", default=None, help="cached train variants to use (default: all found)")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--minutes", type=float, default=20.0,
                    help="training budget per variant: CPU minutes per thread, total over resumes")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop", type=int, default=16, help="latent crop size (x16 pixels)")
    ap.add_argument("--lr", type=float, default=1e-4, help="hyperprior parts (fine-tuned from the shipped weights)")
    ap.add_argument("--ctx-lr", type=float, default=1e-3, help="context nets (new)")
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--decay-frac", type=float, default=0.4)
    ap.add_argument("--dist-weight", type=float, default=1.0)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--eval-every", type=float, default=6.0, help="CPU minutes per thread of training between evaluations")
    ap.add_argument("--save-every", type=float, default=5.0, help="minutes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-real", action="store_true", help="skip the shipped model's real-table measurement")
    ap.add_argument("--report", action="store_true", help="print the results table (markdown) and exit")
    ap.add_argument("--save-compact", action="store_true",
                    help="write training/checkpoints/entropy/<variant>.pt (fp16 weights, step, budget used) from the "
                         "resume state of each --variants and exit; a machine without a resume state starts from it")
    args = ap.parse_args(argv)
    if args.report:
        print(report(load_results(Path(args.out) / "results.json")))
        return 0
    if args.save_compact:
        from . import lmw

        for name in [v for v in args.variants.split(",") if v]:
            p = save_compact(name, Path(args.out), lmw.read(Path(args.weights)).model_id.hex())
            print(f"{name}: {p} ({p.stat().st_size / 1e6:.1f} MB)")
        return 0

    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = Logger(out / "log.txt")
    results_path = out / "results.json"
    results = load_results(results_path)

    from . import lmw
    from .export import load_hyperprior_weights

    wf = lmw.read(Path(args.weights))
    base = load_hyperprior_weights(None, args.weights).eval()
    for p in base.parameters():
        p.requires_grad_(False)
    A, M = base.cfg.anchors, base.cfg.M
    logK = k_table(wf.tensors, wf.meta, A, M)
    lat = Path(args.latents) if args.latents else cache_path(args.weights, DEFAULT_CACHE)
    val_banks = {"val": LatentBank(lat, "val", ["orig"])}
    try:
        val_banks["fixed256"] = LatentBank(lat, "val", ["fixed256"])
    except FileNotFoundError:
        pass
    names = [v for v in args.variants.split(",") if v]
    train_bank = None
    if any(VARIANTS[n].trainable for n in names):
        tv = args.train_variants.split(",") if args.train_variants else None
        train_bank = LatentBank(lat, "train", tv)
        n_pos = sum(im.shape[1] * im.shape[2] for im in train_bank.images)
        log(f"[data] train: {len(train_bank)} images ({sorted(set(train_bank.variant_of))}), {n_pos} latent positions; "
            f"val: {len(val_banks['val'])} images, {val_banks['val'].pixels and sum(h * w for h, w in val_banks['val'].pixels)} px")
    results["_meta"] = {"weights": str(args.weights), "model_id": wf.model_id.hex(), "latents": str(lat),
                        "args": vars(args)}
    if "_hs_macs" not in results:
        results["_hs_macs"] = build_variant(base, "shipped").decode_macs_per_pixel()["h_s"]
    # the reference point: the shipped entropy model, float (the variants' own measure) and real tables
    if "shipped" not in results or "final" not in results.get("shipped", {}):
        run_variant("shipped", base, logK, None, val_banks, args, log, results, results_path)
    if not args.no_real and "shipped_real" not in results:
        t0 = time.time()
        real = {k: evaluate_real(Path(args.weights), b, A) for k, b in val_banks.items()}
        results["shipped_real"] = real | {"vs_float_val": savings(real["val"], results["shipped"]["final"]["val"])}
        save_results(results_path, results)
        log(f"[shipped_real] integer h_s + CDF tables: val bpp {[round(float(v), 4) for v in real['val']['bpp']]} "
            f"({results['shipped_real']['vs_float_val']['rate_pct_mean']} % vs the float measure; {time.time() - t0:.0f} s)")
    for name in names:
        if name == "shipped":
            continue
        run_variant(name, base, logK, train_bank, val_banks, args, log, results, results_path)
    log("[done] " + json.dumps({n: results[n].get("final", {}).get("vs_shipped_val", {}).get("rate_pct_mean")
                                for n in names if n in results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
