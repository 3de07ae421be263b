"""Errors raised by rednmf.

Every error a user can cause (bad input, bad parameter, unreadable file) is an
:class:`InputError` whose message is one line naming the problem and the fix.
The command-line interface prints that line and exits non-zero, with no
traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """A problem with the user's input or parameters, with a one-line message."""


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped at ``max_iter`` before reaching ``tol``."""
