"""rednmf: hyperspectral anomaly detection with REDNMF and its baselines."""

__version__ = "0.1.0"
