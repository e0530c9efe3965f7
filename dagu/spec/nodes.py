"""YAML text -> marked nodes: plain values that remember their file, line and column.

This module owns turning a YAML stream into `Node` trees (one per document) with the
C parser when it is safe, and turning YAML errors into `SpecIssue`s. It knows nothing
of the workflow schema; `dagu.spec.loader` and friends read the nodes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from dagu.errors import SpecIssue

__all__ = ["Node", "NodeError", "parse_documents", "plain", "scalar_text", "is_null"]

MAP = "map"
SEQ = "seq"
SCALAR = "scalar"

# libyaml's composer recurses on the C stack and crashes the process (not an exception)
# on very deep block nesting. Above this estimated depth we use the pure-Python parser,
# whose recursion ends in a catchable RecursionError instead.
_SAFE_DEPTH = 300
# Upper bound on nodes produced by alias expansion ("billion laughs" documents).
_MAX_NODES = 200_000

_INT_RE = re.compile(r"[-+]?(0|[1-9][0-9_]*|0[0-7_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+)")
_FLOAT_RE = re.compile(r"[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+")
_SPECIAL_FLOATS = {".inf": float("inf"), "+.inf": float("inf"), "-.inf": float("-inf"), ".nan": float("nan")}
_BOOLS = {"true": True, "false": False}
_NULLS = {"", "~", "null"}
_TAG = "tag:yaml.org,2002:"


@dataclass(slots=True, eq=False)
class Node:
    """One YAML node: `value` is a list of (key, value) Node pairs, a list of Nodes, or a scalar."""

    kind: str
    value: Any
    file: str
    line: int  # 1-based
    column: int  # 1-based
    text: str = ""  # scalars only: the text as written

    @property
    def is_map(self) -> bool:
        return self.kind == MAP

    @property
    def is_seq(self) -> bool:
        return self.kind == SEQ

    @property
    def is_scalar(self) -> bool:
        return self.kind == SCALAR


class NodeError(Exception):
    """The text is not YAML we can read; carries the one issue to report."""

    def __init__(self, issue: SpecIssue):
        super().__init__(issue.message)
        self.issue = issue


def parse_documents(text: str, file: str) -> list[tuple[Node, str]]:
    """Parse every non-empty document of `text` into (root node, document source text).

    Raises:
        NodeError: the text is not valid YAML (with the parser's line and column).
    """
    loader = yaml.CSafeLoader if _depth_bound(text) < _SAFE_DEPTH else yaml.SafeLoader
    try:
        roots = [r for r in yaml.compose_all(text, Loader=loader) if r is not None]
        converter = _Converter(file)
        nodes = [converter.convert(r) for r in roots]
    except yaml.MarkedYAMLError as exc:
        raise NodeError(_yaml_issue(exc, file, text)) from exc
    except yaml.YAMLError as exc:
        raise NodeError(SpecIssue(file, 0, 0, "", f"invalid YAML: {_one_line(str(exc))}")) from exc
    except UnicodeError as exc:
        raise NodeError(SpecIssue(file, 0, 0, "", f"text is not valid Unicode: {exc.reason}")) from exc
    except RecursionError as exc:
        raise NodeError(SpecIssue(file, 0, 0, "", "the document is nested too deeply to load")) from exc
    sources = _document_sources(text, roots)
    return [(n, s) for n, s in zip(nodes, sources) if not is_null(n)]


def plain(node: Node) -> Any:
    """The plain Python value of a node: dicts (keys as written), lists and scalars."""
    if node.kind == MAP:
        return {k.text if k.is_scalar else str(plain(k)): plain(v) for k, v in node.value}
    if node.kind == SEQ:
        return [plain(v) for v in node.value]
    return node.value


def scalar_text(node: Node) -> str:
    """A scalar as a string the way users expect: bools lower-case, null empty."""
    value = node.value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return str(value)


def is_null(node: Node | None) -> bool:
    return node is None or (node.kind == SCALAR and node.value is None)


class _Converter:
    """yaml.Node -> Node, resolving merge keys and guarding against alias bombs and cycles."""

    def __init__(self, file: str):
        self.file = file
        self.count = 0
        self.active: set[int] = set()

    def convert(self, node: yaml.Node) -> Node:
        self.count += 1
        if self.count > _MAX_NODES:
            raise NodeError(self._issue(node, f"the document expands to more than {_MAX_NODES} values (alias loop?)"))
        if id(node) in self.active:
            raise NodeError(self._issue(node, "an alias refers to a node that contains it"))
        if isinstance(node, yaml.ScalarNode):
            return self._make(node, SCALAR, _scalar_value(node), node.value)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return self._make(node, SEQ, [self.convert(v) for v in node.value])
            return self._make(node, MAP, self._pairs(node))
        finally:
            self.active.discard(id(node))

    def _pairs(self, node: yaml.MappingNode) -> list[tuple[Node, Node]]:
        own: list[tuple[Node, Node]] = []
        merged: list[tuple[Node, Node]] = []
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag == _TAG + "merge":
                merged.extend(self._merge_sources(value))
            else:
                own.append((self.convert(key), self.convert(value)))
        if not merged:
            return own
        # Keys written in the mapping itself win over merged ones; the first merge source wins.
        seen = {k.text for k, _ in own if k.is_scalar}
        result = []
        for k, v in merged:
            if k.is_scalar and k.text not in seen:
                seen.add(k.text)
                result.append((k, v))
        return result + own

    def _merge_sources(self, value: yaml.Node) -> list[tuple[Node, Node]]:
        sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
        pairs: list[tuple[Node, Node]] = []
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise NodeError(self._issue(source, "a merge key `<<` needs a mapping or a list of mappings"))
            pairs.extend(self.convert(source).value)
        return pairs

    def _make(self, node: yaml.Node, kind: str, value: Any, text: str = "") -> Node:
        mark = node.start_mark
        return Node(kind, value, self.file, mark.line + 1, mark.column + 1, text)

    def _issue(self, node: yaml.Node, message: str) -> SpecIssue:
        return SpecIssue(self.file, node.start_mark.line + 1, node.start_mark.column + 1, "", message)


def _scalar_value(node: yaml.ScalarNode) -> Any:
    """Typed value of a plain scalar. YAML 1.2-ish: only true/false are booleans, and
    sexagesimal numbers (`10:30`), timestamps and unknown tags stay strings."""
    text = node.value
    tag = node.tag
    if not tag.startswith(_TAG) or tag == _TAG + "str":
        return text
    kind = tag[len(_TAG) :]
    lowered = text.lower()
    if kind == "null" and lowered in _NULLS:
        return None
    if kind == "bool" and lowered in _BOOLS:
        return _BOOLS[lowered]
    if kind == "int" and _INT_RE.fullmatch(text):
        return _to_int(text)
    if kind == "float":
        if lowered in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[lowered]
        if _FLOAT_RE.fullmatch(text):
            try:
                return float(text.replace("_", ""))
            except ValueError:
                return text
    return text


def _to_int(text: str) -> int | str:
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    try:
        if digits.startswith(("0x", "0o", "0b")):
            return sign * int(digits, 0)
        if len(digits) > 1 and digits.startswith("0"):
            return sign * int(digits, 8)  # YAML 1.1 octal, as PyYAML resolves it
        return sign * int(digits)
    except ValueError:
        return text


def _depth_bound(text: str) -> int:
    """A cheap over-estimate of the nesting depth of `text` (see `_SAFE_DEPTH`)."""
    flow = depth = 0
    brackets = text.count("[") + text.count("{")
    for ch in text if brackets >= _SAFE_DEPTH else "":
        if ch in "[{":
            depth += 1
            flow = max(flow, depth)
        elif ch in "]}" and depth:
            depth -= 1
    block = 0
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        indicators = stripped.count("-") + stripped.count(":") + stripped.count("?")
        block = max(block, len(line) - len(stripped) + indicators)
    return flow + block if brackets >= _SAFE_DEPTH else brackets + block


def _document_sources(text: str, roots: list[yaml.Node]) -> list[str]:
    """Slice `text` into one source string per root node, cutting at the `---` lines."""
    if len(roots) <= 1:
        return [text] * len(roots)
    starts = [0]
    ends = []
    for prev, root in zip(roots, roots[1:]):
        gap = text[prev.end_mark.index : root.start_mark.index]
        cut = gap.rfind("\n---")
        if cut < 0:
            ends.append(prev.end_mark.index)
            starts.append(root.start_mark.index)
            continue
        sep_start = prev.end_mark.index + cut + 1
        line_end = text.find("\n", sep_start)
        ends.append(sep_start)
        starts.append(root.start_mark.index if line_end < 0 or line_end > root.start_mark.index else line_end + 1)
    ends.append(len(text))
    return [text[s:e] for s, e in zip(starts, ends)]


def _yaml_issue(exc: yaml.MarkedYAMLError, file: str, text: str) -> SpecIssue:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 0
    column = mark.column + 1 if mark else 0
    problem = exc.problem or "syntax error"
    if exc.context:
        context_mark = exc.context_mark
        started = ""
        if context_mark is not None and mark is not None and context_mark.line != mark.line:
            started = f" started at line {context_mark.line + 1}, column {context_mark.column + 1}"
        problem = f"{problem} ({exc.context}{started})"
    found = text[mark.index : mark.index + 1] if mark and 0 <= mark.index < len(text) else ""
    return SpecIssue(file, line, column, "", f"invalid YAML: {problem}", _yaml_hint(problem, found))


def _yaml_hint(problem: str, found: str) -> str | None:
    if found == "\t":
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return 'quote values that contain ": "'
    if "undefined alias" in problem:
        return "define the anchor (`&name`) before using the alias (`*name`)"
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())
