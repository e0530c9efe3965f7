"""Run params: tokenising, caller overrides, 1.30 evaluation, exported forms (dag-spec 2.3, cli 1.4)."""

from __future__ import annotations

import json

import pytest

from dagu.resolve import (
    ResolveError,
    params_env,
    params_json,
    params_list,
    params_text,
    resolve_params,
    tokenize_params,
)
from dagu.spec.model import Param

ENV = {"HOME": "/home/u", "PATH": "/usr/bin:/bin", "REGION": "eu"}


def named(name: str, value: str) -> Param:
    return Param(name, value)


def pos(n: int, value: str) -> Param:
    return Param(str(n), value, True)


def pairs(params):
    return [(p.name, p.value, p.positional) for p in params]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", []),
        ("a b", [pos(1, "a"), pos(2, "b")]),
        ('first "second arg" NAME=dflt', [pos(1, "first"), pos(2, "second arg"), named("NAME", "dflt")]),
        ('MSG="a b"', [named("MSG", "a b")]),
        ('MSG="say \\"hi\\""', [named("MSG", 'say "hi"')]),
        ("D=`date +%Y` x", [named("D", "`date +%Y`"), pos(1, "x")]),
        ("E= F=1", [named("E", ""), named("F", "1")]),
        ("URL=http://h/?a=b", [named("URL", "http://h/?a=b")]),
        ("  spaced\tout  ", [pos(1, "spaced"), pos(2, "out")]),
        ('{"A": 1, "B": "x y", "C": {"d": true}}', [named("A", "1"), named("B", "x y"), named("C", '{"d":true}')]),
        ('["a", "B=x y", {"C": 3}, 4]', [pos(1, "a"), named("B", "x y"), named("C", "3"), pos(2, "4")]),
        ("{not json", [pos(1, "{not"), pos(2, "json")]),
    ],
)
def test_tokenize_params(text, expected):
    assert tokenize_params(text) == expected


DEFAULTS = [pos(1, "p1"), named("NAME", "dflt"), pos(2, "p2"), named("OTHER", "o")]


@pytest.mark.parametrize(
    "text, args, expected",
    [
        (None, (), DEFAULTS),
        ("NAME=new", (), [pos(1, "p1"), named("NAME", "new"), pos(2, "p2"), named("OTHER", "o")]),
        ("EXTRA=e", (), DEFAULTS + [named("EXTRA", "e")]),
        ("x", (), [pos(1, "x"), named("NAME", "dflt"), pos(2, "p2"), named("OTHER", "o")]),
        # NOTE: as in 1.30, the override at list position i replaces the i-th default of any kind.
        ("x y", (), [pos(1, "x"), pos(2, "y"), pos(3, "p2"), named("OTHER", "o")]),
        ("a b c d e", (), [pos(1, "a"), pos(2, "b"), pos(3, "c"), pos(4, "d"), pos(5, "e")]),
        ("NAME=ignored", ("NAME=arg",), [pos(1, "p1"), named("NAME", "arg"), pos(2, "p2"), named("OTHER", "o")]),
        (None, ('MSG="a b"',), DEFAULTS + [named("MSG", "a b")]),
        # "b" is override number 2, so it replaces the 2nd default (NAME).
        (None, ("MSG=a b",), [pos(1, "p1"), pos(2, "b"), pos(3, "p2"), named("OTHER", "o"), named("MSG", "a")]),
        ('{"NAME": "json", "NEW": "n"}', (), [pos(1, "p1"), named("NAME", "json"), pos(2, "p2"), named("OTHER", "o"), named("NEW", "n")]),
    ],
)
def test_overrides_replace_by_name_and_position_and_append_unknown(text, args, expected):
    assert resolve_params(DEFAULTS, text, args, evaluate=False, env=ENV) == expected


def test_dash_p_text_is_ignored_when_args_are_given():
    out = resolve_params([named("A", "1")], "A=from-p B=2", ["A=from-args"], evaluate=False, env=ENV)
    assert out == [named("A", "from-args")]


@pytest.mark.parametrize(
    "defaults, text, expected",
    [
        ([named("A", "x"), named("B", "${A}-y"), named("C", "$B.z")], None, ["x", "x-y", "x-y.z"]),
        ([pos(1, "one"), named("B", "$1 and ${1}")], None, ["one", "one and one"]),
        ([named("R", "$REGION/${HOME}")], None, ["eu//home/u"]),
        ([named("D", "`echo hello`")], None, ["hello"]),
        ([named("D", "`echo $A`"), named("A", "late")], None, ["", "late"]),
        ([named("A", "$LATER"), named("LATER", "v")], None, ["$LATER", "v"]),
        ([named("U", "${NOPE:-fallback}")], None, ["fallback"]),
        ([named("A", "x")], "B=`printf %s $A`", ["x", "x"]),
        ([named("Q", "keep")], "Q='$HOME'", ["'$HOME'"]),
    ],
)
def test_values_are_evaluated_top_to_bottom(defaults, text, expected):
    assert [p.value for p in resolve_params(defaults, text, env=ENV)] == expected


def test_caller_values_are_evaluated_like_defaults():
    out = resolve_params([], None, ["C=`echo from-cli`"], env=ENV)
    assert out == [named("C", "from-cli")]


def test_failing_backtick_in_a_param_raises_naming_the_param():
    with pytest.raises(ResolveError, match=r"param BAD: .*exit 7"):
        resolve_params([named("BAD", "`exit 7`")], None, env=ENV)


def test_overridden_default_is_not_evaluated():
    out = resolve_params([named("BAD", "`exit 7`")], "BAD=fine", env=ENV)
    assert out == [named("BAD", "fine")]


def test_evaluate_false_keeps_values_literal():
    out = resolve_params([named("D", "`exit 1` $HOME")], None, evaluate=False, env=ENV)
    assert out == [named("D", "`exit 1` $HOME")]


PARAMS = [pos(1, "a b"), named("NAME", "v"), pos(2, "c"), named("Q", 'say "x"')]


def test_params_env_uses_numbers_for_positionals():
    assert params_env(PARAMS) == {"1": "a b", "NAME": "v", "2": "c", "Q": 'say "x"'}


def test_params_json_is_one_object():
    assert json.loads(params_json(PARAMS)) == {"1": "a b", "NAME": "v", "2": "c", "Q": 'say "x"'}


def test_params_list_writes_named_as_name_equals_value():
    assert params_list(PARAMS) == ["a b", "NAME=v", "c", 'Q=say "x"']


def test_params_text_round_trips_through_the_tokeniser():
    text = params_text(PARAMS + [named("E", "")])
    assert text == '"a b" NAME=v c Q="say \\"x\\"" E=""'
    assert tokenize_params(text) == PARAMS + [named("E", "")]
