"""Pixel scorers of an evidence matrix or a cube: local RX, BRAD, multi-scale RX, column norms.

One function puts the scoring steps together,
:func:`rednmf.scoring.from_matrix.score_matrix`; a cube is scored through it
by the functions of :mod:`rednmf.scoring.cube`::

    from rednmf.scoring.cube import brad, column_norm, multiscale, pca_project
    from rednmf.scoring.local_rx import local_rx

The package itself re-exports only ``score_matrix``, ``SCORERS`` and
``column_norm`` (imported on first use).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["SCORERS", "column_norm", "score_matrix"]

#: Re-exported name -> the submodule that defines it (imported on first use, so
#: that ``rednmf.scoring.windows`` does not bring SciPy's statistics along).
_LAZY = {"SCORERS": "from_matrix", "score_matrix": "from_matrix", "column_norm": "cube"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"rednmf.scoring.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'rednmf.scoring' has no attribute {name!r}")
