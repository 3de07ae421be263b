"""Pixel scorers applied to an anomaly cube: local RX, BRAD, multi-scale RX and column norms.

Each scorer lives in the submodule of its name, imported from there::

    from rednmf.scoring.brad import brad, pca_project
    from rednmf.scoring.local_rx import local_rx
    from rednmf.scoring.multiscale import multiscale

The package itself re-exports only the names that no submodule carries, so
``rednmf.scoring.brad`` is always the module.
"""

from rednmf.scoring.from_matrix import SCORERS, score_matrix
from rednmf.scoring.norms import column_norm

__all__ = ["SCORERS", "column_norm", "score_matrix"]
