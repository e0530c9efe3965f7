"""Items of a `parallel` sub-DAG call: splitting an evaluated string, de-duplicating,
the per-child `ITEM` text (dag-spec 3.15). Running the children is the actors' job."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar

from dagu.resolve.errors import ResolveError

__all__ = ["MAX_PARALLEL_ITEMS", "split_parallel_items", "check_item_count", "dedupe", "item_text"]

MAX_PARALLEL_ITEMS = 1000
_SEPARATORS = (",", ";", "|", "\t")  # ties go to the earlier one

T = TypeVar("T")


def split_parallel_items(text: str) -> list[Any]:
    """Split the evaluated `parallel:` string into items.

    A JSON array gives its elements (scalars as text, objects as dicts); a JSON object
    is one item; otherwise lines, else the dominant separator among `,` `;` `|` tab,
    else quoted words (shell rules), else whitespace. Empty pieces are dropped.

    Raises:
        ResolveError: more than `MAX_PARALLEL_ITEMS` items.
    """
    stripped = text.strip()
    if not stripped:
        return []
    items = _json_items(stripped)
    if items is None:
        items = _text_items(stripped)
    return check_item_count(items)


def check_item_count(items: list[T]) -> list[T]:
    """`items` unchanged, or ResolveError when there are more than the limit."""
    if len(items) > MAX_PARALLEL_ITEMS:
        raise ResolveError(
            f"parallel: {len(items)} items, at most {MAX_PARALLEL_ITEMS} allowed; split the list or batch items"
        )
    return items


def dedupe(values: Iterable[T], key: Callable[[T], Hashable] | None = None) -> list[T]:
    """First occurrence of each value (or of each `key(value)`), order kept."""
    seen: set[Hashable] = set()
    out: list[T] = []
    for value in values:
        k = key(value) if key is not None else value
        if k not in seen:
            seen.add(k)
            out.append(value)
    return out


def item_text(item: Any) -> str:
    """`ITEM` of a child run: strings as is, maps and lists as compact JSON (keys sorted)."""
    if isinstance(item, str):
        return item
    if isinstance(item, (Mapping, list, tuple)):
        # Sorted keys: the same map always gives the same ITEM, hence the same child run ID.
        return json.dumps(_plain(item), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return _scalar_text(item)


def _json_items(text: str) -> list[Any] | None:
    if text[0] not in "[{":
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if isinstance(doc, dict):
        return [doc]
    if isinstance(doc, list):
        return [v if isinstance(v, (dict, list)) else _scalar_text(v) for v in doc]
    return None


def _text_items(text: str) -> list[str]:
    if "\n" in text:
        return _pieces(text.split("\n"))
    counts = [(text.count(sep), -i, sep) for i, sep in enumerate(_SEPARATORS)]
    count, _, sep = max(counts)
    if count:
        return _pieces(text.split(sep))
    if '"' in text or "'" in text:
        try:
            return _pieces(shlex.split(text))
        except ValueError:  # an unbalanced quote: fall back to plain words
            pass
    return text.split()


def _pieces(parts: Iterable[str]) -> list[str]:
    return [p.strip() for p in parts if p.strip()]


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
