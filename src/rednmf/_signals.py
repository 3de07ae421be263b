"""SIGINT and SIGTERM, once: during start-up, during a command, and during a run.

Three moments, one module (nothing heavy imported, so that the launcher can use
it before NumPy):

* start-up (:func:`early_exit`): the imports take about a second; a signal
  then is one line and the usual exit status (130, 143), nothing written;
* a command or a run (:func:`handling`): the signal becomes
  :class:`~rednmf.exceptions.Interrupted` (SIGINT, too, by default), which
  unwinds through the staging clean-up, so a stopped run leaves no trace;
  :func:`interrupt` notes every signal it turns into an exception
  (:func:`signals_received`), because a compiled library can swallow the
  exception and raise its own instead;
* after the command returned (:func:`ignore_after_exit`): the results and the
  message are final, a late signal cannot claim otherwise.
"""

from __future__ import annotations

import os
import signal
import sys

from rednmf.exceptions import Interrupted

#: The launcher imports this module before its handlers are in place: at run time only
#: ``os``, ``signal`` and ``sys`` (``typing.TYPE_CHECKING`` without importing ``typing``).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType
    from typing import Any

__all__ = [
    "deferred",
    "early_exit",
    "handling",
    "ignore_after_exit",
    "interrupt",
    "signals_received",
]

#: The signals :func:`interrupt` turned into :class:`Interrupted`, oldest first.
_received: list[int] = []


def interrupt(signum: int, frame: object) -> None:
    """Signal handler: note ``signum``, then raise :class:`~rednmf.exceptions.Interrupted`.

    The note outlives the exception. A compiled library can swallow an exception
    raised inside it and raise its own instead (pybind11 reports an argument it
    could not convert as ``TypeError: incompatible function arguments``), so the
    command line asks :func:`signals_received` rather than trusting the
    exception chain alone.
    """
    _received.append(int(signum))
    raise Interrupted(signum)


def signals_received(*, clear: bool = False) -> list[int]:
    """The signals :func:`interrupt` has handled, oldest first; ``clear`` forgets them."""
    got = list(_received)
    if clear:
        _received.clear()
    return got


class handling:  # noqa: N801 - used like a function: ``with handling(signal.SIGTERM):``
    """Install ``handler`` for ``signums`` while the block runs, then restore the old ones.

    Outside the main thread (where Python cannot install handlers) this does
    nothing. Once the block is done, a signal goes to the handler that was there
    before, even one that lands while the handlers are being put back (Python
    runs a signal's handler in the main thread at the next bytecode it can, and
    any thread of the process may receive the signal, so no mask can hold it).
    One that lands as the block exits, before that, can still run ``handler``:
    a caller that must not raise then catches it and calls :meth:`restore`.
    """

    def __init__(self, *signums: int, handler: Callable[[int, Any], Any] = interrupt) -> None:
        self.signums = signums
        self.handler = handler
        self._old: dict[int, Any] = {}
        self._hook: Any = None
        self._done = False

    def __enter__(self) -> None:
        import threading

        if threading.current_thread() is threading.main_thread():
            self._done = False
            self._hook = sys.unraisablehook
            sys.unraisablehook = self._unraisable
            self._old = {s: signal.signal(s, self._dispatch) for s in self.signums}

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()

    def _dispatch(self, signum: int, frame: Any) -> Any:
        """``handler`` while the block runs; once it is done, the old handler."""
        if not self._done:
            return self.handler(signum, frame)
        old = self._old.get(signum, signal.SIG_DFL)
        if callable(old):
            return old(signum, frame)
        if old != signal.SIG_IGN:  # the default action (None: not set from Python)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        return None

    def _unraisable(self, unraisable: Any) -> None:
        """Pass what Python cannot raise to the old hook, but :class:`Interrupted`.

        A signal's handler runs at the next bytecode of the main thread, which
        can be a weak reference's callback or a ``__del__``, where Python prints
        the exception (a traceback) and goes on. :func:`interrupt` noted the
        signal (:func:`signals_received`), which the run acts on, so the
        traceback is not printed.
        """
        if not isinstance(unraisable.exc_value, Interrupted):
            self._hook(unraisable)

    def restore(self) -> None:
        """Put the old handlers back (once; a second call does nothing)."""
        if self._done:
            return
        self._done = True
        for s, h in self._old.items():
            signal.signal(s, h)
        if self._hook is not None and sys.unraisablehook == self._unraisable:
            sys.unraisablehook = self._hook


class deferred:  # noqa: N801 - used like a function: ``with deferred():``
    """Let the block finish before SIGINT or SIGTERM acts; then the handler there runs.

    For a step that must happen whole, such as printing a line and noting that it
    was printed. A signal during the block is noted and passed, once the
    handlers are back, to the one that was there (which may raise). Main thread
    only; elsewhere this does nothing.
    """

    def __init__(self, *signums: int) -> None:
        self.signums = signums or (signal.SIGINT, signal.SIGTERM)
        self._old: dict[int, Any] = {}
        self._got: list[int] = []

    def __enter__(self) -> None:
        import threading

        if threading.current_thread() is threading.main_thread():
            self._got = []
            self._old = {s: signal.signal(s, self._note) for s in self.signums}

    def _note(self, signum: int, frame: Any) -> None:
        self._got.append(signum)

    def __exit__(self, *exc: object) -> None:
        old, self._old = self._old, {}
        for s, h in old.items():
            signal.signal(s, h)
        if self._got and callable(handler := old.get(self._got[0])):
            handler(self._got[0], None)


def early_exit(signum: int, frame: object) -> None:
    """Start-up handler: one line on stderr and exit ``128 + signum`` at once.

    It is also the handler for the few instructions between the command's return
    (which restores it) and :func:`ignore_after_exit`: a run published by then is
    complete, so the signal is ignored there, as after them, not answered with
    "nothing was written".
    """
    writers = sys.modules.get("rednmf.io.writers")
    if writers is not None and writers.published():
        return
    name = signal.Signals(signum).name
    sys.stderr.write(f"error: interrupted ({name}) while starting; nothing was written\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def ignore_after_exit(code: int) -> int:
    """Ignore SIGINT and SIGTERM from now on; after a signal's status, exit at once.

    After a signal (status 130 or 143) the process ends without the second or
    so that Python takes to tear down NumPy, SciPy and the rest (the run
    cleaned up after itself while unwinding).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
