"""Pixel scorers applied to an anomaly cube: local RX, BRAD and column norms."""

from rednmf.scoring.brad import brad, pca_project
from rednmf.scoring.local_rx import local_rx
from rednmf.scoring.norms import column_norm

__all__ = ["brad", "column_norm", "local_rx", "pca_project"]
