"""The one import of :mod:`lmcodec.metrics` for the bench modules.

Normally the sibling module of the package.  When this folder is loaded on
its own (a source checkout whose compiled core is not built, so that
``import lmcodec`` fails), ``metrics.py`` is loaded from its file: it needs
only numpy.
"""

from __future__ import annotations

try:  # normal case: part of the lmcodec package
    from .. import metrics
except ImportError:  # loaded as a stand-alone folder (e.g. without lmcodec._core)
    import importlib.util as _ilu
    import sys as _sys
    from pathlib import Path as _Path

    _name = "_lmcodec_bench_metrics"
    metrics = _sys.modules.get(_name)
    if metrics is None:
        _spec = _ilu.spec_from_file_location(_name, _Path(__file__).resolve().parents[1] / "metrics.py")
        metrics = _ilu.module_from_spec(_spec)
        _spec.loader.exec_module(metrics)  # type: ignore[union-attr]
        _sys.modules[_name] = metrics

__all__ = ["metrics"]
