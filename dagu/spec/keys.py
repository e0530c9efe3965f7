"""Key tables and spelling: which keys a mapping accepts, under which names.

Every multi-word key is accepted in snake_case (canonical, 2.15) and camelCase (1.30),
plus a few explicit aliases (`dir` -> `working_dir`). Reading a mapping through a
table reports unknown keys (with a "did you mean" hint), duplicates and a key set
under two spellings. It knows nothing of what the values mean.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from dagu.spec.issues import IssueLog, describe
from dagu.spec.nodes import Node, is_null

__all__ = ["KeyTable", "Fields", "key_table", "camel", "read_mapping", "join_path"]

_MAX_LISTED_KEYS = 16


@dataclass(frozen=True, slots=True)
class KeyTable:
    """The keys one kind of mapping accepts; `spellings` maps every written form to its canonical key."""

    what: str  # for messages, e.g. "step" or "retry_policy"
    keys: tuple[str, ...]
    spellings: Mapping[str, str]


def camel(snake: str) -> str:
    """`retry_policy` -> `retryPolicy`."""
    first, *rest = snake.split("_")
    return first + "".join(p[:1].upper() + p[1:] for p in rest)


def key_table(what: str, keys: Iterable[str], aliases: Mapping[str, str] | None = None) -> KeyTable:
    """A table accepting each snake_case key, its camelCase form, and `aliases` (spelling -> key)."""
    keys = tuple(keys)
    spellings: dict[str, str] = {}
    for key in keys:
        spellings[key] = key
        spellings.setdefault(camel(key), key)
    for alias, key in (aliases or {}).items():
        spellings[alias] = key
    return KeyTable(what, keys, MappingProxyType(spellings))


def join_path(prefix: str, key: str) -> str:
    if not prefix:
        return key
    return f"{prefix}{key}" if key.startswith("[") else f"{prefix}.{key}"


class Fields:
    """The entries of one mapping, by canonical key. Null values count as "not set"."""

    def __init__(self, node: Node | None, path: str, entries: dict[str, tuple[Node, Node]]):
        self.node = node
        self.path = path
        self.entries = entries

    def get(self, key: str) -> Node | None:
        """The value node of `key`, or None when it is absent or null."""
        entry = self.entries.get(key)
        if entry is None or is_null(entry[1]):
            return None
        return entry[1]

    def has(self, key: str) -> bool:
        """True when the key is written, even with a null value."""
        return key in self.entries

    def key_node(self, key: str) -> Node | None:
        entry = self.entries.get(key)
        return entry[0] if entry else None

    def field(self, key: str) -> str:
        return join_path(self.path, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)


def read_mapping(node: Node, table: KeyTable, path: str, log: IssueLog) -> Fields:
    """Read `node` as a mapping of `table`'s keys; report everything that does not fit."""
    if not node.is_map:
        log.add(node, path, f"expected a mapping of {table.what} keys, got {describe(node)}")
        return Fields(node, path, {})
    entries: dict[str, tuple[Node, Node]] = {}
    written: dict[str, str] = {}
    for key, value in node.value:
        text = key.text if key.is_scalar else ""
        if not key.is_scalar or not text:
            log.add(key, path, f"keys must be non-empty plain strings, got {describe(key)}")
            continue
        canonical = table.spellings.get(text)
        if canonical is None:
            _unknown_key(key, text, table, path, log)
            continue
        if canonical in entries:
            _duplicate_key(key, text, written[canonical], canonical, path, log)
            continue
        entries[canonical] = (key, value)
        written[canonical] = text
    return Fields(node, path, entries)


def _unknown_key(key: Node, text: str, table: KeyTable, path: str, log: IssueLog) -> None:
    match = difflib.get_close_matches(text, list(table.spellings), n=1, cutoff=0.6)
    if not match:
        lowered = {s.lower().replace("_", ""): s for s in table.spellings}
        found = lowered.get(text.lower().replace("_", "").replace("-", ""))
        match = [found] if found else []
    if match:
        hint = f'did you mean "{match[0]}"?'
    elif len(table.keys) <= _MAX_LISTED_KEYS:
        hint = "valid keys: " + ", ".join(table.keys)
    else:
        hint = None
    log.add(key, join_path(path, text), f'unknown key "{text}" in {table.what}', hint)


def _duplicate_key(key: Node, text: str, first: str, canonical: str, path: str, log: IssueLog) -> None:
    if text == first:
        log.add(key, join_path(path, canonical), f'key "{text}" is set twice', "remove one of them")
    else:
        log.add(
            key,
            join_path(path, canonical),
            f'"{first}" and "{text}" set the same key "{canonical}"',
            f'keep only "{canonical}"',
        )
