"""Typed readers for node values: each returns the value, or None after logging an issue.

Messages follow one shape: what was expected, what was found, and an example hint.
Strings holding `$` references are accepted where noted, because they are resolved at
run time, not here.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from dagu.spec.issues import IssueLog, describe
from dagu.spec.model import freeze
from dagu.spec.nodes import Node, is_null, plain, scalar_text

__all__ = [
    "has_reference",
    "frozen",
    "read_str",
    "read_int",
    "read_number",
    "read_bool",
    "read_choice",
    "read_str_list",
    "read_int_list",
    "read_str_map",
    "read_env",
    "last_key",
]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def has_reference(text: str) -> bool:
    """True when the text holds a `$VAR`/`${...}` reference or a backtick substitution."""
    return "$" in text or "`" in text


def frozen(node: Node) -> Any:
    return freeze(plain(node))


def last_key(field: str) -> str:
    tail = field.rsplit(".", 1)[-1]
    return tail.split("[", 1)[0] or tail


def read_str(node: Node, field: str, log: IssueLog) -> str | None:
    """A string; numbers and booleans are turned into their text."""
    if node.is_scalar:
        return scalar_text(node)
    log.add(node, field, f"expected a string, got {describe(node)}")
    return None


def read_int(
    node: Node, field: str, log: IssueLog, minimum: int | None = 0, *, allow_refs: bool = False
) -> int | str | None:
    """A whole number (`"3"` is accepted); with `allow_refs`, also a string holding references."""
    value = node.value if node.is_scalar else None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value.strip())
    elif isinstance(value, str) and allow_refs and has_reference(value):
        return value
    else:
        bound = f" >= {minimum}" if minimum is not None else ""
        log.add(node, field, f"expected a whole number{bound}, got {describe(node)}", _example(field, "3"))
        return None
    if minimum is not None and number < minimum:
        log.add(node, field, f"expected a whole number >= {minimum}, got {number}", _example(field, str(max(minimum, 0))))
        return None
    return number


def read_number(
    node: Node, field: str, log: IssueLog, minimum: float | None = 0, *, allow_refs: bool = False
) -> float | str | None:
    """A number (int or float, `"1.5"` accepted); with `allow_refs`, also a string with references."""
    value = node.value if node.is_scalar else None
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        if allow_refs and has_reference(value):
            return value
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or number != number:  # NaN is not a usable number
        bound = f" >= {minimum:g}" if minimum is not None else ""
        log.add(node, field, f"expected a number{bound}, got {describe(node)}", _example(field, "5"))
        return None
    if minimum is not None and number < minimum:
        log.add(node, field, f"expected a number >= {minimum:g}, got {number:g}")
        return None
    return number


def read_bool(node: Node, field: str, log: IssueLog) -> bool | None:
    value = node.value if node.is_scalar else None
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, int)):
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    log.add(node, field, f"expected true or false, got {describe(node)}", _example(field, "true"))
    return None


def read_choice(node: Node, field: str, log: IssueLog, choices: Collection[str]) -> str | None:
    """One of `choices` (compared case-insensitively, returned as listed)."""
    text = read_str(node, field, log)
    if text is None:
        return None
    for choice in choices:
        if text.strip().lower() == choice.lower():
            return choice
    log.add(node, field, f"expected one of {', '.join(choices)}, got {describe(node)}")
    return None


def read_str_list(node: Node, field: str, log: IssueLog) -> tuple[str, ...] | None:
    """A string (one item) or a list of scalars (each turned into text)."""
    if node.is_scalar:
        return (scalar_text(node),)
    if node.is_map:
        log.add(node, field, f"expected a string or a list of strings, got {describe(node)}")
        return None
    items = []
    ok = True
    for i, item in enumerate(node.value):
        if not item.is_scalar or is_null(item):
            log.add(item, f"{field}[{i}]", f"expected a string, got {describe(item)}")
            ok = False
        else:
            items.append(scalar_text(item))
    return tuple(items) if ok else None


def read_int_list(node: Node, field: str, log: IssueLog) -> tuple[int, ...] | None:
    """A whole number or a list of them (exit codes)."""
    items = node.value if node.is_seq else [node]
    result = []
    for i, item in enumerate(items):
        path = f"{field}[{i}]" if node.is_seq else field
        number = read_int(item, path, log, minimum=None)
        if number is None:
            return None
        result.append(int(number))
    return tuple(result)


def read_str_map(node: Node, field: str, log: IssueLog) -> dict[str, str] | None:
    """A mapping whose values are scalars, all turned into text."""
    if not node.is_map:
        log.add(node, field, f"expected a mapping of names to strings, got {describe(node)}")
        return None
    result: dict[str, str] = {}
    for key, value in node.value:
        name = key.text if key.is_scalar else ""
        if not name or not value.is_scalar:
            log.add(value if name else key, f"{field}.{name}" if name else field, f"expected a string, got {describe(value)}")
            continue
        result[name] = scalar_text(value)
    return result


def read_env(node: Node, field: str, log: IssueLog) -> tuple[tuple[str, str], ...] | None:
    """Env as (name, value) pairs in source order: a map, a list of maps, or `KEY=value` strings."""
    if node.is_map:
        pairs = _env_pairs_from_map(node, field, log)
        return tuple(pairs) if pairs is not None else None
    if node.is_scalar:
        log.add(
            node,
            field,
            f"expected a mapping or a list of KEY=value strings, got {describe(node)}",
            "write `env: {KEY: value}` or `env: [KEY=value]`",
        )
        return None
    result: list[tuple[str, str]] = []
    ok = True
    for i, item in enumerate(node.value):
        path = f"{field}[{i}]"
        if item.is_map:
            pairs = _env_pairs_from_map(item, path, log)
            ok = ok and pairs is not None
            result.extend(pairs or ())
        elif item.is_scalar and isinstance(item.value, str) and "=" in item.value:
            name, _, value = item.value.partition("=")
            ok = _check_env_name(item, path, name.strip(), log) and ok
            result.append((name.strip(), value))
        else:
            log.add(item, path, f"expected KEY=value or a mapping, got {describe(item)}", f"write `- {scalar_text(item) if item.is_scalar else 'KEY'}=value`")
            ok = False
    return tuple(result) if ok else None


def _env_pairs_from_map(node: Node, field: str, log: IssueLog) -> list[tuple[str, str]] | None:
    pairs = []
    ok = True
    for key, value in node.value:
        name = key.text.strip() if key.is_scalar else ""
        if not _check_env_name(key, field, name, log):
            ok = False
            continue
        if not value.is_scalar:
            log.add(value, f"{field}.{name}", f"expected a string value, got {describe(value)}", "quote structured values, e.g. `KEY: '[1, 2]'`")
            ok = False
            continue
        pairs.append((name, scalar_text(value)))
    return pairs if ok else None


def _check_env_name(node: Node, field: str, name: str, log: IssueLog) -> bool:
    if name and not any(c.isspace() for c in name):
        return True
    log.add(node, field, f"env names must be non-empty and without spaces, got {describe(node)}")
    return False


def _example(field: str, value: str) -> str:
    key = last_key(field)
    return f"write `{key}: {value}`" if key else f"write {value}"
