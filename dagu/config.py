"""Settings: `--dagu-home`/`DAGU_HOME`, config.yaml and `DAGU_*` variables folded into one frozen value.

Precedence, highest first: command-line flag, environment variable, config file,
built-in default. Nothing here creates folders; commands that write call
`Settings.ensure_dirs()`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dagu.errors import DaguError, SpecError, SpecIssue

__all__ = ["Settings", "QueueConfig", "AuthSettings", "OidcSettings", "ConfigError", "load_settings"]


class ConfigError(DaguError):
    """config.yaml or a DAGU_* variable holds a value we cannot use."""

    code = "invalid_config"


@dataclass(frozen=True, slots=True)
class QueueConfig:
    name: str
    max_concurrency: int = 1


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """`auth.oidc.*`: the OpenID Connect client and how its claims become a role."""

    client_id: str = ""
    client_secret: str = ""
    client_url: str = ""  # this server's external URL; the callback is <client_url>/oidc-callback
    issuer: str = ""
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    whitelist: tuple[str, ...] = ()  # allowed emails; empty allows everyone
    groups_claim: str = "groups"
    role_mapping: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # group -> role
    default_role: str = "viewer"


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """`auth.*`: the mode and the credentials each mode uses (service.md 6)."""

    mode: str = "none"  # none | basic | builtin | oidc
    basic_username: str = ""
    basic_password: str = ""
    token: str = ""  # static bearer token (`auth.token.value`)
    admin_username: str = "admin"
    admin_password: str = ""  # empty: generate one on first start
    token_secret: str = ""
    token_ttl_s: float = 24 * 3600.0
    oidc: OidcSettings = field(default_factory=OidcSettings)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every path and knob a command needs; built once by `load_settings`."""

    home: Path | None  # None in the XDG layout
    config_file: Path
    dags_dir: Path
    data_dir: Path
    log_dir: Path
    admin_log_dir: Path
    suspend_dir: Path
    base_config: Path
    host: str = "127.0.0.1"
    port: int = 8080
    base_path: str = ""
    tz: str | None = None
    default_shell: str | None = None
    work_dir: str | None = None
    debug: bool = False
    quiet: bool = False
    log_format: str = "text"
    queues_enabled: bool = True
    queues: tuple[QueueConfig, ...] = ()
    scheduler_port: int = 8090
    zombie_detection_interval_s: float = 45.0
    heartbeat_interval_s: float = 15.0  # how often a run process rewrites its heartbeat file
    lock_stale_threshold_s: float = 30.0
    lock_retry_interval_s: float = 5.0
    env_passthrough: tuple[str, ...] = ()
    env_passthrough_prefixes: tuple[str, ...] = ()
    auth: AuthSettings = field(default_factory=AuthSettings)
    permissions_write_dags: bool = True  # `permissions.writeDAGs`
    permissions_run_dags: bool = True  # `permissions.runDAGs`
    metrics_public: bool = False  # `metrics: public`
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def dag_runs_dir(self) -> Path:
        return self.data_dir / "dag-runs"

    @property
    def proc_dir(self) -> Path:
        return self.data_dir / "proc"

    @property
    def queue_dir(self) -> Path:
        return self.data_dir / "queue"

    def ensure_dirs(self) -> None:
        """Create the folders a writing command needs (never done at load time)."""
        for p in (self.dags_dir, self.data_dir, self.log_dir):
            p.mkdir(parents=True, exist_ok=True)

    def env_for_children(self) -> dict[str, str]:
        """Variables a spawned `dagu` process needs to see the same settings."""
        env = {}
        if self.home is not None:
            env["DAGU_HOME"] = str(self.home)
        if self.config_file.exists():
            env["DAGU_CONFIG"] = str(self.config_file)
        return env


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def load_settings(
    *,
    dagu_home: str | None = None,
    config: str | None = None,
    quiet: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve the home folder and merge config.yaml and `DAGU_*` variables.

    Raises:
        ConfigError: the config file is unreadable YAML or a value has the wrong type.
    """
    env = os.environ if environ is None else environ
    home_text = dagu_home or env.get("DAGU_HOME")
    if home_text:
        home: Path | None = Path(home_text).expanduser().absolute()
        config_dir = data_root = home
    else:
        legacy = Path(env.get("HOME", "~")).expanduser() / ".dagu"
        if legacy.is_dir():
            home = config_dir = data_root = legacy
        else:
            home = None
            config_dir = Path(env.get("XDG_CONFIG_HOME") or Path(env.get("HOME", "~")).expanduser() / ".config") / "dagu"
            data_root = Path(env.get("XDG_DATA_HOME") or Path(env.get("HOME", "~")).expanduser() / ".local/share") / "dagu"
    config_file = Path(config or env.get("DAGU_CONFIG") or config_dir / "config.yaml").expanduser().absolute()
    raw = _read_config(config_file, explicit=bool(config))
    paths = _sub(raw, "paths", config_file)

    def path_of(key: str, env_names: tuple[str, ...], default: Path) -> Path:
        for name in env_names:
            if env.get(name):
                return Path(env[name]).expanduser().absolute()
        value = _get(paths, key)
        if value:
            p = Path(str(value)).expanduser()
            return p if p.is_absolute() else (config_file.parent / p).absolute()
        return default

    dags_dir = path_of("dags_dir", ("DAGU_DAGS_DIR", "DAGU_DAGS"), config_dir / "dags")
    data_dir = path_of("data_dir", ("DAGU_DATA_DIR",), data_root / "data")
    log_dir = path_of("log_dir", ("DAGU_LOG_DIR",), data_root / "logs")
    values: dict[str, Any] = {
        "home": home,
        "config_file": config_file,
        "dags_dir": dags_dir,
        "data_dir": data_dir,
        "log_dir": log_dir,
        "admin_log_dir": path_of("admin_logs_dir", ("DAGU_ADMIN_LOG_DIR",), log_dir / "admin"),
        "suspend_dir": path_of("suspend_flags_dir", ("DAGU_SUSPEND_FLAGS_DIR",), data_root / "suspend"),
        "base_config": path_of("base_config", ("DAGU_BASE_CONFIG",), config_dir / "base.yaml"),
        "quiet": quiet,
        "raw": MappingProxyType(raw),
    }
    scalars = (
        ("host", "DAGU_HOST", str),
        ("port", "DAGU_PORT", int),
        ("base_path", "DAGU_BASE_PATH", str),
        ("tz", "DAGU_TZ", str),
        ("default_shell", "DAGU_DEFAULT_SHELL", str),
        ("work_dir", "DAGU_WORK_DIR", str),
        ("debug", "DAGU_DEBUG", _bool),
        ("log_format", "DAGU_LOG_FORMAT", str),
    )
    for key, env_name, conv in scalars:
        value = env.get(env_name) or _get(raw, key)
        if value not in (None, ""):
            values[key] = _convert(conv, value, env_name if env.get(env_name) else key, config_file)
    queues = _sub(raw, "queues", config_file)
    enabled = env.get("DAGU_QUEUE_ENABLED") or _get(queues, "enabled")
    if enabled is not None:
        values["queues_enabled"] = _convert(_bool, enabled, "queues.enabled", config_file)
    values["queues"] = _queue_configs(_get(queues, "config") or [], config_file)
    sched = _sub(raw, "scheduler", config_file)
    for key, env_name, attr in (
        ("port", "DAGU_SCHEDULER_PORT", "scheduler_port"),
        ("zombie_detection_interval", "DAGU_SCHEDULER_ZOMBIE_DETECTION_INTERVAL", "zombie_detection_interval_s"),
        ("lock_stale_threshold", "DAGU_SCHEDULER_LOCK_STALE_THRESHOLD", "lock_stale_threshold_s"),
        ("lock_retry_interval", "DAGU_SCHEDULER_LOCK_RETRY_INTERVAL", "lock_retry_interval_s"),
        ("heartbeat_interval", "DAGU_HEARTBEAT_INTERVAL", "heartbeat_interval_s"),
    ):
        value = env.get(env_name) or _get(sched, key)
        if value not in (None, ""):
            conv = int if attr == "scheduler_port" else _duration
            values[attr] = _convert(conv, value, f"scheduler.{key}", config_file)
    for key, env_name, attr in (
        ("env_passthrough", "DAGU_ENV_PASSTHROUGH", "env_passthrough"),
        ("env_passthrough_prefixes", "DAGU_ENV_PASSTHROUGH_PREFIXES", "env_passthrough_prefixes"),
    ):
        value = env.get(env_name) or _get(raw, key)
        if value:
            items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
            values[attr] = tuple(i.strip() for i in items if i.strip())
    values.update(_access_settings(raw, env, config_file))
    return Settings(**values)


_AUTH_MODES = ("none", "basic", "builtin", "oidc")


def _access_settings(raw: Mapping[str, Any], env: Mapping[str, str], file: Path) -> dict[str, Any]:
    """`auth.*`, `permissions.*` and `metrics`, each with its `DAGU_*` override."""

    def pick(env_names: tuple[str, ...], mapping: Mapping[str, Any], key: str) -> Any:
        for name in env_names:
            if env.get(name):
                return env[name]
        return _get(mapping, key)

    auth = _sub(raw, "auth", file)
    basic, builtin, oidc = (_sub(auth, k, file) for k in ("basic", "builtin", "oidc"))
    admin = _sub(builtin, "admin", file) or _sub(builtin, "initial_admin", file)
    token_cfg = _get(auth, "token")
    static_token = _get(token_cfg, "value") if isinstance(token_cfg, Mapping) else token_cfg
    jwt_cfg = _sub(builtin, "token", file)
    out: dict[str, Any] = {
        "basic_username": str(pick(("DAGU_AUTH_BASIC_USERNAME", "DAGU_BASICAUTH_USERNAME"), basic, "username") or ""),
        "basic_password": str(pick(("DAGU_AUTH_BASIC_PASSWORD", "DAGU_BASICAUTH_PASSWORD"), basic, "password") or ""),
        "token": str(env.get("DAGU_AUTH_TOKEN") or env.get("DAGU_AUTHTOKEN") or static_token or ""),
        "admin_username": str(pick(("DAGU_AUTH_ADMIN_USERNAME",), admin, "username") or "admin"),
        "admin_password": str(pick(("DAGU_AUTH_ADMIN_PASSWORD",), admin, "password") or ""),
        "token_secret": str(pick(("DAGU_AUTH_TOKEN_SECRET",), jwt_cfg, "secret") or ""),
        "oidc": _oidc_settings(oidc, pick, file),
    }
    ttl = pick(("DAGU_AUTH_TOKEN_TTL",), jwt_cfg, "ttl")
    if ttl not in (None, ""):
        out["token_ttl_s"] = _convert(_duration, ttl, "auth.builtin.token.ttl", file)
    mode = str(pick(("DAGU_AUTH_MODE",), auth, "mode") or "").strip().lower()
    if not mode:
        o = out["oidc"]
        mode = "oidc" if o.client_id and o.client_secret and o.issuer else "none"
    if mode not in _AUTH_MODES:
        raise ConfigError(f"{file}: auth.mode: expected one of {', '.join(_AUTH_MODES)}, got {mode!r}")
    perms = _sub(raw, "permissions", file)
    values: dict[str, Any] = {"auth": AuthSettings(mode=mode, **out)}
    for key, camel, env_name, attr in (
        ("write_dags", "writeDAGs", "DAGU_PERMISSIONS_WRITE_DAGS", "permissions_write_dags"),
        ("run_dags", "runDAGs", "DAGU_PERMISSIONS_RUN_DAGS", "permissions_run_dags"),
    ):
        value = pick((env_name,), perms, key)
        value = perms.get(camel) if value is None else value
        if value is not None:
            values[attr] = _convert(_bool, value, f"permissions.{camel}", file)
    metrics = str(pick(("DAGU_SERVER_METRICS", "DAGU_METRICS"), raw, "metrics") or "private").strip().lower()
    if metrics not in ("public", "private"):
        raise ConfigError(f"{file}: metrics: expected public or private, got {metrics!r}")
    values["metrics_public"] = metrics == "public"
    return values


def _oidc_settings(oidc: Mapping[str, Any], pick, file: Path) -> OidcSettings:
    """`auth.oidc.*`. `roleMapping` is either `{groupsClaim, groupMappings, defaultRole}` or a flat
    `{group: role}` mapping; `defaultRole` may also sit directly under `auth.oidc`."""

    def text(key: str, env_name: str) -> str:
        return str(pick((env_name,), oidc, key) or "")

    def names(key: str, env_name: str) -> tuple[str, ...]:
        value = pick((env_name,), oidc, key)
        if not value:
            return ()
        items = value.replace(",", " ").split() if isinstance(value, str) else [str(v) for v in value]
        return tuple(i.strip() for i in items if i.strip())

    mapping = _sub(oidc, "role_mapping", file)
    structured = any(_get(mapping, k) is not None for k in ("groups_claim", "group_mappings", "default_role"))
    groups = _sub(mapping, "group_mappings", file) if structured else mapping
    out: dict[str, Any] = {
        "client_id": text("client_id", "DAGU_AUTH_OIDC_CLIENT_ID"),
        "client_secret": text("client_secret", "DAGU_AUTH_OIDC_CLIENT_SECRET"),
        "client_url": text("client_url", "DAGU_AUTH_OIDC_CLIENT_URL").rstrip("/"),
        "issuer": text("issuer", "DAGU_AUTH_OIDC_ISSUER").rstrip("/"),
        "whitelist": names("whitelist", "DAGU_AUTH_OIDC_WHITELIST"),
        "role_mapping": MappingProxyType({str(k): str(v) for k, v in groups.items()}),
    }
    scopes = names("scopes", "DAGU_AUTH_OIDC_SCOPES")
    if scopes:
        out["scopes"] = scopes if "openid" in scopes else ("openid", *scopes)
    claim = pick(("DAGU_AUTH_OIDC_GROUPS_CLAIM",), mapping, "groups_claim") if structured else None
    claim = claim or pick(("DAGU_AUTH_OIDC_GROUPS_CLAIM",), oidc, "groups_claim")
    if claim:
        out["groups_claim"] = str(claim)
    default_role = pick(("DAGU_AUTH_OIDC_DEFAULT_ROLE",), mapping, "default_role") if structured else None
    default_role = default_role or pick(("DAGU_AUTH_OIDC_DEFAULT_ROLE",), oidc, "default_role")
    if default_role:
        out["default_role"] = str(default_role)
    return OidcSettings(**out)


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _get(mapping: Mapping[str, Any], key: str) -> Any:
    """Look a key up in either spelling (snake_case canonical, camelCase as 1.x writes it)."""
    if key in mapping:
        return mapping[key]
    return mapping.get(_camel(key))


def _sub(mapping: Mapping[str, Any], key: str, file: Path) -> Mapping[str, Any]:
    value = _get(mapping, key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{file}: {key}: expected a mapping, got {type(value).__name__}")
    return value


def _read_config(path: Path, *, explicit: bool) -> dict[str, Any]:
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {path} does not exist")
        return {}
    import yaml

    try:
        data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        col = mark.column + 1 if mark else 0
        raise SpecError(SpecIssue(str(path), line, col, "", f"config file is not valid YAML: {getattr(exc, 'problem', exc)}")) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _queue_configs(items: Any, file: Path) -> tuple[QueueConfig, ...]:
    if not isinstance(items, list):
        raise ConfigError(f"{file}: queues.config: expected a list of {{name, max_concurrency}}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or not item.get("name"):
            raise ConfigError(f"{file}: queues.config[{i}]: expected a mapping with a name")
        limit = item.get("max_concurrency", item.get("maxConcurrency", item.get("max_active_runs", item.get("maxActiveRuns", 1))))
        out.append(QueueConfig(str(item["name"]), _convert(int, limit, f"queues.config[{i}].max_concurrency", file)))
    return tuple(out)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _duration(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"expected a duration such as 30s or 5m, got {value!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _convert(conv, value: Any, name: str, file: Path) -> Any:
    try:
        return conv(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{file}: {name}: {exc}") from exc
