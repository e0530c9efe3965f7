"""Collecting spec issues while loading, so one SpecError can report all of them."""

from __future__ import annotations

from dagu.errors import SpecError, SpecIssue
from dagu.spec.nodes import Node

__all__ = ["IssueLog", "describe"]


class IssueLog:
    """Every problem found in one load, each pointing at the node it is about."""

    def __init__(self) -> None:
        self.issues: list[SpecIssue] = []

    def add(self, node: Node, field: str, message: str, hint: str | None = None) -> None:
        self.issues.append(SpecIssue(node.file, node.line, node.column, field, message, hint))

    def add_issue(self, issue: SpecIssue) -> None:
        self.issues.append(issue)

    def __bool__(self) -> bool:
        return bool(self.issues)

    def raise_if_any(self) -> None:
        """Raise one SpecError carrying every issue (sorted by position) if there are any."""
        if self.issues:
            raise SpecError(_dedupe(self.issues))


def describe(node: Node) -> str:
    """What a node holds, for "got ..." messages: `a list`, `a mapping` or the quoted value."""
    if node.is_map:
        return "a mapping"
    if node.is_seq:
        return "a list"
    if node.value is None:
        return "nothing (null)"
    if isinstance(node.value, str):
        text = node.value if len(node.value) <= 60 else node.value[:57] + "..."
        return '"' + text.replace("\n", "\\n") + '"'
    return node.text or str(node.value)


def _dedupe(issues: list[SpecIssue]) -> list[SpecIssue]:
    # Anchored nodes reused through aliases can report the same problem twice.
    seen: set[SpecIssue] = set()
    result = []
    for issue in issues:
        if issue not in seen:
            seen.add(issue)
            result.append(issue)
    return result
