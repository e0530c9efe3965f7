"""String evaluation in the order of Dagu 1.30 (dag-spec 5.1); owns no state and no config.

The five stages, applied left to right:

1. QUOTED    ``"${VAR}"`` / ``"${VAR.path}"`` -> the value re-quoted as a JSON string.
2. REFS      ``${id.stdout}``, ``${id.stderr}``, ``${id.exit_code}`` (slices ``:off:len``)
             and JSON paths ``${VAR.a.b[2]}`` / ``$VAR.a.b`` over JSON-valued variables.
3. VARS      ``${NAME}`` / ``$NAME`` / ``${NAME:off:len}`` for known variables only,
             not inside single quotes.
4. BACKTICKS `` `cmd` `` run with the shell, replaced by its trimmed stdout.
5. SHELL     POSIX parameter forms (``${X:-d}``, ``${#X}``, ``${X%p}``, ...) and plain
             ``$X`` against the variables plus the process environment
             (`dagu.resolve.posix`).

Which stages apply depends on the field (`COMMAND_STAGES`, `SCRIPT_STAGES`, `ALL_STAGES`).

Two deliberate choices where 1.30 is sloppy:
* Inserted values are never re-scanned: a step output holding backticks or ``$X`` is
  not executed or expanded by a later stage (2.15 behaves the same way).
* ``\\$`` and ``\\``` protect the next character. The backslash stays when the text is
  handed to a shell (no SHELL stage), so the shell sees the same escape; it is
  removed when we do the shell's work ourselves (SHELL stage on).

Unknown names are always left as written.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntFlag
from typing import Any

from dagu.resolve.errors import ResolveError
from dagu.resolve.posix import expand_parameters

__all__ = [
    "Stage",
    "ALL_STAGES",
    "COMMAND_STAGES",
    "SCRIPT_STAGES",
    "StepRef",
    "expand",
    "expand_value",
    "expand_command",
    "expand_script",
    "expand_config",
    "json_path",
]


class Stage(IntFlag):
    """One stage of the 1.30 evaluation pipeline."""

    QUOTED = 1
    REFS = 2
    VARS = 4
    BACKTICKS = 8
    SHELL = 16


ALL_STAGES = Stage.QUOTED | Stage.REFS | Stage.VARS | Stage.BACKTICKS | Stage.SHELL
COMMAND_STAGES = Stage.QUOTED | Stage.REFS | Stage.VARS | Stage.BACKTICKS  # the shell does 5
SCRIPT_STAGES = Stage.QUOTED | Stage.REFS | Stage.VARS


@dataclass(frozen=True, slots=True)
class StepRef:
    """What `${id.stdout}` and friends resolve to: log file paths and the exit code."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0


# Private-use code points mark protected text while the stages run. Input holding them
# would be garbled, which is acceptable for workflow text.
_ESC_DOLLAR = "\ue000"
_ESC_TICK = "\ue001"
_SLOT_OPEN = "\ue002"
_SLOT_CLOSE = "\ue003"
_SLOT_RE = re.compile(f"{_SLOT_OPEN}(\\d+){_SLOT_CLOSE}")
_ESCAPE_RE = re.compile(r"(\\+)([$`])")

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_REF_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"  # step ids may hold hyphens
_SLICE = r"(?::(\d+)(?::(\d+))?)?"
_QUOTED_RE = re.compile(rf'"\$\{{({_REF_NAME}(?:\.[^{{}}"\s]+)?|\d+)\}}"')
_BRACED_PATH_RE = re.compile(rf"\$\{{({_REF_NAME})(\.[^{{}}:\s]+){_SLICE}\}}")
_BARE_PATH_RE = re.compile(rf"\$({_NAME})(\.[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+|\[\d+\])*)")
_BRACED_VAR_RE = re.compile(rf"\$\{{({_NAME}|\d+){_SLICE}\}}")
_BARE_VAR_RE = re.compile(rf"\$({_NAME}|\d)")
_BACKTICK_RE = re.compile(r"`([^`]+)`")
_PATH_TOKEN_RE = re.compile(r'\.([A-Za-z_][A-Za-z0-9_-]*)|\.?\[(\d+)\]|\.?\["([^"]*)"\]')
_STEP_FIELDS = {".stdout": "stdout", ".stderr": "stderr", ".exit_code": "exit_code", ".exitCode": "exit_code"}


