"""Export a trained hyperprior to the compact weights file the codec ships.

    python -m training.export [--ckpt ~/.cache/lmcodec/train/hyperprior/state.pt]
                              [--out python/lmcodec/models/hyperprior.lmw]

What it does (docs/weights.md has the byte layout):
1. takes the EMA weights of the checkpoint;
2. stores the float transforms (g_a, g_s, h_a) with int8 per-output-channel
   weights (f16 for the 3-channel image-side layers) and measures what that
   costs in PSNR on held-out training crops;
3. turns h_s into the integer network the decoder runs bit-exactly
   (int16 weights, int32 biases, per-layer power-of-two requantization
   calibrated on training crops);
4. builds the quantized frequency tables of the factorized prior (z) and of
   the Gaussian scale table (y) with the entropy coder's own CDF function;
5. measures the rate-distortion cost table the encoder's RDO quantiser uses
   (``rdo_cost_table``);
6. writes everything plus the model's training provenance.

    python -m training.export --add-rdo python/lmcodec/models/hyperprior.lmw

(re)computes only the RDO table of an existing file and rewrites it.

``load_hyperprior_weights`` is the inverse (weights file -> torch model), used
by the reference codec and by training when the resume cache is gone.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import lmw
from .int_hs import (ACT_MAX, HS_FRAC_OUT, IntHyperSynthesis, calibrate_hs, load_int_hs_as_float,  # noqa: F401
                     scale_index_params, scale_indexes, wrap_i32)
from .models import HyperpriorConfig, MeanScaleHyperprior, arch
from .tables import (NUM_SCALES, SCALE_MAX, SCALE_MIN, Y_MAX_HALF, Y_SUPPORT_SIGMAS, Z_SUPPORT,  # noqa: F401
                     cdfs_from_freqs, freq_tables, gaussian_pmfs)
from .weights_io import (OPCODES, WEIGHT_OPS, config_from_meta, dequant_int8, flatten_ops,  # noqa: F401
                         float_net_tensors, load_float_net, load_hyperprior_weights, quantize_int8_per_channel)

# Writing weights lives here; reading them back (weights_io), the integer h_s
# (int_hs) and the coder's tables (tables) have their own modules. The names
# above stay importable from training.export for existing callers.

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "python" / "lmcodec" / "models" / "hyperprior.lmw"
# RDO quantiser: the cost table is RDO_ALPHA x the measured cost of a unit
# squared latent error, and each element's cost is further weighted by
# (scale / the image's median scale)^RDO_SCALE_POWER: errors where the model
# predicts a wide distribution (busy regions) weigh more. More than 1 pays
# because the per-element errors the decision adds do not add up
# independently as the linear model assumes (and the decoder was trained on
# additive noise of the whole bin width). Chosen on held-out training crops
# (never Kodak), BD-rate (PSNR) vs plain rounding, real streams; re-tuned when
# the weights change much (python tools/tune_rdo.py prints such a grid).
#   2.47 h weights (session 5): alpha 2, power 0.6 -> -5.0 % on the tuning
#     half, -3.4 % on the check half.
#   8.47 h weights (13,113 steps; 24 crops, even / odd halves): alpha 2,
#     power 0.6 had fallen to -1.87 / -0.93 %; alpha 0.5 +7.2 / +7.7 %,
#     3 / 0.3 -1.87 / -1.04, 3 / 0.6 -2.07 / -1.27, 3 / 1.0 -2.17 / -1.42,
#     3 / 1.4 -2.22 / -1.48, 3 / 2.0 -2.16 / -1.46, 2.5 / 1.4 -2.21 / -1.41,
#     4 / 1.0 -2.11 / -1.44, 6 / 1.0 -1.86 / -1.31: chosen 3 / 1.4 on the
#     even half, -1.48 % (was -0.93 %) on the odd one.
#   16.1 h weights (22,280 steps, session 12), same crops and halves:
#     2.5 / 1.0 -2.01 / -1.10, 2.5 / 1.4 -2.07 / -1.18, 2.5 / 2.0 -2.00 / -1.17,
#     3 / 1.0 -2.05 / -1.20, 3 / 1.4 -2.08 / -1.28, 3 / 2.0 -2.03 / -1.28,
#     4 / 1.0 -1.99 / -1.25, 4 / 1.4 -2.03 / -1.33, 4 / 2.0 -2.00 / -1.36:
#     3 / 1.4 still the best on the even half; kept.
RDO_ALPHA = 3.0
RDO_SCALE_POWER = 1.4
RDO_CROPS = 6  # calibration crops the RDO table is measured on


# ---------------------------------------------------------------- export --


def z_pmfs(model: MeanScaleHyperprior) -> tuple[list[np.ndarray], np.ndarray]:
    pmfs, lengths, offsets = model.z_prior.pmf_tables(Z_SUPPORT)
    return [pmfs[c, : lengths[c]] for c in range(len(lengths))], offsets.astype(np.int32)


def z_prior_tensors(model: MeanScaleHyperprior) -> dict[str, np.ndarray]:
    return {f"z_prior.{k}": v.detach().numpy().astype(np.float32) for k, v in model.z_prior.state_dict().items()
            if not k.startswith("_")}


def build_export(model: MeanScaleHyperprior, calib: torch.Tensor, train_steps: int = 0, train_hours: float = 0.0,
                 log=print) -> tuple[dict, dict[str, np.ndarray]]:
    model = model.float().eval().to(memory_format=torch.contiguous_format)
    cfg = model.cfg
    a = arch(cfg)
    meta: dict = {
        "model": "hyperprior",
        "arch.g_a": flatten_ops(a["g_a"]), "arch.g_s": flatten_ops(a["g_s"]),
        "arch.h_a": flatten_ops(a["h_a"]), "arch.h_s": flatten_ops(a["h_s"]),
        "N": cfg.N, "M": cfg.M, "N1": cfg.N1, "anchors": cfg.anchors, "lambdas": list(cfg.lambdas),
        "quality_map": "linear",
        "scale.min": SCALE_MIN, "scale.max": SCALE_MAX, "scale.count": NUM_SCALES,
        "train.steps": int(train_steps), "train.hours": float(train_hours),
        "export.time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tensors: dict[str, np.ndarray] = {}
    tensors.update(float_net_tensors("g_a", model.g_a, a["g_a"], f16_layers={0}))
    tensors.update(float_net_tensors("g_s", model.g_s, a["g_s"], f16_layers={len(a["g_s"]) - 1}))
    tensors.update(float_net_tensors("h_a", model.h_a, a["h_a"], f16_layers=set()))
    if cfg.shortcut:
        meta["arch.g_a_lin"] = flatten_ops(a["g_a_lin"])
        meta["arch.g_s_lin"] = flatten_ops(a["g_s_lin"])
        # f16: the block transform maps pixels to latents directly (int8 cost 0.13 dB at the top rate)
        tensors.update(float_net_tensors("g_a_lin", model.g_a_lin, a["g_a_lin"], f16_layers={0}))
        tensors.update(float_net_tensors("g_s_lin", model.g_s_lin, a["g_s_lin"], f16_layers={0}))
    tensors["gain"] = torch.exp(model.log_gain.detach()).numpy().astype(np.float32)
    tensors["inv_gain"] = torch.exp(model.log_inv_gain.detach()).numpy().astype(np.float32)
    hs_meta, hs_t = calibrate_hs(model, calib, a["h_s"])
    meta.update(hs_meta)
    tensors.update(hs_t)
    base, step = scale_index_params(int(meta["hs.frac_out"]))
    meta["scale_index.base"] = base
    meta["scale_index.step"] = step
    zp, zoff = z_pmfs(model)
    zf, zl = freq_tables(zp)
    tensors["z.freqs"], tensors["z.lengths"], tensors["z.offsets"] = zf, zl, zoff
    yp, yoff = gaussian_pmfs()
    yf, yl = freq_tables(yp)
    tensors["y.freqs"], tensors["y.lengths"], tensors["y.offsets"] = yf, yl, yoff
    tensors.update(z_prior_tensors(model))
    tensors["rdo.cost"] = rdo_cost_table(model, calib[:RDO_CROPS])
    meta["rdo.alpha"] = float(RDO_ALPHA)
    meta["rdo.scale_power"] = float(RDO_SCALE_POWER)
    return meta, tensors


@torch.no_grad()
def rdo_cost_table(model: MeanScaleHyperprior, crops: torch.Tensor, alpha: float = RDO_ALPHA,
                   spacing: int = 6) -> np.ndarray:
    """rdo.cost [A][M] (f32): for each rate anchor a and latent channel c, what a
    unit squared error on a quantised latent (the domain r lives in, y*gain)
    costs in bits under the training objective lambda*255^2*MSE + bpp:
        K[a][c] = alpha * lambda_a * 255^2 / 3 * E[a][c],
    with E the pixel energy sum((x_hat' - x_hat)^2) (x in [0, 1], 3 colour
    channels; / 3 because MSE averages them while bpp counts pixels) that a
    perturbation of 1/2 on one latent causes, divided by 1/4. Measured on the
    decoder the codec runs (rounded latents around the real operating point),
    with impulses on a grid `spacing` latents apart so each synthesis run
    measures many (channel, position) pairs whose footprints do not overlap."""
    model = model.float().eval()
    A, M = model.cfg.anchors, model.cfg.M
    E = np.zeros((A, M))
    n = np.zeros((A, M))
    half = 0.5
    for a_i in range(A):
        t = float(a_i)
        gain, inv_gain = model.gains(t)
        for x in crops:
            x = x.unsqueeze(0)
            y = model.analysis(x) * gain.view(1, -1, 1, 1)
            z_hat = torch.round(model.h_a(y))
            mean, _ = model.entropy_params(z_hat)
            yq = torch.round(y - mean) + mean
            h, w = yq.shape[2:]
            pos = [(i, j) for i in range(spacing // 2, h - 1, spacing) for j in range(spacing // 2, w - 1, spacing)]
            if not pos:
                pos = [(h // 2, w // 2)]
            per = -(-M // len(pos))
            batch = yq.repeat(per, 1, 1, 1)
            owner = []
            for k in range(per):
                for p, (i, j) in enumerate(pos):
                    c = (k * len(pos) + p) % M
                    batch[k, c, i, j] += half
                    owner.append((k, c, i, j))
            ig = inv_gain.view(1, -1, 1, 1)
            base = model.synthesis(yq * ig)
            d2 = ((model.synthesis(batch * ig) - base) ** 2).sum(1)  # [per, H, W]
            r = 16 * (spacing // 2)  # footprint radius in pixels (<= half the grid pitch)
            for k, c, i, j in owner:
                cy, cx = 16 * i + 8, 16 * j + 8
                e = d2[k, max(0, cy - r):cy + r, max(0, cx - r):cx + r].sum().item()
                E[a_i, c] += e / (half * half)
                n[a_i, c] += 1
    E /= np.maximum(n, 1)
    lams = np.array([model.lam(float(a)) for a in range(A)])
    K = alpha * lams[:, None] * 255.0 ** 2 / 3.0 * E
    K = np.maximum(K, 1e-6)  # a channel the decoder ignores still gets a positive cost
    return K.astype(np.float32)


def add_rdo(path: Path, crops: torch.Tensor, log=print) -> bytes:
    """Recompute the rdo.cost table of an existing weights file and rewrite it
    (the file changes, and with it the model id)."""
    wf = lmw.read(path)
    model = load_hyperprior_weights(None, path).eval()
    tensors = dict(wf.tensors)
    tensors["rdo.cost"] = rdo_cost_table(model, crops)
    meta = dict(wf.meta)
    meta["rdo.alpha"] = float(RDO_ALPHA)
    meta["rdo.scale_power"] = float(RDO_SCALE_POWER)
    model_id = lmw.write(path, meta, tensors)
    log(f"[export] {path}: rdo.cost mean per anchor {np.round(tensors['rdo.cost'].mean(1), 2).tolist()}, "
        f"model id {model_id.hex()}")
    return model_id


@torch.no_grad()
def psnr_of(model: MeanScaleHyperprior, x: torch.Tensor, t: float) -> tuple[float, float]:
    out = model(x, t, noise=False)
    mse = F.mse_loss(out["x_hat"].clamp(0, 1), x).item()
    bpp = float((-torch.log2(out["y_lik"]).sum() - torch.log2(out["z_lik"]).sum()) / (x.shape[0] * x.shape[2] * x.shape[3]))
    return -10 * math.log10(mse), bpp


@torch.no_grad()
def heldout_loss(model: MeanScaleHyperprior, x: torch.Tensor) -> float:
    """Mean RD loss (real rounding) over the lowest, middle and highest rate."""
    from .models import rd_loss

    A = model.cfg.anchors
    total = 0.0
    for t in (0.0, (A - 1) / 2, float(A - 1)):
        out = model(x, t, noise=False)
        out["x_hat"] = out["x_hat"].clamp(0, 1)
        total += float(rd_loss(out, x, model.lam(t))["loss"])
    return total / 3


def main(argv=None) -> int:
    from .data import DEFAULT_ROOT, PatchBank
    from .state import COMPACT_DIR, cache_dir, save_compact

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default=str(cache_dir("hyperprior") / "state.pt"),
                    help="a resume state (train --cache) or a compact one (train.save_compact, e.g. from a GPU run)")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--raw", action="store_true", help="export the raw weights (default: the EMA or the raw "
                    "weights, whichever has the lower held-out loss)")
    ap.add_argument("--calib", type=int, default=16)
    ap.add_argument("--data", default=str(DEFAULT_ROOT),
                    help="training images; their validation split gives the calibration crops")
    ap.add_argument("--compact", default=None, help="also write a compact resume state here "
                    "(default training/checkpoints/hyperprior.pt when exporting to the default path)")
    ap.add_argument("--add-rdo", default=None, metavar="LMW", help="only (re)compute the RDO cost table of this "
                    "weights file and rewrite it")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    if args.add_rdo:
        bank = PatchBank(args.data, split="val", min_side=128)
        add_rdo(Path(args.add_rdo), bank.fixed_crops(256, RDO_CROPS))
        return 0
    st = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    if "model_fp16" in st:  # a compact state (train.save_compact): one set of weights, in fp16
        st = {**st, "model": {k: v.float() if v.is_floating_point() else v for k, v in st["model_fp16"].items()}}
    cfg = HyperpriorConfig(**{"shortcut": False, **st["config"]})
    bank = PatchBank(args.data, split="val", min_side=128)
    calib = bank.fixed_crops(256, args.calib)
    candidates = ["model"] if args.raw or "ema" not in st else ["ema", "model"]
    scored = []
    for key in candidates:  # the EMA is usually better; after an LR decay the raw weights can be
        m = MeanScaleHyperprior(cfg)
        m.load_state_dict(st[key])
        m.eval()
        scored.append((heldout_loss(m, calib), key, m))
        print(f"[export] {key} weights: held-out RD loss {scored[-1][0]:.4f}")
    _, key, model = min(scored, key=lambda v: v[0])
    print(f"[export] exporting the {key} weights")
    meta, tensors = build_export(model, calib, st.get("step", 0), st.get("hours", 0.0))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    model_id = lmw.write(args.out, meta, tensors)
    size = Path(args.out).stat().st_size
    # what quantization costs (held-out training crops; never Kodak)
    q = load_hyperprior_weights(None, args.out).eval()
    for t in (0.0, (cfg.anchors - 1) / 2, float(cfg.anchors - 1)):
        p0, b0 = psnr_of(model, calib, t)
        p1, b1 = psnr_of(q, calib, t)
        print(f"[export] t={t:g}: float {p0:.3f} dB {b0:.4f} bpp | exported {p1:.3f} dB {b1:.4f} bpp "
              f"(dPSNR {p1 - p0:+.3f} dB)")
    print(f"[export] wrote {args.out}: {size / 1e6:.2f} MB, model id {model_id.hex()}, step {st.get('step')}, "
          f"{st.get('hours', 0):.2f} h")
    compact = args.compact or (str(COMPACT_DIR / "hyperprior.pt") if Path(args.out) == DEFAULT_OUT else None)
    if compact:
        save_compact(st, Path(compact))
        print(f"[export] compact resume state {compact}: {Path(compact).stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
