"""Preconditions and continue_on.output matching (dag-spec 3.10, 3.11), with a real `sh`."""

from __future__ import annotations

import pytest

from dagu.resolve import ResolveError, StepRef, evaluate_precondition, matches_expected, matches_output
from dagu.spec.model import Precondition

ENV = {"PATH": "/usr/bin:/bin", "HOSTVAR": "host"}
VARS = {"COUNT": "3", "MODE": "prod", "MULTI": "alpha\nbeta\ngamma"}


def check(pre: Precondition, **kwargs) -> bool:
    return evaluate_precondition(pre, VARS, shell=("sh",), cwd=None, env=ENV, **kwargs)


@pytest.mark.parametrize(
    "condition, negate, met",
    [
        ("true", False, True),
        ("false", False, False),
        ("exit 3", False, False),
        ("test $COUNT -eq 3", False, True),
        ('[ "$MODE" = "prod" ]', False, True),
        ('[ "$HOSTVAR" = host ]', False, True),  # the shell reads env itself
        ("true", True, False),
        ("exit 1", True, True),
    ],
)
def test_command_precondition_is_met_on_exit_zero(condition, negate, met):
    assert check(Precondition(condition, negate=negate)) is met


def test_command_precondition_shell_sees_the_variables_in_its_environment():
    # NOTE: single quotes keep stage 3 off `$MODE`, so only the shell's own lookup can pass this.
    assert check(Precondition("eval 'test $MODE = prod'")) is True


def test_command_precondition_runs_in_cwd(tmp_path):
    (tmp_path / "flag").write_text("")
    pre = Precondition("test -f flag")
    assert evaluate_precondition(pre, {}, shell=("sh",), cwd=str(tmp_path), env=ENV) is True


def test_command_precondition_does_not_run_backticks_before_the_shell(tmp_path):
    # NOTE: the shell runs the backtick itself, in `cwd`; we only check the text reaches it intact.
    (tmp_path / "x").write_text("")
    pre = Precondition('test "`ls`" = x')
    assert evaluate_precondition(pre, {}, shell="sh", cwd=str(tmp_path), env=ENV) is True


@pytest.mark.parametrize(
    "condition, expected, negate, met",
    [
        ("$MODE", "prod", False, True),
        ("${MODE}", "dev", False, False),
        ("`echo prod`", "prod", False, True),
        ("$MULTI", "beta", False, True),
        ("$MULTI", "bet", False, False),
        ("$MULTI", "re:^g.m", False, True),
        ("$MULTI", "re:^eta", False, False),
        ("$MULTI", "re:et", False, True),
        ("$MODE", "re:^prod$", False, True),
        ("$MODE", "prod", True, False),
        ("$MODE", "dev", True, True),
        ("${HOSTVAR}", "host", False, True),
        ("${UNSET:-fallback}", "fallback", False, True),
        ("${step1.exit_code}", "0", False, True),
    ],
)
def test_expected_precondition_compares_line_by_line(condition, expected, negate, met):
    steps = {"step1": StepRef("/o", "/e", 0)}
    assert check(Precondition(condition, expected=expected, negate=negate), steps=steps) is met


def test_expected_precondition_error_is_raised_even_when_negated():
    with pytest.raises(ResolveError, match="exit 5"):
        check(Precondition("`exit 5`", expected="x", negate=True))


def test_invalid_regex_raises():
    with pytest.raises(ResolveError, match="invalid regular expression"):
        check(Precondition("x", expected="re:(unclosed"))


def test_missing_shell_raises():
    with pytest.raises(ResolveError, match="could not start"):
        evaluate_precondition(Precondition("true"), {}, shell=("/nonexistent/shell",), env=ENV)


@pytest.mark.parametrize(
    "text, expected, matched",
    [
        ("a\nb", "a\nb", True),
        ("ok\r\n", "ok", True),
        ("", "", True),
        ("value", "", False),
    ],
)
def test_matches_expected_edges(text, expected, matched):
    assert matches_expected(text, expected) is matched


@pytest.mark.parametrize(
    "patterns, text, matched",
    [
        (["error"], "line1\nan error here\n", True),
        (["ERROR"], "an error here", False),
        (["re:^WARN \\d+$"], "x\nWARN 42\n", True),
        (["re:^WARN$"], "WARN 42", False),
        (["nope", "re:fatal"], "fatal: x", True),
        ([], "anything", False),
        (["a\nb"], "a\nb", False),  # substring is per line, never across lines
    ],
)
def test_matches_output(patterns, text, matched):
    assert matches_output(patterns, text) is matched


def test_matches_output_bad_regex_raises():
    with pytest.raises(ResolveError):
        matches_output(["re:["], "x")
