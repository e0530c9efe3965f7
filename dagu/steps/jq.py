"""The `jq` step type: run a jq filter over JSON input with the `jq` bindings (libjq).

Owns dag-spec 4.9: 1.30 `command` = filter and `script` = input text; 2.15 config
`filter`, `data` (an inline value) or `input` (a file path); `raw`. Each result is
printed on its own line the way the 1.30 binary (gojq) prints it: JSON indented with
4 spaces, object keys sorted, `<`, `>` and `&` escaped as `\\u003c` etc.; with `raw`,
strings unquoted, null as an empty line and other values compact.

Because gojq keeps objects sorted by key, the input is re-encoded with sorted keys
before libjq sees it, so `.[]` over an object yields values in the same order.
"""

from __future__ import annotations

import json
from typing import Any

from dagu.steps.base import Attempt, AttemptResult
from dagu.steps.service import StepExecutor, StepLogs, config_bool

__all__ = ["JqExecutor", "format_result"]


class JqExecutor(StepExecutor):
    """One attempt of a jq step; the work is quick, stop is checked between results."""

    def work(self, io: StepLogs) -> AttemptResult:
        import jq  # imported on use

        cfg = self.attempt.config
        raw = config_bool(cfg.get("raw"))
        try:
            program = _filter(self.attempt)
            data = _input(self.attempt)
        except ValueError as exc:
            return io.fail(str(exc))
        try:
            compiled = jq.compile(program)
        except ValueError as exc:
            return io.fail(f"jq: cannot compile filter {program!r}: {exc}")
        try:
            for value in compiled.input_value(data):
                if self._cancel.is_set:
                    return io.result(cancel=self._cancel)
                io.out(format_result(value, raw) + "\n")
        except ValueError as exc:
            return io.fail(f"jq: filter {program!r} failed: {exc}")
        return io.result(0, cancel=self._cancel if self._cancel.is_set else None)


def format_result(value: Any, raw: bool) -> str:
    """One result as gojq prints it (see the module docstring)."""
    if raw:
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        return _go_escape(json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")))
    return _go_escape(json.dumps(value, sort_keys=True, ensure_ascii=False, indent=4))


def _filter(attempt: Attempt) -> str:
    if attempt.commands:
        return attempt.commands[0]
    text = attempt.config.get("filter")
    if text in (None, ""):
        raise ValueError("jq: no filter; write the filter in `command` (or config `filter`)")
    return str(text)


def _input(attempt: Attempt) -> Any:
    cfg = attempt.config
    if attempt.script is not None and attempt.script.strip():
        return _parse(attempt.script, "script")
    if "data" in cfg:
        data = cfg["data"]
        return _parse(data, "config data") if isinstance(data, str) else _sorted(data)
    if cfg.get("input"):
        path = str(cfg["input"])
        try:
            with open(path, encoding="utf-8") as f:
                return _parse(f.read(), f"input file {path}")
        except OSError as exc:
            raise ValueError(f"jq: cannot read input file: {exc}") from None
    raise ValueError("jq: no input; give the JSON in `script` (or config `data` / `input`)")


def _parse(text: str, where: str) -> Any:
    try:
        return _sorted(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ValueError(f"jq: {where} is not valid JSON: {exc}") from None


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _go_escape(text: str) -> str:
    # Go's encoding/json escapes these for HTML safety; gojq output inherits it.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
