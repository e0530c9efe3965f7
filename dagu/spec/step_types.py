"""Per step type: which step fields it supports and which `config` keys it accepts.

Owns load-time checks of built-in step types (dag-spec section 4): capabilities
(`command`, several commands, `script`, `shell`), config key names in both spellings,
basic value kinds and required keys. Config keys come back in snake_case. Running
a step type belongs to its module in `dagu.steps`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from dagu.spec.issues import IssueLog, describe
from dagu.spec.keys import KeyTable, key_table, read_mapping
from dagu.spec.model import EMPTY_MAP, freeze
from dagu.spec.nodes import Node, plain
from dagu.spec.values import has_reference

__all__ = ["TypeSpec", "TYPE_SPECS", "LLM_KEYS", "CONTAINER_KEYS", "SSH_KEYS", "check_config", "check_keys", "check_container", "check_llm"]

# Value kinds: str, int, num, bool, map, list, strs (string or list), any.
_SSH = {
    "user": "str", "host": "str", "port": "int", "key": "str", "password": "str",
    "strict_host_key": "bool", "known_host_file": "str", "shell": "strs", "timeout": "any",
    "bastion": "map",
}  # fmt: skip
_LLM = {
    "provider": "str", "model": "strs", "system": "str", "temperature": "num", "max_tokens": "int",
    "top_p": "num", "base_url": "str", "api_key_name": "str", "stream": "bool", "thinking": "map",
}  # fmt: skip
_SQL = {
    "dsn": "str", "query": "str", "params": "any", "timeout": "int", "transaction": "bool",
    "isolation_level": "str", "advisory_lock": "any", "file_lock": "bool", "output_format": "str",
    "headers": "bool", "null_string": "str", "max_rows": "int", "streaming": "bool",
    "output_file": "str", "max_open_conns": "int", "max_idle_conns": "int",
    "conn_max_lifetime": "int", "import": "map",
}  # fmt: skip
_SQL_CHOICES = {"output_format": ("jsonl", "json", "csv")}


@dataclass(frozen=True, slots=True)
class TypeSpec:
    """What one step type accepts. `commands`: "none", "single" or "multi"."""

    name: str
    keys: Mapping[str, str]  # canonical key -> value kind
    commands: str = "none"
    script: bool = False
    shell: bool = False
    required: tuple[tuple[str, ...], ...] = ()  # each group: at least one of these keys
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: EMPTY_MAP)
    aliases: Mapping[str, str] = field(default_factory=lambda: EMPTY_MAP)

    def table(self) -> KeyTable:
        return _table(self)


def _spec(name: str, keys: Mapping[str, str], **kwargs: Any) -> TypeSpec:
    return TypeSpec(name, MappingProxyType(dict(keys)), **kwargs)


TYPE_SPECS: Mapping[str, TypeSpec] = MappingProxyType(
    {
        s.name: s
        for s in (
            _spec("command", {"shell": "strs", "shell_args": "list", "shell_packages": "list"}, commands="multi", script=True, shell=True),
            _spec("dag", {"dag": "str", "params": "any", "queue": "str"}),
            _spec("parallel", {"dag": "str", "params": "any", "queue": "str"}),
            _spec(
                "http",
                {
                    "timeout": "int", "headers": "map", "query": "map", "body": "any", "silent": "bool",
                    "debug": "bool", "json": "bool", "skip_tls_verify": "bool", "method": "str", "url": "str",
                    "form": "map", "files": "any", "format": "str", "output": "str",
                },  # fmt: skip
                commands="single",
                script=True,
                aliases={"skipTLSVerify": "skip_tls_verify"},
            ),
            _spec("ssh", _SSH, commands="multi", script=True, shell=True, aliases={"ip": "host"}),
            _spec(
                "sftp",
                {**_SSH, "direction": "str", "source": "str", "destination": "str"},
                required=(("source",), ("destination",)),
                choices={"direction": ("upload", "download")},
                aliases={"ip": "host"},
            ),
            _spec(
                "docker",
                {
                    "image": "str", "container_name": "str", "pull": "any", "auto_remove": "bool",
                    "platform": "str", "working_dir": "str", "volumes": "list", "container": "map",
                    "host": "map", "network": "any", "exec": "map", "command": "strs", "env": "any",
                },  # fmt: skip
                commands="multi",
                shell=True,
            ),
            _spec("postgres", _SQL, commands="multi", script=True, required=(("dsn",),), choices=_SQL_CHOICES),
            _spec("sqlite", _SQL, commands="multi", script=True, required=(("dsn",),), choices=_SQL_CHOICES),
            _spec(
                "redis",
                {
                    "url": "str", "host": "str", "port": "int", "password": "str", "username": "str", "db": "int",
                    "tls": "bool", "tls_cert": "str", "tls_key": "str", "tls_ca": "str", "tls_skip_verify": "bool",
                    "mode": "str", "sentinel_master": "str", "sentinel_addrs": "list", "cluster_addrs": "list",
                    "max_retries": "int", "command": "str", "key": "str", "keys": "list", "value": "any",
                    "values": "any", "field": "str", "fields": "any", "ttl": "int", "nx": "bool", "xx": "bool",
                    "script": "str", "script_file": "str", "script_sha": "str", "pipeline": "list", "lock": "str",
                    "lock_timeout": "int", "lock_retry": "int", "lock_wait": "int", "output_format": "str",
                    "timeout": "int", "start": "any", "stop": "any", "count": "int", "score": "num", "min": "any",
                    "max": "any", "member": "any", "members": "any", "channel": "str", "message": "any",
                    "stream": "str", "group": "str", "consumer": "str", "id": "str", "block": "int",
                    "position": "str", "pivot": "any", "index": "int", "increment": "num", "match": "str",
                    "with_scores": "bool", "reverse": "bool", "args": "list",
                },  # fmt: skip
                commands="single",
                script=True,
                choices={"mode": ("standalone", "sentinel", "cluster")},
            ),
            _spec(
                "s3",
                {
                    "region": "str", "endpoint": "str", "access_key_id": "str", "secret_access_key": "str",
                    "session_token": "str", "profile": "str", "force_path_style": "bool", "disable_ssl": "bool",
                    "bucket": "str", "key": "str", "source": "str", "destination": "str", "content_type": "str",
                    "storage_class": "str", "metadata": "map", "tags": "map", "sse": "str", "acl": "str",
                    "part_size": "int", "concurrency": "int", "prefix": "str", "delimiter": "str",
                    "recursive": "bool", "max_keys": "int", "output_format": "str", "quiet": "bool", "operation": "str",
                },  # fmt: skip
                commands="single",
            ),
            _spec("jq", {"raw": "bool", "filter": "str", "data": "any", "input": "str"}, commands="single", script=True),
            _spec(
                "mail",
                {"from": "str", "to": "strs", "subject": "str", "message": "str", "attachments": "strs"},
                required=(("to",),),
            ),
            _spec(
                "archive",
                {
                    "source": "str", "destination": "str", "format": "str", "compression_level": "int",
                    "password": "str", "overwrite": "bool", "preserve_paths": "bool", "strip_components": "int",
                    "include": "strs", "exclude": "strs", "dry_run": "bool", "verbose": "bool",
                    "follow_symlinks": "bool", "verify_integrity": "bool", "continue_on_error": "bool",
                },  # fmt: skip
                commands="single",
            ),
            _spec("template", {"template": "str", "template_ref": "str", "data": "any", "output": "str"}, script=True),
            _spec("router", {"value": "str", "routes": "map"}, required=(("value",), ("routes",))),
            _spec("chat", {**_LLM, "prompt": "str", "messages": "list", "tools": "list", "web_search": "any"}, aliases={"baseURL": "base_url"}),
            _spec(
                "kubernetes",
                {
                    "image": "str", "command": "any", "namespace": "str", "kubeconfig": "str", "context": "str",
                    "service_account": "str", "working_dir": "str", "image_pull_policy": "str",
                    "image_pull_secrets": "list", "env": "list", "env_from": "list", "resources": "map",
                    "node_selector": "map", "tolerations": "list", "affinity": "map", "security_context": "map",
                    "pod_security_context": "map", "termination_grace_period_seconds": "int",
                    "priority_class_name": "str", "labels": "map", "annotations": "map", "volumes": "list",
                    "volume_mounts": "list", "active_deadline": "int", "backoff_limit": "int",
                    "ttl_after_finished": "int", "cleanup_policy": "str", "pod_failure_policy": "any",
                },  # fmt: skip
                commands="multi",
                shell=True,
                choices={"cleanup_policy": ("delete", "keep")},
            ),
            _spec(
                "gha",
                {
                    "runner": "str", "auto_remove": "bool", "network": "str", "github_instance": "str",
                    "docker_socket": "str", "artifacts": "any", "reuse_containers": "bool",
                    "force_rebuild": "bool", "container_options": "str", "privileged": "bool",
                    "capabilities": "list",
                },  # fmt: skip
                commands="single",
            ),
            _spec("hitl", {"prompt": "str", "input": "list", "required": "list"}),
        )
    }
)

SSH_KEYS = TYPE_SPECS["ssh"]
LLM_KEYS = _spec("llm", _LLM, aliases={"baseURL": "base_url"})
CONTAINER_KEYS = _spec(
    "container",
    {
        "exec": "str", "image": "str", "name": "str", "pull_policy": "any", "env": "any", "volumes": "list",
        "user": "str", "working_dir": "str", "platform": "str", "ports": "list", "network": "str",
        "keep_container": "bool", "startup": "str", "command": "strs", "wait_for": "str",
        "log_pattern": "str", "restart_policy": "str", "healthcheck": "map", "shell": "strs",
    },  # fmt: skip
    choices={"startup": ("keepalive", "entrypoint", "command"), "wait_for": ("running", "healthy")},
    aliases={"workDir": "working_dir"},
)
_LLM_PROVIDERS = ("openai", "anthropic", "gemini", "openrouter", "local", "ollama", "vllm", "llama")
_EXEC_MODE_KEYS = frozenset({"exec", "user", "working_dir", "env"})
_TABLES: dict[str, KeyTable] = {}


def check_config(spec: TypeSpec, node: Node, path: str, log: IssueLog) -> Mapping[str, Any]:
    """Check a step's `config` against its type; returns it frozen with snake_case keys."""
    values = check_keys(spec, node, path, log)
    if values is None:
        return EMPTY_MAP
    for group in spec.required:
        if not any(k in values for k in group):
            log.add(node, path, f"{spec.name} steps need `{group[0]}` in config", f"add `{group[0]}: ...` under config")
    return freeze(values)


