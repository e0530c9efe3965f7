"""The `redis` step type: one Redis command, a Lua script or a pipeline, with the result as JSON.

Owns one redis attempt (dag-spec 4.7): the connection (`url`, or host/port/db/username/
password, TLS), the command (2.15 `action: redis.<command>`, config `command` plus
key/value/field/... keys, or a step `command` line such as `SET k v`), Lua scripts,
pipelines, an optional lock around the work, `ttl`, and the JSON output. Stop and timeout
close the connection under a blocked command. Sentinel and cluster modes are not
supported yet and fail with a clear error.
"""

from __future__ import annotations

import logging
import os
import shlex
import threading
import time
from collections.abc import Mapping
from typing import Any

import orjson

from dagu.steps.base import Attempt
from dagu.steps.service import ServiceExecutor, StepFailure, StepLogs, config_bool, config_float, config_int, redact, require

__all__ = ["RedisExecutor", "command_args", "to_json"]

logger = logging.getLogger(__name__)

_DEFAULT_TIMEOUT_S = 30.0
_SETTERS = {"SET", "SETEX", "SETNX", "EXPIRE", "PEXPIRE"}  # commands that take the ttl themselves


class RedisExecutor(ServiceExecutor):
    """One attempt of a redis step."""

    type_name = "redis"

    def __init__(self, attempt: Attempt) -> None:
        super().__init__(attempt)
        self._client: Any = None
        self._lock = threading.Lock()

    def execute(self, logs: StepLogs) -> int:
        redis = require("redis", "redis", "redis")
        cfg = self.config
        client = self._connect(redis)
        with self._lock:
            self._client = client
        try:
            if self.is_ending:
                return 1
            result = self._with_lock(client, redis, lambda: self._with_retries(redis, lambda: self._operation(client)))
        except redis.exceptions.ResponseError as exc:
            raise StepFailure(f"redis: {self._what()} failed on {self._where()}: {exc}") from exc
        except redis.exceptions.TimeoutError as exc:
            raise StepFailure(f"redis: {self._what()} timed out on {self._where()} (config timeout {self._timeout_s():g}s)") from exc
        except redis.exceptions.ConnectionError as exc:
            if self.is_ending:
                return 1
            raise StepFailure(f"redis: cannot talk to {self._where()}: {exc}") from exc
        finally:
            with self._lock:
                self._client = None
            client.close()
        logs.out(to_json(result, str(cfg.get("output_format") or "json")) + "\n")
        return 0

    def interrupt(self, signal_name: str, grace_s: float) -> None:
        with self._lock:
            client = self._client
        if client is not None:
            # Shutting the sockets down wakes a thread blocked in BLPOP and friends.
            client.connection_pool.disconnect(inuse_connections=True)

    # -- connection --------------------------------------------------------------

    def _connect(self, redis: Any) -> Any:
        cfg = self.config
        mode = str(cfg.get("mode") or "standalone")
        if mode != "standalone":
            raise StepFailure(f"redis: mode {mode!r} is not supported yet; use a standalone server (url or host/port)")
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        timeout = self._timeout_s()
        options: dict[str, Any] = {
            "decode_responses": True,
            "socket_timeout": timeout,
            "socket_connect_timeout": min(timeout, 10.0),
            "retry": Retry(NoBackoff(), 0),  # we retry ourselves, and never after a stop
        }
        if cfg.get("url"):
            if cfg.get("password"):
                options["password"] = str(cfg["password"])
            try:
                return redis.Redis.from_url(str(cfg["url"]), **options)
            except ValueError as exc:
                raise StepFailure(f"redis: bad url {redact(str(cfg['url']))}: {exc}") from exc
        options.update(
            host=str(cfg.get("host") or "127.0.0.1"),
            port=config_int(cfg.get("port"), 6379, "port"),
            db=config_int(cfg.get("db"), 0, "db"),
            username=cfg.get("username") or None,
            password=cfg.get("password") or None,
        )
        if config_bool(cfg.get("tls")):
            options.update(ssl=True, ssl_certfile=cfg.get("tls_cert"), ssl_keyfile=cfg.get("tls_key"), ssl_ca_certs=cfg.get("tls_ca"))
            if config_bool(cfg.get("tls_skip_verify")):
                options["ssl_cert_reqs"] = "none"
        return redis.Redis(**options)

    def _where(self) -> str:
        cfg = self.config
        if cfg.get("url"):
            return redact(str(cfg["url"]))
        return f"{cfg.get('host') or '127.0.0.1'}:{cfg.get('port') or 6379}/{cfg.get('db') or 0}"

    def _timeout_s(self) -> float:
        return config_float(self.config.get("timeout"), _DEFAULT_TIMEOUT_S, "timeout")

    # -- the work ----------------------------------------------------------------

    def _operation(self, client: Any) -> Any:
        cfg = self.config
        if cfg.get("pipeline"):
            return self._pipeline(client, cfg["pipeline"])
        script = self._script()
        if script is not None or cfg.get("script_sha"):
            return self._lua(client, script)
        args = self._args()
        result = client.execute_command(*args)
        ttl = cfg.get("ttl")
        if ttl not in (None, "") and str(args[0]).upper() not in _SETTERS and cfg.get("key"):
            client.expire(str(cfg["key"]), config_int(ttl, 0, "ttl"))
        return result

    def _args(self) -> list[Any]:
        action = str(self.attempt.step.extras.get("action") or "")
        name = action.split(".", 1)[1] if action.startswith("redis.") else ""
        name = name or str(self.config.get("command") or "")
        if name:
            return command_args(name, self.config)
        if self.attempt.commands:
            try:
                args = shlex.split(self.attempt.commands[0])
            except ValueError as exc:
                raise StepFailure(f"redis: cannot split command {self.attempt.commands[0]!r}: {exc}") from exc
            if args:
                return args
        raise StepFailure("redis: no command; set `command: get` (with key, value, ...) in config or `command: GET mykey` on the step")

    def _what(self) -> str:
        cfg = self.config
        if cfg.get("pipeline"):
            return "pipeline"
        if cfg.get("script") or cfg.get("script_file") or cfg.get("script_sha") or self.attempt.script:
            return "script"
        try:
            args = self._args()
        except StepFailure:
            return "command"
        shown = " ".join(str(a) for a in args[:3])
        return f"command {shown!r}" + ("..." if len(args) > 3 else "")

    def _script(self) -> str | None:
        cfg = self.config
        if cfg.get("script"):
            return str(cfg["script"])
        if cfg.get("script_file"):
            path = os.path.join(self.attempt.cwd, str(cfg["script_file"]))
            try:
                with open(path, encoding="utf-8") as f:
                    return f.read()
            except OSError as exc:
                raise StepFailure(f"redis: cannot read script_file {path}: {exc}") from exc
        return self.attempt.script

    def _lua(self, client: Any, script: str | None) -> Any:
        cfg = self.config
        keys = [str(k) for k in _list(cfg.get("keys"))]
        argv = [_arg(v) for v in _list(cfg.get("args")) or _list(cfg.get("values"))]
        if script is None:
            return client.evalsha(str(cfg["script_sha"]), len(keys), *keys, *argv)
        return client.eval(script, len(keys), *keys, *argv)

    def _pipeline(self, client: Any, commands: list[Any]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for i, entry in enumerate(commands):
            if isinstance(entry, str):
                args = shlex.split(entry)
            elif isinstance(entry, Mapping):
                name = entry.get("command")
                if not name:
                    raise StepFailure(f"redis: pipeline[{i}] needs `command`")
                args = command_args(str(name), entry)
            else:
                args = [_arg(a) for a in entry]
            if not args:
                raise StepFailure(f"redis: pipeline[{i}] is empty")
            pipe.execute_command(*args)
        return pipe.execute(raise_on_error=True)

    def _with_lock(self, client: Any, redis: Any, work) -> Any:
        cfg = self.config
        name = cfg.get("lock")
        if not name:
            return work()
        lock_timeout = config_float(cfg.get("lock_timeout"), 30.0, "lock_timeout")
        retries = config_int(cfg.get("lock_retry"), 10, "lock_retry")
        wait_ms = config_float(cfg.get("lock_wait"), 100.0, "lock_wait")
        lock = client.lock(str(name), timeout=lock_timeout, sleep=wait_ms / 1000.0, blocking_timeout=retries * wait_ms / 1000.0)
        if not lock.acquire():
            raise StepFailure(f"redis: lock {name!r} is held elsewhere (tried {retries} times, {wait_ms:g} ms apart)")
        try:
            return work()
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError as exc:
                logger.warning("%s: releasing lock %s: %s", self.label, name, exc)

    def _with_retries(self, redis: Any, work) -> Any:
        retries = config_int(self.config.get("max_retries"), 0, "max_retries")
        for attempt in range(retries + 1):
            try:
                return work()
            except redis.exceptions.ConnectionError:
                if attempt >= retries or self.is_ending:
                    raise
                time.sleep(min(0.1 * 2**attempt, 2.0))
        raise AssertionError("unreachable")


def command_args(name: str, cfg: Mapping[str, Any]) -> list[Any]:
    """The argv of command `name` from the config's key/keys/field/fields/value/values/... keys."""
    cmd = name.strip().upper().replace(".", " ").split()
    op = cmd[0]
    key = [str(cfg["key"])] if cfg.get("key") not in (None, "") else []
    keys = [str(k) for k in _list(cfg.get("keys"))]
    value = [_arg(cfg["value"])] if cfg.get("value") is not None else []
    values = _list(cfg.get("values"))
    extra = [_arg(a) for a in _list(cfg.get("args"))]
    if op == "SET":
        args = [*cmd, *key, *value]
        if cfg.get("ttl") not in (None, ""):
            args += ["EX", config_int(cfg["ttl"], 0, "ttl")]
        args += ["NX"] if config_bool(cfg.get("nx")) else []
        args += ["XX"] if config_bool(cfg.get("xx")) else []
        return args + extra
    if op == "EXPIRE":
        return [*cmd, *key, config_int(cfg.get("ttl"), 0, "ttl"), *extra]
    if op in ("HSET", "HMSET", "MSET", "ZADD") and isinstance(cfg.get("fields") or cfg.get("members") or cfg.get("values"), Mapping):
        pairs = cfg.get("fields") or cfg.get("members") or cfg.get("values")
        flat: list[Any] = []
        for k, v in pairs.items():
            flat += [_arg(v), k] if op == "ZADD" else [k, _arg(v)]
        return [*cmd, *key, *flat, *extra]
    if op == "ZADD":
        return [*cmd, *key, _arg(cfg.get("score")), _arg(cfg.get("member")), *extra]
    if op in ("LRANGE", "ZRANGE", "ZREVRANGE", "GETRANGE"):
        args = [*cmd, *key, _arg(cfg.get("start", 0)), _arg(cfg.get("stop", -1))]
        return args + (["WITHSCORES"] if config_bool(cfg.get("with_scores")) else []) + extra
    if op in ("INCRBY", "INCRBYFLOAT", "DECRBY", "HINCRBY", "HINCRBYFLOAT"):
        field = [str(cfg["field"])] if cfg.get("field") else []
        return [*cmd, *key, *field, _arg(cfg.get("increment", 1)), *extra]
    if op == "PUBLISH":
        return [*cmd, str(cfg.get("channel") or ""), _arg(cfg.get("message", "")), *extra]
    field = [str(cfg["field"])] if cfg.get("field") else []
    fields = [_arg(f) for f in _list(cfg.get("fields"))]
    member = [_arg(cfg["member"])] if cfg.get("member") is not None else []
    members = [_arg(m) for m in _list(cfg.get("members"))]
    return [*cmd, *key, *keys, *field, *fields, *member, *members, *value, *[_arg(v) for v in values], *extra]


def to_json(value: Any, output_format: str = "json") -> str:
    """A command's result as one line: JSON, or with `raw`/`text` strings bare."""
    if output_format in ("raw", "text") and isinstance(value, str):
        return value
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _arg(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value
