"""Weights files (.lmw) <-> torch models: the per-layer tensors the export
writes (int8 per-output-channel or f16 weights, GDN parameters) and the
inverse, loading a shipped or archived file into a MeanScaleHyperprior
(used by training, the reference codec, fine-tuning and the latent cache).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from . import lmw
from .int_hs import load_int_hs_as_float
from .layers import GDN
from .models import HyperpriorConfig, MeanScaleHyperprior, arch

OPCODES = {"conv": 1, "deconv": 2, "gdn": 3, "igdn": 4, "relu": 5, "block": 6, "unblock": 7}


WEIGHT_OPS = {"conv": 0, "deconv": 1, "block": 0, "unblock": 1}  # op -> output-channel axis of its weight


def flatten_ops(ops: list[list]) -> list[int]:
    out: list[int] = []
    for op in ops:
        out.append(OPCODES[op[0]])
        out.extend(int(v) for v in op[1:])
    return out


def quantize_int8_per_channel(w: torch.Tensor, out_dim: int) -> tuple[np.ndarray, np.ndarray]:
    wd = w.detach().double()
    moved = wd.movedim(out_dim, 0).reshape(wd.shape[out_dim], -1)
    scale = moved.abs().amax(dim=1).clamp_min(1e-12) / 127.0
    q = torch.round(moved / scale[:, None]).clamp(-127, 127)
    q = q.reshape(wd.movedim(out_dim, 0).shape).movedim(0, out_dim)
    return q.to(torch.int8).numpy(), scale.float().numpy()


def dequant_int8(q: np.ndarray, scale: np.ndarray, out_dim: int) -> np.ndarray:
    shape = [1] * q.ndim
    shape[out_dim] = -1
    return q.astype(np.float32) * scale.reshape(shape)


def float_net_tensors(prefix: str, net: nn.Sequential, ops: list[list], f16_layers: set[int]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for i, (op, layer) in enumerate(zip(ops, net)):
        name = f"{prefix}.{i}"
        if op[0] in WEIGHT_OPS:
            out_dim = WEIGHT_OPS[op[0]]
            if i in f16_layers:
                out[f"{name}.weight"] = layer.weight.detach().numpy().astype(np.float16)
            else:
                q, s = quantize_int8_per_channel(layer.weight, out_dim)
                out[f"{name}.weight"] = q
                out[f"{name}.wscale"] = s
            out[f"{name}.bias"] = layer.bias.detach().numpy().astype(np.float32)
        elif op[0] in ("gdn", "igdn"):
            beta, gamma = layer.effective_params()
            out[f"{name}.beta"] = beta.detach().numpy().astype(np.float32)
            out[f"{name}.gamma"] = gamma.detach().numpy().astype(np.float32)
    return out


def load_float_net(prefix: str, net: nn.Sequential, ops: list[list], t: dict[str, np.ndarray]) -> None:
    with torch.no_grad():
        for i, (op, layer) in enumerate(zip(ops, net)):
            name = f"{prefix}.{i}"
            if op[0] in WEIGHT_OPS:
                w = np.array(t[f"{name}.weight"])
                if w.dtype == np.int8:
                    w = dequant_int8(w, t[f"{name}.wscale"], WEIGHT_OPS[op[0]])
                layer.weight.copy_(torch.from_numpy(np.asarray(w, dtype=np.float32)))
                layer.bias.copy_(torch.from_numpy(np.array(t[f"{name}.bias"], dtype=np.float32)))
            elif op[0] in ("gdn", "igdn"):
                beta = torch.from_numpy(np.array(t[f"{name}.beta"], dtype=np.float32))
                gamma = torch.from_numpy(np.array(t[f"{name}.gamma"], dtype=np.float32))
                layer.beta_raw.copy_(torch.sqrt(torch.clamp(beta - GDN.BETA_MIN, min=0)))
                layer.gamma_raw.copy_(torch.sqrt(torch.clamp(gamma, min=0)))


def config_from_meta(meta: dict) -> HyperpriorConfig:
    return HyperpriorConfig(N=int(meta["N"]), M=int(meta["M"]), N1=int(meta["N1"]), lambdas=list(meta["lambdas"]),
                            shortcut="arch.g_a_lin" in meta)


def load_hyperprior_weights(model: MeanScaleHyperprior | None, path, int_hs_as_float: bool = True) -> MeanScaleHyperprior:
    """Load a .lmw into a torch model (dequantized). Returns the model."""
    wf = lmw.read(path)
    meta, t = wf.meta, wf.tensors
    if meta.get("model") != "hyperprior":
        raise ValueError("not a hyperprior weights file")
    cfg = config_from_meta(meta)
    if model is None:
        model = MeanScaleHyperprior(cfg)
    a = arch(cfg)
    load_float_net("g_a", model.g_a, a["g_a"], t)
    load_float_net("g_s", model.g_s, a["g_s"], t)
    load_float_net("h_a", model.h_a, a["h_a"], t)
    if cfg.shortcut:
        load_float_net("g_a_lin", model.g_a_lin, a["g_a_lin"], t)
        load_float_net("g_s_lin", model.g_s_lin, a["g_s_lin"], t)
    load_int_hs_as_float(model, a["h_s"], t, meta)
    with torch.no_grad():
        model.log_gain.copy_(torch.log(torch.from_numpy(t["gain"].astype(np.float32))))
        model.log_inv_gain.copy_(torch.log(torch.from_numpy(t["inv_gain"].astype(np.float32))))
        sd = {k[len("z_prior."):]: torch.from_numpy(np.array(v)) for k, v in t.items() if k.startswith("z_prior.")}
        model.z_prior.load_state_dict({**model.z_prior.state_dict(), **sd})
    model._loaded_meta = {"train_steps": meta.get("train.steps", 0), "train_hours": meta.get("train.hours", 0.0),
                          "model_id": wf.model_id}
    return model
