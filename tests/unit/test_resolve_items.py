"""Splitting and de-duplicating parallel items (dag-spec 3.15)."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from dagu.resolve import MAX_PARALLEL_ITEMS, ResolveError, check_item_count, dedupe, item_text, split_parallel_items


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", []),
        ("   ", []),
        ('["a", "b", 3, true, null]', ["a", "b", "3", "true", ""]),
        ('[{"x": 1}, ["n"]]', [{"x": 1}, ["n"]]),
        ('{"region": "eu"}', [{"region": "eu"}]),
        ("a\nb, c\n\n d ", ["a", "b, c", "d"]),
        ("a,b , c,", ["a", "b", "c"]),
        ("a;b;c,d", ["a", "b", "c,d"]),
        ("a|b|c", ["a", "b", "c"]),
        ("a\tb c\td", ["a", "b c", "d"]),
        ("a,b;c", ["a", "b;c"]),  # a tie goes to the comma
        ('"new york" boston \'la x\'', ["new york", "boston", "la x"]),
        ('unbalanced "quote here', ["unbalanced", '"quote', "here"]),
        ("one two  three", ["one", "two", "three"]),
        ("[not json", ["[not", "json"]),
        ("single", ["single"]),
    ],
)
def test_split_parallel_items(text, expected):
    assert split_parallel_items(text) == expected


def test_more_than_the_maximum_is_an_error():
    text = ",".join(str(i) for i in range(MAX_PARALLEL_ITEMS + 1))
    with pytest.raises(ResolveError, match="1001 items, at most 1000"):
        split_parallel_items(text)


def test_exactly_the_maximum_is_allowed():
    items = [str(i) for i in range(MAX_PARALLEL_ITEMS)]
    assert check_item_count(items) is items


def test_dedupe_keeps_first_occurrences_in_order():
    assert dedupe(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]


def test_dedupe_by_key():
    items = [{"x": 1, "n": "first"}, {"x": 2}, {"x": 1, "n": "second"}]
    assert dedupe(items, key=lambda i: i["x"]) == [{"x": 1, "n": "first"}, {"x": 2}]


@pytest.mark.parametrize(
    "item, expected",
    [
        ("plain", "plain"),
        (3, "3"),
        (False, "false"),
        ({"b": 1, "a": [1, "x"]}, '{"a":[1,"x"],"b":1}'),
        (MappingProxyType({"k": ("v",)}), '{"k":["v"]}'),
    ],
)
def test_item_text_renders_maps_as_sorted_json(item, expected):
    assert item_text(item) == expected
