"""Pixel scorers applied to an anomaly cube: local RX, BRAD, multi-scale RX and column norms.

Each scorer lives in the submodule of its name, imported from there::

    from rednmf.scoring.brad import brad, pca_project
    from rednmf.scoring.local_rx import local_rx
    from rednmf.scoring.multiscale import multiscale

The package itself re-exports only the names that no submodule carries, so
``rednmf.scoring.brad`` is always the module.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["SCORERS", "column_norm", "score_matrix"]

#: Re-exported name -> the submodule that defines it (imported on first use, so
#: that ``rednmf.scoring.windows`` does not bring SciPy's statistics along).
_LAZY = {"SCORERS": "from_matrix", "score_matrix": "from_matrix", "column_norm": "norms"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"rednmf.scoring.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'rednmf.scoring' has no attribute {name!r}")
