"""The package version, alone in its module: ``rednmf --version`` imports nothing else."""

__version__ = "0.1.0"