def check_keys(spec: TypeSpec, node: Node, path: str, log: IssueLog) -> dict[str, Any] | None:
    """Check a mapping against `spec`'s keys, kinds and choices; plain values by canonical key."""
    fields = read_mapping(node, spec.table(), path, log)
    if not node.is_map:
        return None
    values: dict[str, Any] = {}
    for key in fields:
        value = fields.get(key)
        if value is None:
            continue
        if _kind_ok(spec.keys[key], value):
            values[key] = plain(value)
        else:
            log.add(value, fields.field(key), f"expected {_KIND_TEXT[spec.keys[key]]}, got {describe(value)}")
            continue
        allowed = spec.choices.get(key)
        if allowed and isinstance(value.value, str) and not has_reference(value.value) and value.value not in allowed:
            log.add(value, fields.field(key), f"expected one of {', '.join(allowed)}, got {describe(value)}")
    return values


def check_container(node: Node, path: str, log: IssueLog) -> Any:
    """A DAG or step `container`: a container name (string) or an exec/image object."""
    if node.is_scalar and isinstance(node.value, str) and node.value.strip():
        return node.value.strip()
    if not node.is_map:
        log.add(node, path, f"expected a container name or a mapping with `image` or `exec`, got {describe(node)}")
        return None
    values = check_keys(CONTAINER_KEYS, node, path, log) or {}
    has_exec, has_image = "exec" in values, "image" in values
    if has_exec and has_image:
        log.add(node, path, "container sets both `exec` and `image`; use one", "`exec` runs in an existing container, `image` starts a new one")
    elif not has_exec and not has_image:
        log.add(node, path, "container needs `image` (start a new container) or `exec` (use an existing one)")
    elif has_exec:
        extra = sorted(set(values) - _EXEC_MODE_KEYS)
        if extra:
            log.add(node, path, f"container in exec mode only accepts user, working_dir and env besides exec; found {', '.join(extra)}")
    return freeze(values)


