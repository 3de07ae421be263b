"""Errors raised by rednmf.

Every error a user can cause (bad input, bad parameter, unreadable file) is an
:class:`InputError` whose message is one line naming the problem and the fix.
The command-line interface prints that line and exits non-zero, with no
traceback.
"""

from __future__ import annotations

__all__ = ["ConvergenceWarning", "InputError", "Interrupted", "one_line"]


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

    Raised by the handler of :mod:`rednmf._signals`; here, not in
    :mod:`rednmf.pipeline`, so that neither imports NumPy.
    """

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(f"stopped by signal {signal.Signals(signum).name}")
        self.signum = signum
