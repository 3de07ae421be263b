"""The package version, in a module of its own so that ``rednmf --version`` imports nothing else."""

__version__ = "0.1.0"