def check_llm(node: Node, field: str, log: IssueLog) -> Any:
    """Chat settings (`llm:` on the DAG or a step): known keys and value ranges."""
    values = check_keys(LLM_KEYS, node, field, log)
    if values is None:
        return None
    _range(values, "temperature", 0.0, 2.0, node, field, log)
    _range(values, "top_p", 0.0, 1.0, node, field, log)
    _range(values, "max_tokens", 1, None, node, field, log)
    provider = values.get("provider")
    if isinstance(provider, str) and "$" not in provider and provider.lower() not in _LLM_PROVIDERS:
        log.add(node, f"{field}.provider", f"unknown llm provider {provider!r}", f"use one of {', '.join(_LLM_PROVIDERS)}")
    return freeze(values)


def _range(values: dict, key: str, low: float, high: float | None, node: Node, field: str, log: IssueLog) -> None:
    value = values.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        log.add(node, f"{field}.{key}", f"{key} must be {bound}, got {value:g}")


_KIND_TEXT = {
    "str": "a string",
    "int": "a whole number",
    "num": "a number",
    "bool": "true or false",
    "map": "a mapping",
    "list": "a list",
    "strs": "a string or a list of strings",
    "any": "a value",
}


def _kind_ok(kind: str, node: Node) -> bool:
    value = node.value
    if node.is_scalar and isinstance(value, str) and has_reference(value):
        return True  # resolved at run time
    if kind == "any":
        return True
    if kind == "map":
        return node.is_map
    if kind == "list":
        return node.is_seq
    if kind == "strs":
        return node.is_scalar or (node.is_seq and all(v.is_scalar for v in value))
    if not node.is_scalar:
        return False
    if kind == "str":
        return True
    if kind == "bool":
        return isinstance(value, bool) or str(value).lower() in ("true", "false")
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit())
    return isinstance(value, (int, float)) or _is_float_text(value)


def _is_float_text(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _table(spec: TypeSpec) -> KeyTable:
    table = _TABLES.get(spec.name)
    if table is None:
        table = _TABLES[spec.name] = key_table(f"{spec.name} config", spec.keys, spec.aliases)
    return table
