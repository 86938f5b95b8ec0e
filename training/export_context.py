"""Export a trained context entropy model (issue 21) as a new hyperprior weights file.

    python -m training.export_context [--variant elic] [--state STATE.pt]
                                      [--out ~/.cache/lmcodec/candidates/hyperprior-elic.lmw]

The transforms (g_a, g_s, the shortcut, the gains) and the y tables of the
shipped weights are kept byte for byte; the entropy side is replaced by the
trained variant's (training/context_models.py, trained on cached latents by
training/train_entropy.py):

* h_a (float, int8 per-output-channel storage, as training/export.py stores it);
* the integer h_s, recalibrated for the refit float h_s (training/int_hs.py);
* the z prior and its frequency tables;
* the integer context model (training/int_context.py: ``arch.ctx``, ``ctx.*``),
  calibrated on gained latents of training crops (the latent cache's train
  split; never the held-out images nor Kodak).

The result is a candidate: ``tools/ship_weights.py`` ships it (archiving the
current weights so their streams keep decoding). Held-out check printed at
the end: the integer model's code length against the shipped model's on the
first --images held-out images (val/orig of the latent cache).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import lmw
from .context_models import VARIANTS, build_variant
from .cache_latents import DEFAULT_WEIGHTS
from .export import z_pmfs
from .int_context import IntContextModel, calib_latents, int_bits
from .models import arch
from .tables import freq_tables
from .weights_io import float_net_tensors, load_hyperprior_weights

DEFAULT_CANDIDATE = Path.home() / ".cache" / "lmcodec" / "candidates" / "hyperprior-elic.lmw"


def load_variant(base, variant: str, state: Path | None):
    """The trained variant: a resume state (train_entropy's state.pt) or the
    committed compact one (training/checkpoints/entropy/<variant>.pt)."""
    from .train_entropy import DEFAULT_OUT, compact_path

    model = build_variant(base, variant)
    path = state or (DEFAULT_OUT / variant / "state.pt")
    if not path.exists():
        path = compact_path(variant)
    st = torch.load(path, map_location="cpu", weights_only=False)
    weights = st["model"] if "model" in st else {k: v.float() if v.is_floating_point() else v
                                                 for k, v in st["model_fp16"].items()}
    model.load_state_dict(weights)
    base_id = bytes(base._loaded_meta["model_id"]).hex()
    if st.get("base_model_id", base_id) != base_id:
        raise SystemExit(f"{path} was trained on base weights {st['base_model_id']}, not {base_id}")
    return model.eval(), path, int(st.get("step", 0))


def build(base_path: Path, model, qm: IntContextModel, provenance: dict) -> tuple[dict, dict[str, np.ndarray]]:
    wf = lmw.read(base_path)
    meta = dict(wf.meta)
    tensors = {k: v for k, v in wf.tensors.items()
               if not (k.startswith("h_a.") or k.startswith("h_s.") or k.startswith("z.") or k.startswith("z_prior."))}
    meta = {k: v for k, v in meta.items() if not k.startswith("hs.")}
    ops = arch(base_path_config(meta))
    tensors.update(float_net_tensors("h_a", model.h_a, ops["h_a"], f16_layers=set()))
    meta.update(qm.hs_meta)
    tensors.update(qm.hs_tensors)
    zp, zoff = z_pmfs(model)
    zf, zl = freq_tables(zp)
    tensors["z.freqs"], tensors["z.lengths"], tensors["z.offsets"] = zf, zl, zoff
    tensors.update({f"z_prior.{k}": v.detach().numpy().astype(np.float32)
                    for k, v in model.z_prior.state_dict().items() if not k.startswith("_")})
    cm, ct = qm.to_weights()
    meta.update(cm)
    tensors.update(ct)
    meta.update(provenance)
    meta["export.time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return meta, tensors


def base_path_config(meta: dict):
    from .weights_io import config_from_meta

    return config_from_meta(meta)


def main(argv=None) -> int:
    from .cache_latents import DEFAULT_CACHE, LatentBank, cache_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="elic", choices=sorted(k for k, v in VARIANTS.items() if v.trainable))
    ap.add_argument("--state", type=Path, help="trained state (default: the resume state, else the compact one)")
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS,
                    help="the base weights the variant was trained on (default: cache_latents.entropy_base_weights())")
    ap.add_argument("--out", type=Path, default=DEFAULT_CANDIDATE)
    ap.add_argument("--calib", type=int, default=48, help="training crops (32x32 latents) for the calibration")
    ap.add_argument("--images", type=int, default=6, help="held-out images for the check at the end (0: skip)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rdo-alpha", type=float, help="rescale the base's rdo.cost to this alpha (tools/tune_rdo.py)")
    ap.add_argument("--rdo-power", type=float, help="rdo.scale_power for the new model (tools/tune_rdo.py)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    base = load_hyperprior_weights(None, a.weights).eval()
    model, src, step = load_variant(base, a.variant, a.state)
    print(f"[export_context] {a.variant} from {src} (step {step})")
    lat = cache_path(str(a.weights), DEFAULT_CACHE)
    train = LatentBank(lat, "train", ["orig"])
    A = base.cfg.anchors
    qm = IntContextModel.calibrate(model, arch(base.cfg)["h_s"], calib_latents(train, model, A, a.calib, 32))
    print(f"[export_context] s_y {qm.s_y}, s_h {qm.s_h}, hs.frac_out {qm.h_s.frac_out}")
    prov = {"ctx.variant": a.variant, "ctx.train.steps": step,
            "ctx.base_model_id": bytes(base._loaded_meta["model_id"]).hex()}
    meta, tensors = build(a.weights, model, qm, prov)
    if a.rdo_alpha is not None:  # the table is linear in alpha (training/export.py, rdo_cost_table)
        tensors["rdo.cost"] = (np.asarray(tensors["rdo.cost"], np.float32) * np.float32(a.rdo_alpha /
                                                                                          float(meta["rdo.alpha"])))
        meta["rdo.alpha"] = float(a.rdo_alpha)
    if a.rdo_power is not None:
        meta["rdo.scale_power"] = float(a.rdo_power)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    model_id = lmw.write(a.out, meta, tensors)
    print(f"[export_context] wrote {a.out}: {a.out.stat().st_size / 1e6:.2f} MB, model id {model_id.hex()}")
    if a.images:
        # what the exported file codes (read back: the weights the core will run)
        wf = lmw.read(a.out)
        from .int_hs import IntHyperSynthesis

        qf = IntContextModel.from_weights(wf.meta, wf.tensors, IntHyperSynthesis(arch(base.cfg)["h_s"], wf.tensors, wf.meta))
        ref = build_variant(base, "shipped").eval()
        val = LatentBank(lat, "val", ["orig"])
        imgs = val.images[:a.images]
        px = sum(h * w for h, w in val.pixels[:len(imgs)])
        for t in (0, 3, 7):
            tt = torch.tensor([float(t)])
            b_ref = b_int = 0.0
            with torch.no_grad():
                for y in imgs:
                    y = y.float().unsqueeze(0)
                    o = ref(y, tt, None, train=False)
                    b_ref += float(o["bits_y"] + o["bits_z"])
                    by, bz = int_bits(qf, model, y * model.gains(tt)[:, :, None, None])
                    b_int += by + bz
            print(f"[export_context] held-out t={t}: shipped {b_ref / px:.4f} bpp, exported {b_int / px:.4f} bpp "
                  f"({100 * (b_int / b_ref - 1):+.2f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
