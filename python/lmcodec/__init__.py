"""lmcodec -- a learned image codec.

    >>> import lmcodec, numpy as np
    >>> data = lmcodec.encode(np.zeros((64, 64, 3), np.uint8), quality=75)
    >>> lmcodec.check(data)
    True
    >>> lmcodec.decode(data).shape
    (64, 64, 3)

Importing the package registers the Pillow plugin (``Image.open("x.lmc")``,
``im.save("x.lmc", quality=50)``) when Pillow is installed.
"""

from __future__ import annotations

from ._api import (
    ImageInfo,
    archived_models,
    check,
    decode,
    encode,
    get_limits,
    info,
    kernel_path,
    kernel_paths,
    model_info,
    set_force_scalar,
    set_kernels,
    set_limits,
)
from ._core import LmcError  # the one public exception (a ValueError subclass)
from .explain import Explanation, explain

from ._version import __version__  # the one place the version is written

__all__ = [
    "LmcError",
    "ImageInfo",
    "encode",
    "decode",
    "info",
    "check",
    "set_limits",
    "get_limits",
    "set_force_scalar",
    "kernel_path",
    "kernel_paths",
    "set_kernels",
    "model_info",
    "archived_models",
    "explain",
    "Explanation",
    "register_pillow",
    "__version__",
]


def register_pillow() -> bool:
    """Register the LMC format with Pillow. Returns False if Pillow is missing."""
    try:
        from . import LmcImagePlugin  # noqa: F401  (registration happens on import)
    except ImportError:
        return False
    return True


register_pillow()
