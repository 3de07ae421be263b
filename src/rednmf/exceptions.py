"""Errors raised by rednmf.

Every error a user can cause (bad input, bad parameter, unreadable file) is an
:class:`InputError` whose message is one line naming the problem and the fix.
The command-line interface prints that line and exits non-zero, with no
traceback. :class:`ConvergenceWarning` subclasses scikit-learn's and is defined
on first use, so that importing this module does not import scikit-learn.
"""

from __future__ import annotations

__all__ = ["ConvergenceWarning", "InputError", "Interrupted", "one_line"]

#: ``typing.TYPE_CHECKING`` without importing :mod:`typing` (imported by the launcher).
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - type checkers: rednmf's class is a subclass of it
    from sklearn.exceptions import ConvergenceWarning


class InputError(ValueError):
    """A problem with the user's input or parameters, with a one-line message."""


def _convergence_warning() -> type[Warning]:
    """rednmf's ``ConvergenceWarning``: a subclass of scikit-learn's, defined on first use.

    Importing :mod:`sklearn.exceptions` imports scikit-learn (about 1 s on a quiet machine),
    and this module is imported by the launcher before anything else: the class is made
    when ``rednmf.exceptions.ConvergenceWarning`` is first looked up (PEP 562).
    """
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning

    class ConvergenceWarning(SklearnConvergenceWarning):
        """An iterative solver stopped at ``max_iter`` before reaching ``tol``.

        A subclass of :class:`sklearn.exceptions.ConvergenceWarning`: a filter on
        scikit-learn's class (``warnings.filterwarnings("ignore", category=...)``) also
        applies to rednmf's solvers.
        """

    ConvergenceWarning.__module__ = __name__
    ConvergenceWarning.__qualname__ = "ConvergenceWarning"
    return ConvergenceWarning


def __getattr__(name: str) -> object:
    if name == "ConvergenceWarning":
        value = globals()[name] = _convergence_warning()
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
