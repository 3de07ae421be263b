"""rednmf: hyperspectral anomaly detection with REDNMF and its baselines.

The public names::

    from rednmf import REDNMF, make_scene, read_scene, roc_auc

    cube, gt = make_scene(random_state=0)          # (rows, cols, bands), (rows, cols)
    det = REDNMF().fit(cube)                       # the paper's model, measured defaults
    print(roc_auc(det.decision_scores_, gt))

They are imported on first use (PEP 562), so ``import rednmf`` (and the
command line's ``--help``) does not pay for NumPy, SciPy and scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rednmf._version import __version__
from rednmf.exceptions import ConvergenceWarning, InputError

if TYPE_CHECKING:
    from rednmf.datasets import make_scene
    from rednmf.detectors.rednmf import REDNMF
    from rednmf.detectors.registry import get_detector, list_methods
    from rednmf.io import read_scene
    from rednmf.metrics import roc_auc

#: public name -> the module it comes from
_LAZY = {
    "REDNMF": "rednmf.detectors.rednmf",
    "get_detector": "rednmf.detectors.registry",
    "list_methods": "rednmf.detectors.registry",
    "make_scene": "rednmf.datasets",
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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rednmf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
