"""Pixel scorers applied to an anomaly cube: local RX, BRAD, multi-scale RX and column norms."""

from rednmf.scoring.brad import brad, pca_project
from rednmf.scoring.from_matrix import SCORERS, score_matrix
from rednmf.scoring.local_rx import local_rx
from rednmf.scoring.multiscale import multiscale
from rednmf.scoring.norms import column_norm

__all__ = [
    "SCORERS",
    "brad",
    "column_norm",
    "local_rx",
    "multiscale",
    "pca_project",
    "score_matrix",
]
