"""Root fields of one document -> a dict of `Dag` keyword arguments, and the base-config merge.

Owns the root key table (dag-spec section 2) and reading every root value except the
steps and handlers, which need the merged DAG context and are built by the loader.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from dagu.spec.cron import read_schedule
from dagu.spec.issues import IssueLog, describe
from dagu.spec.keys import Fields, KeyTable, key_table, read_mapping
from dagu.spec.model import DagType, freeze
from dagu.spec.nodes import Node, plain, scalar_text
from dagu.spec.params import read_params
from dagu.spec.policies import read_preconditions
from dagu.spec.step_types import SSH_KEYS, check_container, check_keys, check_llm
from dagu.spec.values import read_bool, read_choice, read_env, read_int, read_str, read_str_list, read_str_map

__all__ = ["ROOT_KEYS", "HANDLER_KEYS", "RootValues", "read_root", "merge_roots"]

ROOT_KEYS = key_table(
    "the DAG",
    (
        "name", "description", "group", "type", "params", "env", "dotenv", "consts", "secrets", "schedule",
        "skip_if_successful", "catchup_window", "overlap_policy", "queue", "max_active_runs",
        "max_active_steps", "timeout_sec", "delay_sec", "restart_wait_sec", "max_clean_up_time_sec",
        "max_output_size", "hist_retention_days", "hist_retention_runs", "log_dir", "log_output",
        "working_dir", "shell", "shell_args", "handler_on", "preconditions", "mail_on", "smtp",
        "error_mail", "info_mail", "wait_mail", "tags", "labels", "worker_selector", "container",
        "registry_auths", "ssh", "llm", "otel", "run_config", "steps", "defaults", "retry_policy",
        "actions", "step_types", "tools", "artifacts", "resources", "webhook", "s3", "redis",
        "kubernetes", "harness", "harnesses", "tasks",
    ),
    {"precondition": "preconditions"},
)  # fmt: skip
HANDLER_KEYS = key_table("handler_on", ("init", "success", "failure", "abort", "exit", "wait"), {"cancel": "abort"})
# 2.15-only root keys: accepted and kept as written in `Dag.extras`.
_EXTRA_KEYS = (
    "consts", "hist_retention_runs", "labels", "otel", "defaults", "retry_policy", "actions", "step_types",
    "tools", "artifacts", "resources", "webhook", "s3", "redis", "kubernetes", "harness", "harnesses", "tasks",
)  # fmt: skip
_INT_FIELDS = (
    "max_active_steps", "timeout_sec", "delay_sec", "restart_wait_sec", "max_clean_up_time_sec",
    "max_output_size", "hist_retention_days",
)  # fmt: skip
_STR_FIELDS = ("description", "group", "queue", "log_dir", "working_dir")
# Fields where the base config's entries come first and the DAG's are appended (dag-spec 1.2).
_APPENDED = ("env", "dotenv", "tags", "preconditions", "secrets", "shell_args")
# Mapping fields merged key by key, the DAG's keys winning.
_MERGED_MAPS = ("smtp", "error_mail", "info_mail", "wait_mail", "run_config", "ssh", "extras")
_MAIL_ON = key_table("mail_on", ("failure", "success", "wait"))
_SMTP = key_table("smtp", ("host", "port", "username", "password", "oauth"))
_MAIL = key_table("mail", ("from", "to", "prefix", "attach_logs"))
_RUN_CONFIG = key_table("run_config", ("disable_param_edit", "disable_run_id_edit"))
_SECRET = key_table("secret", ("name", "provider", "key", "options", "ref"))
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(slots=True)
class RootValues:
    """What one document sets at the root: Dag keyword arguments, plus the raw step and handler nodes."""

    fields: dict[str, Any] = field(default_factory=dict)
    steps: Node | None = None
    handlers: dict[str, tuple[Node, str]] = field(default_factory=dict)  # hook -> (node, field path)
    name_node: Node | None = None


def read_root(node: Node, log: IssueLog) -> RootValues:
    """Read every root field `node` sets (a document must be a mapping)."""
    values = RootValues()
    if not node.is_map:
        log.add(node, "", f"a DAG document must be a mapping of keys such as `steps`, got {describe(node)}", "start with `steps:`")
        return values
    f = read_mapping(node, ROOT_KEYS, "", log)
    out = values.fields
    values.name_node = f.get("name")
    if values.name_node is not None:
        out["name"] = read_str(values.name_node, "name", log)
    values.steps = f.get("steps")
    if (handlers := f.get("handler_on")) is not None:
        hf = read_mapping(handlers, HANDLER_KEYS, "handler_on", log)
        values.handlers = {hook: (hf.get(hook), hf.field(hook)) for hook in hf if hf.get(hook) is not None}
    _read_scalars(f, out, log)
    _read_structures(f, out, log)
    extras = {key: plain(f.get(key)) for key in _EXTRA_KEYS if f.get(key) is not None}
    if "params_declaration" in out:
        extras["params"] = out.pop("params_declaration")
    if extras:
        out["extras"] = extras
    return values


def merge_roots(base: RootValues, doc: RootValues) -> RootValues:
    """The document on top of the base config: set values win, lists append, maps merge by key."""
    merged = dict(base.fields)
    merged.pop("name", None)  # a base config never names the DAGs it is merged into
    for key, value in doc.fields.items():
        if key in _APPENDED and key in merged:
            merged[key] = tuple(merged[key]) + tuple(value)
        elif key in _MERGED_MAPS and key in merged and merged[key] is not None and value is not None:
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    handlers = {**base.handlers, **doc.handlers}
    return RootValues(merged, doc.steps if doc.steps is not None else base.steps, handlers, doc.name_node)


def _read_scalars(f: Fields, out: dict[str, Any], log: IssueLog) -> None:
    for key in _STR_FIELDS:
        if (node := f.get(key)) is not None:
            out[key] = read_str(node, key, log)
    for key in _INT_FIELDS:
        if (node := f.get(key)) is not None:
            out[key] = read_int(node, key, log)
    if (node := f.get("max_active_runs")) is not None:
        out["max_active_runs"] = read_int(node, "max_active_runs", log, minimum=-1)
    if (node := f.get("type")) is not None:
        out["type"] = _dag_type(node, log)
    if (node := f.get("skip_if_successful")) is not None:
        out["skip_if_successful"] = read_bool(node, "skip_if_successful", log)
    if (node := f.get("overlap_policy")) is not None:
        out["overlap_policy"] = read_choice(node, "overlap_policy", log, ("skip", "all", "latest"))
    if (node := f.get("log_output")) is not None:
        out["log_output"] = read_choice(node, "log_output", log, ("separate", "merged"))
    if (node := f.get("catchup_window")) is not None:
        out["catchup_window_s"] = _duration(node, "catchup_window", log)
    if (node := f.get("shell")) is not None:
        out["shell"] = _shell(node, log)
    if (node := f.get("shell_args")) is not None:
        out["shell_args"] = read_str_list(node, "shell_args", log)
    for key in list(out):
        if out[key] is None:
            del out[key]  # invalid values were logged; keep the model's default


def _read_structures(f: Fields, out: dict[str, Any], log: IssueLog) -> None:
    if (node := f.get("params")) is not None:
        params, text, declaration = read_params(node, "params", log)
        out["params"], out["params_text"] = params, text
        if declaration is not None:
            out["params_declaration"] = declaration
    readers = {
        "env": lambda n: read_env(n, "env", log),
        "dotenv": lambda n: read_str_list(n, "dotenv", log),
        "schedule": lambda n: read_schedule(n, "schedule", log),
        "preconditions": lambda n: read_preconditions(n, "preconditions", log),
        "mail_on": lambda n: _bool_map(n, _MAIL_ON, log),
        "smtp": lambda n: _smtp(n, log),
        "error_mail": lambda n: _mail(n, "error_mail", log),
        "info_mail": lambda n: _mail(n, "info_mail", log),
        "wait_mail": lambda n: _mail(n, "wait_mail", log),
        "run_config": lambda n: _bool_map(n, _RUN_CONFIG, log),
        "tags": lambda n: _tags(n, log),
        "worker_selector": lambda n: _worker_selector(n, log),
        "container": lambda n: check_container(n, "container", log),
        "registry_auths": lambda n: _registry_auths(n, log),
        "ssh": lambda n: check_keys(SSH_KEYS, n, "ssh", log),
        "llm": lambda n: check_llm(n, "llm", log),
        "secrets": lambda n: _secrets(n, log),
    }
    for key, read in readers.items():
        if (node := f.get(key)) is not None:
            value = read(node)
            if value is not None:
                out[key] = value


def _dag_type(node: Node, log: IssueLog) -> DagType | None:
    text = scalar_text(node).strip().lower() if node.is_scalar else ""
    for member in DagType:
        if text == member.value:
            return member
    log.add(node, "type", f"invalid type {describe(node)} (must be one of: graph, chain)", "write `type: graph` or `type: chain`")
    return None


def _duration(node: Node, field: str, log: IssueLog) -> float | None:
    text = scalar_text(node).strip() if node.is_scalar else ""
    if isinstance(node.value, (int, float)) and not isinstance(node.value, bool) and node.value >= 0:
        return float(node.value)
    if text and _DURATION_RE.sub("", text) == "":
        return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_RE.findall(text))
    log.add(node, field, f"expected a duration such as 6h or 2d12h, got {describe(node)}", f"write `{field}: 6h`")
    return None


def _shell(node: Node, log: IssueLog) -> str | None:
    if node.is_seq:
        items = read_str_list(node, "shell", log)
        return shlex.join(items) if items else None
    return (read_str(node, "shell", log) or "").strip() or None


def _bool_map(node: Node, table: KeyTable, log: IssueLog) -> dict[str, bool]:
    f = read_mapping(node, table, table.what, log)
    result = {}
    for key in f:
        value = f.get(key)
        if value is not None:
            flag = read_bool(value, f.field(key), log)
            if flag is not None:
                result[key] = flag
    return result


def _smtp(node: Node, log: IssueLog) -> dict[str, Any]:
    f = read_mapping(node, _SMTP, "smtp", log)
    result: dict[str, Any] = {}
    for key in f:
        value = f.get(key)
        if value is None:
            continue
        if key == "oauth":
            result[key] = plain(value)
        elif key == "port":
            port = read_int(value, f.field(key), log, allow_refs=True)
            result[key] = port if port is not None else None
        else:
            result[key] = read_str(value, f.field(key), log)
    return {k: v for k, v in result.items() if v is not None}


def _mail(node: Node, field: str, log: IssueLog) -> dict[str, Any]:
    f = read_mapping(node, _MAIL, field, log)
    result: dict[str, Any] = {}
    for key in f:
        value = f.get(key)
        if value is None:
            continue
        if key == "to":
            result[key] = read_str_list(value, f.field(key), log)
        elif key == "attach_logs":
            result[key] = read_bool(value, f.field(key), log)
        else:
            result[key] = read_str(value, f.field(key), log)
    return {k: v for k, v in result.items() if v is not None}


def _tags(node: Node, log: IssueLog) -> tuple[str, ...] | None:
    items = read_str_list(node, "tags", log)
    if items is None:
        return None
    words = (w.strip().lower() for item in items for w in item.split(","))
    return tuple(w for w in words if w)


def _worker_selector(node: Node, log: IssueLog) -> dict[str, str] | None:
    if node.is_scalar and scalar_text(node).strip() == "local":
        return {}  # 2.15: run on the local host; no labels to match
    return read_str_map(node, "worker_selector", log)


def _registry_auths(node: Node, log: IssueLog) -> Any:
    if node.is_seq:
        log.add(node, "registry_auths", f"expected a JSON string or a mapping of registry to credentials, got {describe(node)}")
        return None
    return plain(node)


def _secrets(node: Node, log: IssueLog) -> tuple[Any, ...] | None:
    if not node.is_seq:
        log.add(node, "secrets", f"expected a list of {{name, provider, key}} entries, got {describe(node)}")
        return None
    secrets = []
    seen: set[str] = set()
    for i, item in enumerate(node.value):
        path = f"secrets[{i}]"
        f = read_mapping(item, _SECRET, path, log)
        name_node = f.get("name")
        name = read_str(name_node, f.field("name"), log) if name_node is not None else None
        if not name:
            if item.is_map:
                log.add(item, path, "secret needs a `name`", "write `- {name: API_TOKEN, provider: env, key: API_TOKEN}`")
            continue
        if name in seen:
            log.add(name_node, f.field("name"), f'duplicate secret name "{name}"')
        seen.add(name)
        secrets.append(freeze({k: plain(f.get(k)) for k in f if f.get(k) is not None}))
    return tuple(secrets)
