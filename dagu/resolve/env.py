"""Environment building blocks: `env:` evaluation, dotenv files, the host allow-list and
the run-context variables (dag-spec 2.4, 5.3).

It returns plain dicts; deciding precedence between them (params < env < dotenv <
secrets < run context) is the caller's job, and so is touching `os.environ`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence

from dagu.resolve.expand import ALL_STAGES, Stage, StepRef, expand
from dagu.resolve.errors import ResolveError
from dagu.resolve.params import params_json
from dagu.spec.model import Param

__all__ = [
    "HOST_ENV_NAMES",
    "HOST_ENV_PREFIXES",
    "evaluate_env",
    "read_dotenv",
    "parse_dotenv",
    "host_env",
    "run_context_env",
]

HOST_ENV_NAMES: tuple[str, ...] = (
    "PATH", "HOME", "USER", "SHELL", "TMPDIR", "TERM", "EDITOR", "VISUAL", "LANG",
    "LC_ALL", "LC_CTYPE", "TZ", "LD_LIBRARY_PATH",
    "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME",
)  # fmt: skip
HOST_ENV_PREFIXES: tuple[str, ...] = ("DAGU_", "DAG_", "LC_")

_DOTENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_DQ_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)
_DQ_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def evaluate_env(
    pairs: Iterable[tuple[str, str]],
    base: Mapping[str, str],
    *,
    process_env: Mapping[str, str],
    backticks: bool = True,
    shell: Sequence[str] | str = ("sh",),
    steps: Mapping[str, StepRef] | None = None,
    cwd: str | None = None,
) -> dict[str, str]:
    """Evaluate `env:` entries top to bottom; returns only these entries, evaluated.

    Each value sees `base` (params, DAG env, outputs), the entries above it, and the
    process environment (for `${X:-d}` forms and plain `$X`). `backticks=False` is the
    2.15 rule. Backtick commands run with process env + base + entries so far.

    Raises:
        ResolveError: a substitution failed; the message names the entry.
    """
    stages = ALL_STAGES if backticks else ALL_STAGES & ~Stage.BACKTICKS
    result: dict[str, str] = {}
    for name, raw in pairs:
        known = {**base, **result}
        try:
            result[name] = expand(
                raw,
                known,
                steps=steps,
                stages=stages,
                shell=shell,
                process_env=process_env,
                env_for_shell={**process_env, **known},
                cwd=cwd,
                unset_empty=True,
            )
        except ResolveError as exc:
            raise ResolveError(f"env {name}: {exc}") from exc
    return result


def resolve_dir(text: str, env: Mapping[str, str], base: str) -> str:
    """A `working_dir` value: variables expanded (no backticks), `~` expanded, relative to `base`."""
    path = os.path.expanduser(expand(text, env, backticks=False))
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


def read_dotenv(paths: Sequence[str], working_dir: str | None, dag_dir: str | None) -> dict[str, str]:
    """Read dotenv files in order, later files overriding earlier; missing files are skipped.

    A relative path is looked up in `working_dir`, then in `dag_dir`. The caller
    decides the list (`.env` first by default, dag-spec 2.4).
    """
    values: dict[str, str] = {}
    for path in paths:
        found = _find_file(path, working_dir, dag_dir)
        if found is None:
            continue
        with open(found, encoding="utf-8") as fh:
            values.update(parse_dotenv(fh.read()))
    return values


def parse_dotenv(text: str) -> dict[str, str]:
    """Parse `KEY=VALUE` lines: `export ` prefix, `#` comments, single quotes literal,
    double quotes with escapes (may span lines), unquoted values cut at ` #`."""
    values: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, rest = line.partition("=")
        key = key.strip()
        if not sep or not _DOTENV_KEY_RE.fullmatch(key):
            continue
        rest = rest.strip()
        if rest.startswith('"'):
            while not _closed_double(rest) and i < len(lines):
                rest += "\n" + lines[i]
                i += 1
            values[key] = _double_quoted(rest)
        elif rest.startswith("'"):
            end = rest.find("'", 1)
            values[key] = rest[1:end] if end > 0 else rest[1:]
        else:
            values[key] = re.split(r"\s+#", rest, maxsplit=1)[0].rstrip()
    return values


def host_env(
    process_env: Mapping[str, str],
    extra_names: Iterable[str] = (),
    extra_prefixes: Iterable[str] = (),
) -> dict[str, str]:
    """The part of the host environment a step process inherits (the allow-list)."""
    names = set(HOST_ENV_NAMES).union(extra_names)
    prefixes = HOST_ENV_PREFIXES + tuple(extra_prefixes)
    return {k: v for k, v in process_env.items() if k in names or k.startswith(prefixes)}


def run_context_env(
    *,
    dag_name: str,
    run_id: str,
    log_file: str = "",
    params: Sequence[Param] = (),
    step_name: str | None = None,
    stdout_file: str | None = None,
    stderr_file: str | None = None,
    status: str | None = None,
    waiting_steps: Sequence[str] | None = None,
) -> dict[str, str]:
    """Run-context variables (dag-spec 5.3); step and handler ones only when given."""
    params_doc = params_json(params)
    env = {
        "DAG_NAME": dag_name,
        "DAG_RUN_ID": run_id,
        "DAG_RUN_LOG_FILE": log_file,
        "DAGU_PARAMS_JSON": params_doc,
        "DAG_PARAMS_JSON": params_doc,
    }
    optional = {
        "DAG_RUN_STEP_NAME": step_name,
        "DAG_RUN_STEP_STDOUT_FILE": stdout_file,
        "DAG_RUN_STEP_STDERR_FILE": stderr_file,
        "DAG_RUN_STATUS": status,
        "DAG_WAITING_STEPS": ",".join(waiting_steps) if waiting_steps is not None else None,
    }
    env.update({k: v for k, v in optional.items() if v is not None})
    return env


def _find_file(path: str, working_dir: str | None, dag_dir: str | None) -> str | None:
    path = os.path.expanduser(path)
    if os.path.isabs(path):
        return path if os.path.isfile(path) else None
    for folder in (working_dir, dag_dir):
        if folder:
            candidate = os.path.join(folder, path)
            if os.path.isfile(candidate):
                return candidate
    return None


def _closed_double(text: str) -> bool:
    """Whether a value opening with `"` has its closing, unescaped `"`."""
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return True
        i += 1
    return False


def _double_quoted(text: str) -> str:
    i = 1
    while i < len(text) and text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return _DQ_ESCAPE_RE.sub(_unescape, text[1:i])


def _unescape(m: re.Match[str]) -> str:
    char = m.group(1)
    return _DQ_ESCAPES.get(char, "\\" + char)
