"""Run parameters: caller overrides merged into the defaults, then evaluated (dag-spec 2.3).

Owns the merge rules and the 1.30 evaluation of values; parsing the YAML `params:`
shapes into defaults, and the params-string tokeniser, are the loader's
(`dagu.spec.parse_params`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from dagu.resolve.expand import ALL_STAGES, expand
from dagu.resolve.errors import ResolveError
from dagu.spec import parse_params
from dagu.spec.model import Param

__all__ = [
    "tokenize_params",
    "resolve_params",
    "params_env",
    "params_json",
    "params_list",
    "params_text",
]

def tokenize_params(text: str) -> list[Param]:
    """Caller params text -> params, positionals numbered "1", "2", ...

    A JSON object gives one named param per key (in order); a JSON array gives one
    param per element (`"k=v"` strings and objects are named, the rest positional).
    Anything else is a params string, split by `dagu.spec.parse_params`.
    """
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        parsed = _json_params(stripped)
        if parsed is not None:
            return _number_positionals(parsed)
    return parse_params(stripped)


def resolve_params(
    defaults: Sequence[Param],
    overrides_text: str | None,
    override_args: Sequence[str] = (),
    *,
    evaluate: bool = True,
    env: Mapping[str, str],
    shell: Sequence[str] | str = ("sh",),
    cwd: str | None = None,
) -> list[Param]:
    """The run's params: defaults, caller overrides applied, values evaluated.

    Args:
        defaults: the DAG's params, in order (positionals named "1", "2", ...).
        overrides_text: `-p` text, API or sub-DAG params; ignored when `override_args`
            is non-empty (cli.md 1.4).
        override_args: words after `--`; each is tokenised like a params string.
        evaluate: 1.30 evaluation (`$X`, `$1`, process env, backticks); False keeps
            values literal (validate, 2.15).
        env: the process environment, read by the evaluation.

    Returns:
        Params in order, positionals renumbered "1", "2", ...

    Raises:
        ResolveError: a backtick command failed; the message names the param.
    """
    if override_args:
        overrides = [p for arg in override_args for p in tokenize_params(arg)]
    elif overrides_text:
        overrides = tokenize_params(overrides_text)
    else:
        overrides = []
    merged = _number_positionals(_apply_overrides(list(defaults), overrides))
    return _evaluate(merged, env, shell, cwd) if evaluate else merged


def params_env(params: Sequence[Param]) -> dict[str, str]:
    """Env vars of the params: positionals as "1", "2", ...; named ones by name."""
    return {p.name: p.value for p in params}


def params_json(params: Sequence[Param]) -> str:
    """`DAGU_PARAMS_JSON` / `DAG_PARAMS_JSON`: one JSON object of name -> value."""
    return json.dumps(params_env(params), ensure_ascii=False)


def params_list(params: Sequence[Param]) -> list[str]:
    """["NAME=value", "positional", ...] as stored in run status."""
    return [p.value if p.positional else f"{p.name}={p.value}" for p in params]


def params_text(params: Sequence[Param]) -> str:
    """One params string that `tokenize_params` reads back to the same params."""
    words = []
    for p in params:
        value = _quote_word(p.value)
        words.append(value if p.positional else f"{p.name}={value}")
    return " ".join(words)


def _apply_overrides(params: list[Param], overrides: Sequence[Param]) -> list[Param]:
    """Named replace by name; the override at position i, if positional, replaces
    the i-th param (any kind, as 1.30 does); anything unmatched is appended."""
    for i, override in enumerate(overrides):
        if override.positional:
            if i < len(params):
                params[i] = override
            else:
                params.append(override)
            continue
        at = next((k for k, p in enumerate(params) if not p.positional and p.name == override.name), None)
        if at is None:
            params.append(override)
        else:
            params[at] = override
    return params


def _evaluate(
    params: Sequence[Param], env: Mapping[str, str], shell: Sequence[str] | str, cwd: str | None
) -> list[Param]:
    """Evaluate top to bottom; each value may use the params before it."""
    known: dict[str, str] = {}
    out: list[Param] = []
    for p in params:
        try:
            value = expand(
                p.value,
                known,
                stages=ALL_STAGES,
                shell=shell,
                process_env=env,
                env_for_shell={**env, **known},
                cwd=cwd,
            )
        except ResolveError as exc:
            raise ResolveError(f"param {p.name}: {exc}") from exc
        known[p.name] = value
        out.append(Param(p.name, value, p.positional))
    return out


def _number_positionals(params: Sequence[Param]) -> list[Param]:
    out: list[Param] = []
    n = 0
    for p in params:
        if p.positional:
            n += 1
            out.append(Param(str(n), p.value, True))
        else:
            out.append(p)
    return out


def _json_params(text: str) -> list[Param] | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if isinstance(doc, dict):
        return [Param(str(k), _json_text(v)) for k, v in doc.items()]
    if not isinstance(doc, list):
        return None
    params: list[Param] = []
    for item in doc:
        if isinstance(item, dict):
            params.extend(Param(str(k), _json_text(v)) for k, v in item.items())
        elif isinstance(item, str) and "=" in item:
            name, _, value = item.partition("=")
            params.append(Param(name, value))
        else:
            params.append(Param("", _json_text(item), True))
    return params


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _quote_word(value: str) -> str:
    if value and not any(c.isspace() or c in '"' for c in value):
        return value
    return json.dumps(value, ensure_ascii=False)
