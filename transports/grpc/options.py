"""Coordinator, worker and peer (TLS) options: config.yaml keys and `DAGU_*` variables.

Reads the raw config mapping that `dagu.config.Settings` keeps (`settings.raw`),
so the shared settings loader needs no knowledge of the distributed mode. Keys
take the snake_case or camelCase spelling (service.md 8.1):

    coordinator: {host, port, advertise, enabled, worker_lost_after}
    worker: {id, max_active_runs, labels, heartbeat_interval}
    peer: {cert_file, key_file, client_ca_file, insecure, skip_tls_verify}
    default_execution_mode: local | distributed

Command-line flags win over variables, variables over the file.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from dagu.config import ConfigError, Settings

__all__ = [
    "PeerOptions", "CoordinatorOptions", "WorkerOptions",
    "peer_options", "coordinator_options", "worker_options", "parse_labels", "is_distributed_default",
    "coordinator_configured",
]

DEFAULT_PORT = 50055


@dataclass(frozen=True, slots=True)
class PeerOptions:
    """TLS between coordinator and its clients (service.md 3.3)."""

    cert_file: str | None = None
    key_file: str | None = None
    client_ca_file: str | None = None  # server: verify client certs (mTLS); client: CA of the server
    insecure: bool = True
    skip_tls_verify: bool = False

    @property
    def uses_tls(self) -> bool:
        return bool(self.cert_file or self.client_ca_file) or not self.insecure


@dataclass(frozen=True, slots=True)
class CoordinatorOptions:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    advertise: str | None = None
    worker_lost_after_s: float = 15.0  # no heartbeat for this long: the worker is lost
    peer: PeerOptions = PeerOptions()

    @property
    def address(self) -> str:
        return f"{self.advertise or self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    worker_id: str
    coordinator: str  # host:port
    labels: tuple[tuple[str, str], ...] = ()
    max_active_runs: int = 4
    heartbeat_interval_s: float = 1.0
    health_port: int | None = None
    peer: PeerOptions = PeerOptions()


def peer_options(settings: Settings, env: Mapping[str, str] | None = None, **flags: Any) -> PeerOptions:
    """`peer.*` keys, `DAGU_PEER_*` variables, then non-None `flags` (field names)."""
    env = os.environ if env is None else env
    raw = _section(settings, "peer")
    values: dict[str, Any] = {}
    for key, name, conv in (
        ("cert_file", "DAGU_PEER_CERT_FILE", str),
        ("key_file", "DAGU_PEER_KEY_FILE", str),
        ("client_ca_file", "DAGU_PEER_CLIENT_CA_FILE", str),
        ("insecure", "DAGU_PEER_INSECURE", _bool),
        ("skip_tls_verify", "DAGU_PEER_SKIP_TLS_VERIFY", _bool),
    ):
        value = env.get(name) or _get(raw, key)
        if value not in (None, ""):
            values[key] = _convert(conv, value, f"peer.{key}")
    if ("cert_file" in values or "client_ca_file" in values) and "insecure" not in values:
        values["insecure"] = False
    return replace(PeerOptions(**values), **{k: v for k, v in flags.items() if v is not None})


def coordinator_options(settings: Settings, env: Mapping[str, str] | None = None, **flags: Any) -> CoordinatorOptions:
    """`coordinator.*` keys, `DAGU_COORDINATOR_*` variables, then non-None `flags`."""
    env = os.environ if env is None else env
    raw = _section(settings, "coordinator")
    values: dict[str, Any] = {}
    for key, name, conv, attr in (
        ("host", "DAGU_COORDINATOR_HOST", str, "host"),
        ("port", "DAGU_COORDINATOR_PORT", int, "port"),
        ("advertise", "DAGU_COORDINATOR_ADVERTISE", str, "advertise"),
        ("worker_lost_after", "DAGU_COORDINATOR_WORKER_LOST_AFTER", _duration, "worker_lost_after_s"),
    ):
        value = env.get(name) or _get(raw, key)
        if value not in (None, ""):
            values[attr] = _convert(conv, value, f"coordinator.{key}")
    peer_flags = flags.pop("peer", None) or {}
    values["peer"] = peer_options(settings, env, **peer_flags)
    return replace(CoordinatorOptions(**values), **{k: v for k, v in flags.items() if v is not None})


def worker_options(settings: Settings, env: Mapping[str, str] | None = None, **flags: Any) -> WorkerOptions:
    """`worker.*` keys, `DAGU_WORKER_*` variables, then non-None `flags`."""
    env = os.environ if env is None else env
    raw = _section(settings, "worker")
    coord = coordinator_options(settings, env)
    values: dict[str, Any] = {
        "worker_id": f"{socket.gethostname()}@{os.getpid()}",
        "coordinator": f"{coord.advertise or coord.host}:{coord.port}",
    }
    for key, name, conv, attr in (
        ("id", "DAGU_WORKER_ID", str, "worker_id"),
        ("coordinator", "DAGU_WORKER_COORDINATOR", str, "coordinator"),
        ("max_active_runs", "DAGU_WORKER_MAX_ACTIVE_RUNS", int, "max_active_runs"),
        ("labels", "DAGU_WORKER_LABELS", parse_labels, "labels"),
        ("heartbeat_interval", "DAGU_WORKER_HEARTBEAT_INTERVAL", _duration, "heartbeat_interval_s"),
        ("health_port", "DAGU_WORKER_HEALTH_PORT", int, "health_port"),
    ):
        value = env.get(name) or _get(raw, key)
        if value not in (None, ""):
            values[attr] = _convert(conv, value, f"worker.{key}")
    peer_flags = flags.pop("peer", None) or {}
    values["peer"] = peer_options(settings, env, **peer_flags)
    opts = replace(WorkerOptions(**values), **{k: v for k, v in flags.items() if v is not None})
    if opts.max_active_runs < 1:
        raise ConfigError(f"worker.max_active_runs: expected a whole number >= 1, got {opts.max_active_runs}")
    return opts


def parse_labels(value: Any) -> tuple[tuple[str, str], ...]:
    """`k=v,k2=v2` (or a mapping) -> sorted (key, value) pairs.

    Raises:
        ValueError: an item without `=` or with an empty key.
    """
    if isinstance(value, Mapping):
        items = [(str(k), str(v)) for k, v in value.items()]
    else:
        items = []
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, val = part.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"expected key=value, got {part!r} (write labels as `gpu=true,zone=eu`)")
            items.append((key.strip(), val.strip()))
    return tuple(sorted(dict(items).items()))


def coordinator_configured(settings: Settings, env: Mapping[str, str] | None = None) -> bool:
    """Whether the scheduler should route runs through a coordinator.

    True when `coordinator.enabled` is set, or the config or the environment names
    a coordinator host or port (`start-all --coordinator` sets DAGU_COORDINATOR_ENABLED).
    """
    env = os.environ if env is None else env
    raw = _section(settings, "coordinator")
    enabled = env.get("DAGU_COORDINATOR_ENABLED") or _get(raw, "enabled")
    if enabled not in (None, ""):
        return _convert(_bool, enabled, "coordinator.enabled")
    return bool(env.get("DAGU_COORDINATOR_HOST") or env.get("DAGU_COORDINATOR_PORT") or _get(raw, "host") or _get(raw, "port"))


def is_distributed_default(settings: Settings, env: Mapping[str, str] | None = None) -> bool:
    """`default_execution_mode: distributed` (2.x key): DAGs without a selector go to workers too."""
    env = os.environ if env is None else env
    mode = env.get("DAGU_DEFAULT_EXECUTION_MODE") or _get(settings.raw, "default_execution_mode") or "local"
    if mode not in ("local", "distributed"):
        raise ConfigError(f"default_execution_mode: expected local or distributed, got {mode!r}")
    return mode == "distributed"


def _section(settings: Settings, key: str) -> Mapping[str, Any]:
    value = _get(settings.raw, key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{settings.config_file}: {key}: expected a mapping, got {type(value).__name__}")
    return value


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _get(mapping: Mapping[str, Any], key: str) -> Any:
    return mapping[key] if key in mapping else mapping.get(_camel(key))


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _duration(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


def _convert(conv: Any, value: Any, name: str) -> Any:
    try:
        return conv(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: {exc}") from exc
