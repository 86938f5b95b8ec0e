"""Train the variable-rate mean-scale hyperprior.

    python -m training.train --minutes 150 --resume          # the campaign
    python -m training.train --tiny --steps 5 --no-save       # smoke test
    torchrun --nproc_per_node=N -m training.train ...         # data-parallel (DDP) on N processes / GPUs

Data parallel: under torchrun (WORLD_SIZE > 1) each rank builds its own
slice of the global ``--batch`` (the ranks' banks draw the same random crop
choices from a seed rank 0 broadcasts, and each rank decodes only its slice),
the model is wrapped in DistributedDataParallel (gloo on CPU, NCCL on GPUs,
one GPU per local rank), the rate position t is shared by the whole global
batch, and rank 0 alone validates, logs and writes checkpoints. The result
equals a single process with the same global batch, up to the order of
floating-point sums (tests/test_training.py runs 2 CPU ranks against 1).

Resume state (fp32 weights, EMA weights, optimizer, step, RNG) lives outside
the repository, in ``--cache`` (default ~/.cache/lmcodec/train/<name>). With
``--resume`` and no cache, training starts from the committed export
(python/lmcodec/models/<name>.lmw) if there is one, otherwise from scratch.

Each step draws one continuous rate position t ~ U[0, A-1] for the whole
batch; lambda and the gain vectors are interpolated at t. The loss is
lambda*255^2*MSE + bpp (uniform-noise rate proxy, straight-through rounding
for what the decoder sees) plus the factorized prior's quantile aux loss.
Learning rate: linear warm-up, then constant, then cosine decay over the last
``--decay-frac`` of a run's budget. Adam at 1e-3 learns about 1.5x faster per
step than 3e-4 here (held-out loss after 200 steps: 2.61 vs 3.72 at the middle
rate; session 2 measurements), and the KLT-initialised shortcut (models.py)
starts the model as a working transform codec. An EMA of the weights is kept and is what
gets exported.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .data import DEFAULT_ROOT, PatchBank
from .models import TINY_CONFIG, HyperpriorConfig, MeanScaleHyperprior, rd_loss
from .state import COMPACT_DIR, atomic_save, cache_dir, load_compact, save_compact  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EXPORT = REPO / "python" / "lmcodec" / "models"


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for pe, p in zip(self.model.parameters(), model.parameters()):
            pe.mul_(d).add_(p.detach(), alpha=1 - d)


def lr_at(step: int, run_start: int, run_steps: int | None, args) -> float:
    lr = args.lr * min(1.0, (step + 1) / max(1, args.warmup))
    if run_steps:
        k = step - run_start
        decay_start = int(run_steps * (1 - args.decay_frac))
        if k >= decay_start:
            frac = (k - decay_start) / max(1, run_steps - decay_start)
            lr = args.min_lr + (lr - args.min_lr) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
    return lr


@torch.no_grad()
def validate(model: MeanScaleHyperprior, val: torch.Tensor, device) -> dict[str, float]:
    model.eval()
    res = {}
    A = model.cfg.anchors
    for t in (0.0, (A - 1) / 2, float(A - 1)):
        tot = {"bpp": 0.0, "psnr": 0.0, "loss": 0.0}
        for i in range(0, len(val), 8):
            x = val[i:i + 8].to(device)
            out = model(x, t, noise=False)
            out["x_hat"] = out["x_hat"].clamp(0, 1)
            r = rd_loss(out, x, model.lam(t))
            n = len(x)
            for k in tot:
                tot[k] += float(r[k]) * n
        for k in tot:
            res[f"t{t:g}_{k}"] = tot[k] / len(val)
    model.train()
    return res


def load_start_weights(model: MeanScaleHyperprior, name: str) -> str:
    path = DEFAULT_EXPORT / f"{name}.lmw"
    if not path.exists():
        return "scratch"
    from . import lmw
    from .weights_io import config_from_meta, load_hyperprior_weights

    if config_from_meta(lmw.read(path).meta).to_dict() != model.cfg.to_dict():
        return "scratch"  # the shipped weights are another architecture
    load_hyperprior_weights(model, path)
    return f"export {path.name}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="hyperprior")
    ap.add_argument("--tiny", action="store_true", help="tiny config for tests")
    ap.add_argument("--data", default=str(DEFAULT_ROOT))
    ap.add_argument("--steps", type=int, default=None, help="stop after this many steps in this run")
    ap.add_argument("--minutes", type=float, default=None, help="stop after this wall time")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--decay-frac", type=float, default=0.0, help="cosine-decay the LR over the last fraction of this run")
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads per rank (default: cores / ranks)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--cache", default=None)
    ap.add_argument("--save-every", type=float, default=10.0, help="minutes between checkpoints")
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--val-count", type=int, default=24)
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--data-limit", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    dist = None
    rank, world, local_rank = 0, 1, 0
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched by torchrun
        import torch.distributed as dist

        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if args.batch % world:
            raise SystemExit(f"--batch {args.batch} must be a multiple of the {world} ranks")
    lead = rank == 0
    torch.set_num_threads(max(1, args.threads if args.threads is not None else (os.cpu_count() or 1) // world))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    seed = args.seed if args.seed is not None else int(time.time()) % 2**31
    if dist is not None:  # one seed for all ranks: the same crop choices, t and initial weights
        seed_t = torch.tensor([seed], dtype=torch.int64, device=device if device.type == "cuda" else "cpu")
        dist.broadcast(seed_t, 0)
        seed = int(seed_t.item())
    random.seed(seed)
    torch.manual_seed(seed)

    cfg = TINY_CONFIG if args.tiny else HyperpriorConfig()
    model = MeanScaleHyperprior(cfg).to(device)
    main_params = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    aux_params = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    opt = torch.optim.Adam(main_params, lr=args.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=1e-3)
    ema = EMA(model, args.ema)
    step = 0
    hours = 0.0
    ckpt_path = Path(args.cache) if args.cache else cache_dir(args.name if not args.tiny else args.name + "-tiny")
    ckpt_file = ckpt_path / "state.pt"
    start_from = "scratch"
    def same_arch(saved: dict | None) -> bool:
        # states written before the shortcut existed have no "shortcut" key
        return saved is not None and {"shortcut": False, **saved} == cfg.to_dict()

    if args.resume and ckpt_file.exists() and not same_arch(torch.load(ckpt_file, map_location="cpu",
                                                                      weights_only=False).get("config")):
        old = ckpt_file.with_name("state-previous-arch.pt")
        os.replace(ckpt_file, old)
        for log_name in ("log.csv", "val.jsonl"):
            if (ckpt_path / log_name).exists():
                os.replace(ckpt_path / log_name, ckpt_path / f"previous-arch-{log_name}")
        print(f"[train] the cached state is another architecture; moved to {old}", flush=True)
    compact_file = COMPACT_DIR / f"{args.name}.pt"
    compact_ok = (args.resume and not args.tiny and compact_file.exists()
                  and same_arch(torch.load(compact_file, map_location="cpu", weights_only=False).get("config")))
    if args.resume and ckpt_file.exists():
        st = torch.load(ckpt_file, map_location=device, weights_only=False)
        model.load_state_dict(st["model"])
        ema.model.load_state_dict(st["ema"])
        opt.load_state_dict(st["opt"])
        aux_opt.load_state_dict(st["aux_opt"])
        step = st["step"]
        hours = st.get("hours", 0.0)
        start_from = f"cache step {step}"
    elif compact_ok:
        step, hours = load_compact(model, compact_file)
        ema.model.load_state_dict(model.state_dict())
        start_from = f"compact checkpoint step {step}"
    elif args.resume and not args.tiny:
        start_from = load_start_weights(model, args.name)
        ema.model.load_state_dict(model.state_dict())
        if start_from != "scratch":
            meta = getattr(model, "_loaded_meta", {})
            step = int(meta.get("train_steps", 0))
            hours = float(meta.get("train_hours", 0.0))
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)

    bank = PatchBank(args.data, "train", min_side=args.patch, limit=args.data_limit, seed=seed)
    val_bank = PatchBank(args.data, "val", min_side=128, limit=args.val_count)
    val = val_bank.fixed_crops(256, args.val_count)
    if start_from == "scratch" and cfg.shortcut:
        blocks = bank.batch(2048, 64).unfold(2, 16, 16).unfold(3, 16, 16)  # (B,3,4,4,16,16)
        blocks = blocks.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3 * 16 * 16)
        model.init_shortcut(blocks)
        ema.model.load_state_dict(model.state_dict())
        start_from = f"scratch (KLT shortcut from {len(blocks)} blocks)"
    if lead:
        print(f"[train] {cfg} start={start_from} step={step} train_images={len(bank)} val={tuple(val.shape)} "
              f"device={device} threads={torch.get_num_threads()} seed={seed} ranks={world}", flush=True)

    net = model
    model.noise_part = (rank, world)
    if dist is not None:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # the quantiles learn from the aux loss only (reduced by hand below), never from the RD loss
        DDP._set_params_and_buffers_to_ignore_for_model(
            model, [n for n, _ in model.named_parameters() if n.endswith("quantiles")])
        net = DDP(model, device_ids=[local_rank] if device.type == "cuda" else None)

    log_path = ckpt_path / "log.csv"
    logf = writer = None
    if lead:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        new_log = not log_path.exists()
        logf = open(log_path, "a", newline="")
        writer = csv.writer(logf)
        if new_log:
            writer.writerow(["time", "step", "hours", "lr", "t", "loss", "bpp", "psnr", "aux", "sec_per_step"])

    run_start = step
    run_steps = args.steps
    if run_steps is None and args.minutes is not None:
        run_steps = None  # decided by time; decay keyed on time below
    t_start = time.time()
    last_save = t_start
    A = cfg.anchors
    lam_mid = math.exp(sum(math.log(v) for v in cfg.lambdas) / A)
    pbar = None
    if not args.no_progress and lead:
        try:
            from tqdm import tqdm

            pbar = tqdm(total=args.steps, dynamic_ncols=True, mininterval=5)
        except ImportError:
            pbar = None
    sps = None
    done_steps = 0

    def save(final: bool = False):
        if args.no_save or not lead:
            return
        st = {"model": model.state_dict(), "ema": ema.model.state_dict(), "opt": opt.state_dict(),
              "aux_opt": aux_opt.state_dict(), "step": step, "hours": hours, "config": cfg.to_dict()}
        atomic_save(st, ckpt_file)

    try:
        while True:
            elapsed_min = (time.time() - t_start) / 60
            if args.steps is not None and done_steps >= args.steps:
                break
            stop = args.minutes is not None and elapsed_min >= args.minutes
            if dist is not None and args.minutes is not None:  # rank 0's clock decides for all
                flag = torch.tensor([1.0 if stop else 0.0], device=device)
                dist.broadcast(flag, 0)
                stop = bool(flag.item())
                elapsed_min = (time.time() - t_start) / 60
            if stop:
                break
            # learning rate: warm-up, constant, optional cosine tail (by steps or by time)
            if args.minutes is not None and args.steps is None and args.decay_frac > 0:
                frac_run = elapsed_min / args.minutes
                lr = args.lr * min(1.0, (step + 1) / max(1, args.warmup))
                d0 = 1 - args.decay_frac
                if frac_run > d0:
                    f = (frac_run - d0) / args.decay_frac
                    lr = args.min_lr + (lr - args.min_lr) * 0.5 * (1 + math.cos(math.pi * min(1.0, f)))
            else:
                lr = lr_at(step, run_start, run_steps, args)
            for g in opt.param_groups:
                g["lr"] = lr

            t0 = time.time()
            x = bank.batch(args.batch, args.patch, part=(rank, world)).to(device)
            if device.type == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            t = random.uniform(0, A - 1)
            out = net(x, t)
            lam = model.lam(t)
            r = rd_loss(out, x, lam)
            opt.zero_grad(set_to_none=True)
            # Rescale so that every rate contributes gradients of similar size:
            # the raw loss at the highest lambda is ~15x the lowest one.
            (r["loss"] / math.sqrt(lam / lam_mid)).backward()
            if args.clip > 0:
                torch.nn.utils.clip_grad_norm_(main_params, args.clip)
            opt.step()
            aux = model.z_prior.aux_loss()
            aux_opt.zero_grad(set_to_none=True)
            aux.backward()
            if dist is not None:
                for p_ in aux_params:
                    if p_.grad is not None:
                        dist.all_reduce(p_.grad)
                        p_.grad /= world
            aux_opt.step()
            ema.update(model, step)
            step += 1
            done_steps += 1
            dt = time.time() - t0
            hours += dt / 3600
            sps = dt if sps is None else 0.98 * sps + 0.02 * dt
            if dist is not None:  # the global batch's numbers, for the log and the finiteness check
                keys = sorted(r)
                stats = torch.stack([r[k].detach().float() for k in keys] + [aux.detach().float()])
                dist.all_reduce(stats)
                stats /= world
                r = dict(zip(keys, stats[:-1]))
                aux = stats[-1]
            r = {k: float(v.detach()) for k, v in r.items()}
            aux = float(aux.detach())
            if not math.isfinite(r["loss"]):
                print("[train] non-finite loss; stopping without saving", file=sys.stderr)
                return 3
            if step % 10 == 0 and writer is not None:
                writer.writerow([f"{time.time():.0f}", step, f"{hours:.4f}", f"{lr:.2e}", f"{t:.3f}",
                                 f"{r['loss']:.4f}", f"{r['bpp']:.4f}", f"{r['psnr']:.3f}",
                                 f"{aux:.3f}", f"{sps:.3f}"])
                logf.flush()
            if pbar is not None:
                pbar.update(1)
                pbar.set_postfix_str(f"step={step} t={t:.2f} loss={r['loss']:.3f} bpp={r['bpp']:.3f} "
                                     f"psnr={r['psnr']:.2f} lr={lr:.1e} s/step={sps:.2f}", refresh=False)
            if args.val_every and step % args.val_every == 0 and lead:
                v = validate(ema.model, val, device)
                v["step"] = step
                v["hours"] = hours
                print("[val] " + json.dumps({k: round(val_, 4) for k, val_ in v.items()}), flush=True)
                with open(ckpt_path / "val.jsonl", "a") as f:
                    f.write(json.dumps(v) + "\n")
            if time.time() - last_save > args.save_every * 60 and lead:
                save()
                last_save = time.time()
    except KeyboardInterrupt:
        print("[train] interrupted; saving", flush=True)
    save(final=True)
    if logf is not None:
        logf.close()
    if pbar is not None:
        pbar.close()
    if dist is not None:
        dist.barrier()
        dist.destroy_process_group()
    if not lead:
        return 0
    print(f"[train] done: step={step} hours={hours:.3f} s/step={sps if sps else float('nan'):.3f} "
          f"checkpoint={'(not saved)' if args.no_save else ckpt_file}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