def expand(
    text: str,
    variables: Mapping[str, str],
    *,
    steps: Mapping[str, StepRef] | None = None,
    stages: Stage = ALL_STAGES,
    backticks: bool = True,
    shell: Sequence[str] | str = ("sh",),
    env_for_shell: Mapping[str, str] | None = None,
    process_env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    unset_empty: bool = False,
) -> str:
    """Evaluate `text` through the chosen stages of the 1.30 pipeline.

    Args:
        variables: known names (params, env, outputs, step env); checked before the
            process environment.
        steps: step id -> StepRef for `${id.stdout}` etc.; only steps with an id.
        stages: which stages run; `backticks=False` removes BACKTICKS from them.
        shell: command that runs backticks as `shell -c cmd`.
        env_for_shell: environment of backtick commands; default process env + variables.
        process_env: consulted by the SHELL stage; default `os.environ`.
        cwd: working directory of backtick commands.
        unset_empty: in the SHELL stage, unset `$X`/`${X}` become "" (the 1.30 binary
            does this for DAG env values) instead of staying as written.

    Raises:
        ResolveError: a backtick command failed or `${X:?msg}` fired.
    """
    if not backticks:
        stages &= ~Stage.BACKTICKS
    if "$" not in text and "`" not in text:
        return text
    penv = os.environ if process_env is None else process_env
    run = _Evaluation(variables, steps or {}, penv, shell, env_for_shell, cwd)
    work = _protect_escapes(text)
    if stages & (Stage.QUOTED | Stage.REFS | Stage.VARS):
        work = run.substitute(work, stages)
    if stages & Stage.BACKTICKS:
        work = _BACKTICK_RE.sub(run.backtick, work)
    if stages & Stage.SHELL:
        work = expand_parameters(work, (lambda name: run.lookup(name) or "") if unset_empty else run.lookup)
    return run.restore(work, drop_escapes=bool(stages & Stage.SHELL))


def expand_value(text: str, variables: Mapping[str, str], **kwargs: Any) -> str:
    """All five stages: env and param values, preconditions with `expected`, sub-DAG params."""
    return expand(text, variables, stages=ALL_STAGES, **kwargs)


def expand_command(text: str, variables: Mapping[str, str], **kwargs: Any) -> str:
    """Stages 1-4: command text handed to a shell (which does stage 5 itself)."""
    return expand(text, variables, stages=COMMAND_STAGES, **kwargs)


def expand_script(text: str, variables: Mapping[str, str], **kwargs: Any) -> str:
    """Stages 1-3: `script` bodies and precondition commands; no backticks."""
    return expand(text, variables, stages=SCRIPT_STAGES, **kwargs)


