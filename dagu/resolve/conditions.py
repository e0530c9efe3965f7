"""Preconditions and `continue_on.output` matching (dag-spec 3.10, 3.11).

Owns the decision "met or not"; what a result means for the run (skip the step,
abort the DAG) belongs to the actors.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterable, Mapping, Sequence

from dagu.resolve.expand import ALL_STAGES, SCRIPT_STAGES, StepRef, expand
from dagu.resolve.errors import ResolveError
from dagu.spec.model import Precondition

__all__ = ["evaluate_precondition", "matches_expected", "matches_output"]

_REGEX_PREFIX = "re:"


def evaluate_precondition(
    pre: Precondition,
    variables: Mapping[str, str],
    *,
    shell: Sequence[str] | str = ("sh",),
    cwd: str | None = None,
    env: Mapping[str, str],
    steps: Mapping[str, StepRef] | None = None,
) -> bool:
    """Whether one precondition is met.

    Without `expected` the condition (stages 1-3 applied) runs as `shell -c`; exit 0
    means met. With `expected` the condition is evaluated through every stage and
    compared line by line (`matches_expected`). `negate` inverts the clean result.

    Args:
        variables: names known to the expansion (params, env, outputs); also put
            into the environment of the commands.
        env: the process environment: base environment of the commands, and the
            fallback of the expansion's shell stage.

    Raises:
        ResolveError: evaluation failed (backtick, bad regex) or the shell did not start.
    """
    shell_env = {**env, **variables}
    if pre.expected is None:
        command = expand(pre.condition, variables, steps=steps, stages=SCRIPT_STAGES, process_env=env)
        met = _exit_code(command, shell, cwd, shell_env) == 0
    else:
        text = expand(
            pre.condition,
            variables,
            steps=steps,
            stages=ALL_STAGES,
            shell=shell,
            process_env=env,
            env_for_shell=shell_env,
            cwd=cwd,
        )
        met = matches_expected(text, pre.expected)
    return met != pre.negate


def matches_expected(text: str, expected: str) -> bool:
    """`expected` equals one whole line of `text` (or all of it); `re:` searches each line.

    Raises:
        ResolveError: the `re:` pattern does not compile.
    """
    lines = _lines(text)
    if expected.startswith(_REGEX_PREFIX):
        pattern = _compile(expected[len(_REGEX_PREFIX) :])
        return any(pattern.search(line) for line in lines)
    return text == expected or expected in lines


def matches_output(patterns: Iterable[str], text: str) -> bool:
    """`continue_on.output`: any pattern is a substring of, or `re:` matches, some line.

    Raises:
        ResolveError: an `re:` pattern does not compile.
    """
    lines = _lines(text)
    for pattern in patterns:
        if pattern.startswith(_REGEX_PREFIX):
            regex = _compile(pattern[len(_REGEX_PREFIX) :])
            if any(regex.search(line) for line in lines):
                return True
        elif any(pattern in line for line in lines):
            return True
    return False


def _lines(text: str) -> list[str]:
    return [line.rstrip("\r") for line in text.split("\n")]


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ResolveError(f"invalid regular expression {pattern!r}: {exc}") from exc


def _exit_code(command: str, shell: Sequence[str] | str, cwd: str | None, env: Mapping[str, str]) -> int:
    argv = shlex.split(shell) if isinstance(shell, str) else list(shell)
    try:
        done = subprocess.run(
            [*argv, "-c", command],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError as exc:
        raise ResolveError(f"precondition `{command}` could not start: {exc}") from exc
    return done.returncode
