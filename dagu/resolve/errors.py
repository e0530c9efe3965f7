"""The one error type of `dagu.resolve`: a value could not be evaluated."""

from __future__ import annotations

from dagu.errors import DaguError

__all__ = ["ResolveError"]


class ResolveError(DaguError):
    """Evaluating a value failed: a backtick command failed, `${X:?msg}` fired, a bad regex.

    The message names the text or command at fault and, for commands, their stderr.
    """

    code = "resolve_error"
