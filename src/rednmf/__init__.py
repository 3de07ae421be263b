"""rednmf: hyperspectral anomaly detection with REDNMF and its baselines.

The public names::

    from rednmf import REDNMF, make_scene, read_scene, roc_auc

    cube, gt = make_scene(random_state=0)          # (rows, cols, bands), (rows, cols)
    det = REDNMF().fit(cube)                       # the paper's model, measured defaults
    print(roc_auc(det.decision_scores_, gt))

The names are imported on first use (PEP 562), so ``import rednmf`` is cheap:
``python -m rednmf`` and the ``rednmf`` command reach the launcher
(:mod:`rednmf.__main__`), which installs the start-up signal handlers, before
NumPy, SciPy and the detectors are imported.
"""

from __future__ import annotations

import importlib

from rednmf._version import __version__

#: ``typing.TYPE_CHECKING`` without importing :mod:`typing` (the launcher imports this
#: package before its signal handlers are in place: every millisecond counts).
TYPE_CHECKING = False

#: Public name -> the module that defines it.
_LAZY = {
    "make_scene": "rednmf.datasets",
    "REDNMF": "rednmf.detectors.rednmf",
    "get_detector": "rednmf.detectors.registry",
    "list_methods": "rednmf.detectors.registry",
    "ConvergenceWarning": "rednmf.exceptions",
    "InputError": "rednmf.exceptions",
    "read_scene": "rednmf.io",
    "roc_auc": "rednmf.metrics",
}

__all__ = [
    "REDNMF",
    "ConvergenceWarning",
    "InputError",
    "get_detector",
    "list_methods",
    "make_scene",
    "read_scene",
    "roc_auc",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from typing import Any

    from rednmf.datasets import make_scene
    from rednmf.detectors.rednmf import REDNMF
    from rednmf.detectors.registry import get_detector, list_methods
    from rednmf.exceptions import ConvergenceWarning, InputError
    from rednmf.io import read_scene
    from rednmf.metrics import roc_auc


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rednmf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
