"""Entry point of the ``rednmf`` command: Ctrl-C during start-up is one line, not a traceback.

Importing :mod:`rednmf` (NumPy, SciPy, scikit-learn, rasterio) takes about a
second. This module is imported first, with nothing heavy, and turns SIGINT
and SIGTERM into a one-line message and the usual exit status (130, 143)
until :func:`rednmf.cli.main` installs its own handlers.
"""

from __future__ import annotations

import os
import signal
import sys


def _early_exit(signum: int, frame: object) -> None:
    # also the handler in the few instructions between the command's return (it restores
    # this handler) and the ignoring below: a run published by then is complete, and the
    # signal is ignored as it is after them, not answered with "nothing was written"
    writers = sys.modules.get("rednmf.io.writers")
    if writers is not None and writers.published():
        return
    name = signal.Signals(signum).name
    sys.stderr.write(f"error: interrupted ({name}) while starting; nothing was written\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def main() -> int:
    """Install the start-up handlers, import the command line and run it.

    Once the command has returned, its results and its message are final: a
    signal is then ignored, so that it cannot claim otherwise. After a signal
    (status 130 or 143) the process ends at once, without the second or so that
    Python takes to tear down NumPy, SciPy and the rest (the run cleaned up
    after itself while unwinding).
    """
    signal.signal(signal.SIGINT, _early_exit)
    signal.signal(signal.SIGTERM, _early_exit)
    from rednmf.cli import main as cli_main

    code = cli_main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
