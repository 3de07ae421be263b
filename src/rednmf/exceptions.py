"""Errors raised by rednmf.

Every error a user can cause (bad input, bad parameter, unreadable file) is an
:class:`InputError` whose message is one line naming the problem and the fix.
The command-line interface prints that line and exits non-zero, with no
traceback.
"""

from __future__ import annotations

__all__ = [
    "ConvergenceWarning",
    "InputError",
    "Interrupted",
    "interrupt",
    "one_line",
    "signals_received",
]


class InputError(ValueError):
    """A problem with the user's input or parameters, with a one-line message."""


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped at ``max_iter`` before reaching ``tol``."""


def one_line(message: object) -> str:
    """``message`` (a string or an exception) on a single line, for ``error: ...`` output.

    An exception with an empty message gives its type name.
    """
    text = " ".join(str(message).split())
    if not text and isinstance(message, BaseException):
        return type(message).__name__
    return text


class Interrupted(BaseException):  # noqa: N818 - named like KeyboardInterrupt
    """SIGTERM (or another termination signal) received while a run was in progress.

    Here, not in :mod:`rednmf.pipeline`, so that the command line can install its
    handlers without importing NumPy.
    """

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(f"stopped by signal {signal.Signals(signum).name}")
        self.signum = signum


_received: list[int] = []


def interrupt(signum: int, frame: object) -> None:
    """Signal handler: note ``signum``, then raise :class:`Interrupted`.

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
