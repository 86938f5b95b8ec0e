"""Decoder fine-tuning on what the encoder really sends.

    python -m training.finetune_decoder --minutes 45 --out /tmp/ft.lmw

Training optimises the synthesis on y + uniform noise (and, through the
straight-through estimator, on round(y - mu) + mu); the shipped encoder
sends neither: it quantises with the rate-distortion optimised choice
(``ReferenceCodec.quantize_rdo``), which moves latents toward the mean and
makes the decoder's input statistics differ from the ones it was trained on.
This script freezes everything the encoder and the entropy model use
(g_a, h_a, h_s, the priors, the encoder gains, the RDO table) and trains only
what the decoder alone applies: the synthesis g_s, its linear shortcut and
the inverse gains, on exactly the latents the codec codes (the exported
int8/f16 weights, the integer h_s and the RDO quantiser of the reference
codec). The loss is the training objective's distortion term,
lambda(t) * 255^2 * MSE, at a rate position t drawn per batch; the rate cannot
change, so any gain is pure PSNR at equal file size.

The result is the shipped weights file with only those tensors replaced
(re-quantised the way the export stores them), so the streams the encoder
writes are the same symbols as before; the model id changes with the file.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import lmw
from .data import DEFAULT_ROOT, PatchBank
from .export import DEFAULT_OUT
from .weights_io import float_net_tensors
from .models import arch
from .reference_codec import ReferenceCodec


@torch.no_grad()
def coded_latents(ref: ReferenceCodec, x: torch.Tensor, qx: int) -> tuple[torch.Tensor, float]:
    """y_hat = r + mu, with r what the encoder codes for x (B, 3, H, W) in [0, 1]
    (H, W multiples of 64) at quality qx / 100; and the rate position t."""
    a = ref.latents(x, qx)
    return a["r"].to(torch.float32) + a["mu"], a["t"]


def decoder_params(model) -> list[torch.nn.Parameter]:
    ps = list(model.g_s.parameters()) + [model.log_inv_gain]
    if model.cfg.shortcut:
        ps += list(model.g_s_lin.parameters())
    return ps


@torch.no_grad()
def psnr_at(ref: ReferenceCodec, crops: torch.Tensor, qx: int) -> float:
    y_hat, t = coded_latents(ref, crops, qx)
    _, inv_gain = ref.model.gains(t)
    x_hat = ref.model.synthesis(y_hat * inv_gain.view(1, -1, 1, 1))
    x8 = torch.round(x_hat.clamp(0, 1) * 255)
    mse = ((x8 - torch.round(crops * 255)) ** 2).mean(dim=(1, 2, 3))
    return float((10 * torch.log10(255.0**2 / mse)).mean())


def patched_tensors(ref: ReferenceCodec) -> dict[str, np.ndarray]:
    """The weights file's tensors with the decoder-only ones re-exported."""
    a = arch(ref.cfg)
    model = ref.model.float().eval()
    t = dict(ref.tensors)
    t.update(float_net_tensors("g_s", model.g_s, a["g_s"], f16_layers={len(a["g_s"]) - 1}))
    if ref.cfg.shortcut:
        t.update(float_net_tensors("g_s_lin", model.g_s_lin, a["g_s_lin"], f16_layers={0}))
    t["inv_gain"] = torch.exp(model.log_inv_gain.detach()).numpy().astype(np.float32)
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=str(DEFAULT_OUT), help="the weights to start from")
    ap.add_argument("--out", required=True, help="where to write the fine-tuned weights file")
    ap.add_argument("--data", default=str(DEFAULT_ROOT))
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--val-every", type=int, default=100)
    ap.add_argument("--val-count", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.minutes is None and args.steps is None:
        ap.error("give --minutes or --steps")
    if args.patch % 64:
        ap.error("--patch must be a multiple of 64")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    ref = ReferenceCodec(args.weights)
    model = ref.model
    for p in model.parameters():
        p.requires_grad_(False)
    params = decoder_params(model)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=args.lr)
    bank = PatchBank(args.data, "train", min_side=args.patch, seed=args.seed)
    val = PatchBank(args.data, "val", min_side=128).fixed_crops(256, args.val_count)
    A = ref.cfg.anchors

    def qx_at(t: float) -> int:  # rate position -> quality x 100 (inverse of quality_to_position)
        return int(round((1 + t / max(A - 1, 1) * 99) * 100))

    val_q = [qx_at(t) for t in (0.0, (A - 1) / 2, A - 1.0)] if A > 1 else [5000]

    def validate(tag: str) -> list[float]:
        model.eval()
        v = [psnr_at(ref, val, q) for q in val_q]
        print(f"[ft] {tag}: held-out PSNR " + ", ".join(f"q{q / 100:g} {p:.3f} dB" for q, p in zip(val_q, v)),
              flush=True)
        return v

    base = validate("start")
    t0 = time.time()
    step = 0
    while True:
        if args.steps is not None and step >= args.steps:
            break
        if args.minutes is not None and time.time() - t0 > 60 * args.minutes:
            break
        x = bank.batch(args.batch, args.patch)
        qx = qx_at(rng.uniform(0, A - 1))
        y_hat, t = coded_latents(ref, x, qx)
        model.train()
        _, inv_gain = model.gains(t)
        x_hat = model.synthesis(y_hat * inv_gain.view(1, -1, 1, 1))
        loss = model.lam(t) * 255.0**2 * torch.mean((x_hat - x) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if step % 10 == 0:
            print(f"[ft] step {step} q{qx / 100:g} loss {loss.item():.4f} ({(time.time() - t0) / step:.2f} s/step)",
                  flush=True)
        if args.val_every and step % args.val_every == 0:
            validate(f"step {step}")
    end = validate(f"end, {step} steps")
    print("[ft] change: " + ", ".join(f"q{q / 100:g} {b - a:+.3f} dB" for q, a, b in zip(val_q, base, end)))
    meta = dict(ref.meta)
    meta["finetune.decoder_steps"] = int(meta.get("finetune.decoder_steps", 0)) + step
    model_id = lmw.write(args.out, meta, patched_tensors(ref))
    print(f"[ft] wrote {args.out}: model id {model_id.hex()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