def expand_config(value: Any, variables: Mapping[str, str], **kwargs: Any) -> Any:
    """Every string inside maps and lists, all stages; returns plain dicts and lists."""
    if isinstance(value, str):
        return expand(value, variables, **kwargs)
    if isinstance(value, Mapping):
        return {k: expand_config(v, variables, **kwargs) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [expand_config(v, variables, **kwargs) for v in value]
    return value


def json_path(raw: str, path: str) -> str | None:
    """Apply a jq-style path (`.a.b[2]`) to JSON text.

    Returns the selected value as text (strings bare, objects as compact JSON, a
    missing key or null as `<nil>`), or None when `raw` is not a JSON object/array or
    the path cannot apply (bad syntax, indexing a scalar): callers leave the text as is.
    """
    tokens = _parse_path(path)
    if tokens is None:
        return None
    try:
        current: Any = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(current, (dict, list)):
        return None
    for token in tokens:
        if current is None:
            break
        if isinstance(token, str) and isinstance(current, dict):
            current = current.get(token)
        elif isinstance(token, int) and isinstance(current, list):
            current = current[token] if token < len(current) else None
        else:
            return None
    return _format_json(current)


class _Evaluation:
    """One call of `expand`: the inputs plus the values parked in slots."""

    def __init__(
        self,
        variables: Mapping[str, str],
        steps: Mapping[str, StepRef],
        process_env: Mapping[str, str],
        shell: Sequence[str] | str,
        env_for_shell: Mapping[str, str] | None,
        cwd: str | None,
    ):
        self.variables = variables
        self.steps = steps
        self.process_env = process_env
        self.shell = shlex.split(shell) if isinstance(shell, str) else list(shell)
        self.env_for_shell = env_for_shell
        self.cwd = cwd
        self.slots: list[str] = []

    # -- stages 1-3 -------------------------------------------------------------

    def substitute(self, text: str, stages: Stage) -> str:
        """One left-to-right pass for stages 1-3, tracking shell quotes for stage 3."""
        out: list[str] = []
        i, n = 0, len(text)
        in_single = in_double = False
        while i < n:
            c = text[i]
            if c == "'" and not in_double and (in_single or text.find("'", i + 1) >= 0):
                in_single = not in_single
            elif c == '"' and not in_single:
                hit = self._quoted_ref(text, i, stages)
                if hit:
                    out.append(hit[0])
                    i = hit[1]
                    continue
                if in_double or text.find('"', i + 1) >= 0:
                    in_double = not in_double
            elif c == "\\" and not in_single and i + 1 < n:
                out.append(text[i : i + 2])
                i += 2
                continue
            elif c == "$":
                hit = self._reference(text, i, stages, in_single)
                if hit:
                    out.append(hit[0])
                    i = hit[1]
                    continue
            out.append(c)
            i += 1
        return "".join(out)

    def _park(self, value: str) -> str:
        """Keep `value` aside and return its placeholder, so no later stage sees it."""
        self.slots.append(value)
        return f"{_SLOT_OPEN}{len(self.slots) - 1}{_SLOT_CLOSE}"

    def _quoted_ref(self, text: str, i: int, stages: Stage) -> tuple[str, int] | None:
        if not stages & Stage.QUOTED:
            return None
        m = _QUOTED_RE.match(text, i)
        if not m:
            return None
        name, dot, path = m.group(1).partition(".")
        value = self._path_value(name, dot + path) if dot else self.variables.get(name)
        if value is None:
            return None
        return self._park(json.dumps(value, ensure_ascii=False)), m.end()

    def _reference(self, text: str, i: int, stages: Stage, in_single: bool) -> tuple[str, int] | None:
        if stages & Stage.REFS:
            m = _BRACED_PATH_RE.match(text, i)
            if m:
                value = self._path_value(m.group(1), m.group(2))
                if value is not None:
                    return self._park(_slice(value, m.group(3), m.group(4))), m.end()
            m = _BARE_PATH_RE.match(text, i)
            if m and m.group(1) in self.variables:
                value = json_path(self.variables[m.group(1)], m.group(2))
                if value is not None:
                    return self._park(value), m.end()
        if stages & Stage.VARS and not in_single:
            m = _BRACED_VAR_RE.match(text, i)
            if m and m.group(1) in self.variables:
                return self._park(_slice(self.variables[m.group(1)], m.group(2), m.group(3))), m.end()
            m = _BARE_VAR_RE.match(text, i)
            if m and m.group(1) in self.variables:
                return self._park(self.variables[m.group(1)]), m.end()
        return None

    def _path_value(self, name: str, path: str) -> str | None:
        """Step references first, then a JSON path over a variable; None = leave."""
        step = self.steps.get(name)
        field = _STEP_FIELDS.get(path)
        if step is not None and field is not None:
            return str(getattr(step, field))
        if name in self.variables:
            return json_path(self.variables[name], path)
        return None

    # -- stage 4 ----------------------------------------------------------------

    def backtick(self, m: re.Match[str]) -> str:
        command = self.restore(m.group(1), drop_escapes=False)
        env = self.env_for_shell
        if env is None:
            env = {**self.process_env, **self.variables}
        try:
            done = subprocess.run(
                [*self.shell, "-c", command],
                capture_output=True,
                text=True,
                env=dict(env),
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise ResolveError(f"command substitution `{command}` could not start: {exc}") from exc
        if done.returncode != 0:
            stderr = done.stderr.strip()
            detail = f": {stderr}" if stderr else ""
            raise ResolveError(f"command substitution `{command}` failed with exit code {done.returncode}{detail}")
        return self._park(done.stdout.strip())

    def lookup(self, name: str) -> str | None:
        """Stage 5 source: the variables, then the process environment."""
        value = self.variables.get(name)
        return self.process_env.get(name) if value is None else value

    def restore(self, text: str, *, drop_escapes: bool) -> str:
        """Put slot values and protected characters back."""
        text = _SLOT_RE.sub(lambda m: self.slots[int(m.group(1))], text)
        dollar, tick = ("$", "`") if drop_escapes else ("\\$", "\\`")
        return text.replace(_ESC_DOLLAR, dollar).replace(_ESC_TICK, tick)


def _protect_escapes(text: str) -> str:
    """An odd run of backslashes before `$` or a backtick protects it."""

    def protect(m: re.Match[str]) -> str:
        slashes, char = m.group(1), m.group(2)
        if len(slashes) % 2 == 0:
            return m.group(0)
        return slashes[:-1] + (_ESC_DOLLAR if char == "$" else _ESC_TICK)

    return _ESCAPE_RE.sub(protect, text)


def _slice(value: str, offset: str | None, length: str | None) -> str:
    if offset is None:
        return value
    start = int(offset)
    if start >= len(value):
        return ""
    return value[start:] if length is None else value[start : start + int(length)]


def _parse_path(path: str) -> list[str | int] | None:
    tokens: list[str | int] = []
    pos = 0
    while pos < len(path):
        m = _PATH_TOKEN_RE.match(path, pos)
        if not m:
            return None
        key, index, quoted = m.groups()
        tokens.append(int(index) if index is not None else key if key is not None else quoted)
        pos = m.end()
    return tokens if tokens else None


def _format_json(value: Any) -> str:
    """Render like Go's `%v` of a decoded JSON value: null is `<nil>`, maps compact."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return str(value)
