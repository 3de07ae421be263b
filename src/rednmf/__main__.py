"""The ``rednmf`` command's launcher: the console script and ``python -m rednmf``.

Importing :mod:`rednmf` imports nothing heavy (PEP 562), so this module is
running before NumPy, SciPy and scikit-learn are imported: it installs the
start-up signal handlers (:func:`rednmf._signals.early_exit`: Ctrl-C during
the imports is one line, not a traceback), imports the command line and runs
it.
"""

from __future__ import annotations

import signal

from rednmf._signals import early_exit, ignore_after_exit


def main() -> int:
    """Install the start-up handlers, import the command line and run it.

    Once the command has returned, its results and its message are final: a
    signal is then ignored (:func:`rednmf._signals.ignore_after_exit`).
    """
    signal.signal(signal.SIGINT, early_exit)
    signal.signal(signal.SIGTERM, early_exit)
    from rednmf.cli import main as cli_main

    return ignore_after_exit(cli_main())


if __name__ == "__main__":
    raise SystemExit(main())
