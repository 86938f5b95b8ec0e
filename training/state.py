"""Training state on disk: the resume cache outside the repository
(~/.cache/lmcodec/train/<name>, or $LMCODEC_CACHE), atomic saves, and the
compact fp16 state committed in training/checkpoints/ (the fallback when the
cache is gone). Used by training.train and training.export.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .models import MeanScaleHyperprior

REPO = Path(__file__).resolve().parents[1]
COMPACT_DIR = REPO / "training" / "checkpoints"


def save_compact(state: dict, path: Path) -> None:
    """A compact resume state for the repository: the raw weights in fp16
    (the EMA restarts from them; the optimizer re-warms), step and hours."""
    model = {k: (v.half() if v.is_floating_point() else v) for k, v in state["model"].items()}
    atomic_save({"model_fp16": model, "step": state["step"], "hours": state["hours"], "config": state["config"]}, path)


def load_compact(model: MeanScaleHyperprior, path: Path) -> tuple[int, float]:
    st = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in st["model_fp16"].items()})
    return int(st["step"]), float(st["hours"])


def cache_dir(name: str) -> Path:
    base = Path(os.environ.get("LMCODEC_CACHE", Path.home() / ".cache" / "lmcodec" / "train"))
    return base / name


def atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
