"""``python -m rednmf``: the same as the ``rednmf`` command."""

from rednmf.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
