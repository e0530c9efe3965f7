"""The one small hierarchy of user-facing errors; every layer raises these and nothing else on bad input."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DaguError",
    "SpecError",
    "SpecIssue",
    "NotFound",
    "Conflict",
    "InvalidRequest",
]


class DaguError(Exception):
    """Root of every error we show to a user (CLI message, API 4xx body)."""

    code = "error"


@dataclass(frozen=True, slots=True)
class SpecIssue:
    """One problem found while loading a workflow file."""

    file: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    field: str  # path such as "steps[1].retry_policy.limit"; "" for the document
    message: str
    hint: str | None = None

    def format(self) -> str:
        """Render as `file:line:col: field: message` plus an indented hint line."""
        where = self.file
        if self.line:
            where += f":{self.line}:{self.column or 1}"
        text = f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class SpecError(DaguError):
    """A workflow file is invalid; carries every issue found, sorted by position."""

    code = "invalid_spec"

    def __init__(self, issues: list[SpecIssue] | SpecIssue):
        if isinstance(issues, SpecIssue):
            issues = [issues]
        self.issues: tuple[SpecIssue, ...] = tuple(sorted(issues, key=lambda i: (i.file, i.line, i.column)))
        super().__init__("\n".join(i.format() for i in self.issues))

    # Convenience accessors for the common single-issue case.
    @property
    def file(self) -> str:
        return self.issues[0].file

    @property
    def line(self) -> int:
        return self.issues[0].line

    @property
    def column(self) -> int:
        return self.issues[0].column

    @property
    def field(self) -> str:
        return self.issues[0].field

    @property
    def hint(self) -> str | None:
        return self.issues[0].hint


class NotFound(DaguError):
    """A DAG, run, step or file the user named does not exist."""

    code = "not_found"


class Conflict(DaguError):
    """The request clashes with current state (run ID taken, run already running)."""

    code = "conflict"


class InvalidRequest(DaguError):
    """A request or command-line argument is malformed."""

    code = "bad_request"
