"""``python -m rednmf``: the ``rednmf`` command, through the same launcher.

The console script is ``rednmf_launch:main`` (pyproject.toml); running the
package goes through it too, so both install the same start-up signal
handlers and return the same exit status.
"""

from rednmf_launch import main

if __name__ == "__main__":
    raise SystemExit(main())
