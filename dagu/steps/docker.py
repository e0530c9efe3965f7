"""The `docker` / `container` step type: run a step in a new container or exec into a running one.

Owns how a step becomes containers and execs (dag-spec 4.1, 2.7): the image pull policy,
the container's settings (env, volumes, working dir, network, raw Docker API objects),
log streaming into the step's files, exit codes, stopping a container or exec on stop
and timeout, and the one shared container of a run whose DAG sets `container:` (started
by the run's first step that needs it, removed by `release_run` when the run ends).
It does not decide which steps run in a container; the spec loader does (dag-spec 3.3).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import signal
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dagu.steps.base import Attempt
from dagu.steps.service import ServiceExecutor, StepFailure, StepLogs, config_bool, require

__all__ = ["DockerExecutor", "RunSpec", "release_run", "parse_pull_policy", "volume_binds", "env_list", "command_argv"]

logger = logging.getLogger(__name__)

# Keeps a container alive so commands can be exec'd into it; exits on the stop signal.
KEEPALIVE = ("sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done")
_PULL_POLICIES = {"always": "always", "never": "never", "missing": "missing", "fallback": "missing", "true": "always", "false": "never"}
_READY_TIMEOUT_S = 120.0
_LABEL_RUN = "dagu.run-id"
_LABEL_DAG = "dagu.dag"

_shared_lock = threading.Lock()
_shared: dict[str, _SharedContainer] = {}  # run ID -> the run's DAG-level container


@dataclass(frozen=True)
class RunSpec:
    """How to create one container, gathered from step `config`, step `container:` or DAG `container:`."""

    image: str
    pull: str = "missing"  # always | never | missing
    env: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    working_dir: str | None = None
    user: str | None = None
    platform: str | None = None
    network: Any = None  # str: network mode; mapping: raw NetworkingConfig
    ports: tuple[str, ...] = ()
    raw_container: Mapping[str, Any] = field(default_factory=dict)
    raw_host: Mapping[str, Any] = field(default_factory=dict)
    auto_remove: bool = False
    name: str | None = None
    startup: str = "keepalive"  # keepalive | entrypoint | command
    command: tuple[str, ...] = ()
    wait_for: str = "running"
    log_pattern: str | None = None
    restart_policy: str | None = None
    shell: tuple[str, ...] = ()


@dataclass(frozen=True)
class _ExecTarget:
    """Exec into an existing container."""

    container: str
    user: str | None = None
    working_dir: str | None = None
    env: tuple[str, ...] = ()
    raw_exec: Mapping[str, Any] = field(default_factory=dict)
    shell: tuple[str, ...] = ()
    shared: bool = False  # the run's DAG-level container (started on demand)


class DockerExecutor(ServiceExecutor):
    """One attempt of a docker step."""

    type_name = "docker"

    def __init__(self, attempt: Attempt) -> None:
        super().__init__(attempt)
        self._lock = threading.Lock()
        self._api: Any = None
        self._container: str | None = None  # the container this attempt created
        self._exec_id: str | None = None
        self._stop_signal: str | None = None

    def execute(self, logs: StepLogs) -> int:
        docker = require("docker", "docker", "docker")
        target = _target(self.attempt)
        argvs = [command_argv(c, self._shell(target)) for c in self.attempt.commands]
        try:
            self._api = docker.from_env().api
            self._api.ping()
        except docker.errors.DockerException as exc:
            raise StepFailure(f"cannot reach the Docker daemon at {os.environ.get('DOCKER_HOST') or 'the default socket'}: {exc}") from exc
        try:
            if isinstance(target, RunSpec):
                return self._run_image(target, argvs, logs)
            if target.shared:
                spec = _dag_run_spec(self.attempt)
                target = replace(target, container=_shared_container(self._api, self.attempt, spec))
            return self._exec_all(target, argvs, logs)
        except docker.errors.APIError as exc:
            if self.is_ending:
                return 1
            raise StepFailure(f"docker: {_api_message(exc)}") from exc

    def interrupt(self, signal_name: str, grace_s: float) -> None:
        with self._lock:
            self._stop_signal = signal_name
            container, exec_id = self._container, self._exec_id
        if container is not None:
            self._kill_container(container, signal_name, grace_s)
        elif exec_id is not None:
            self._kill_exec(exec_id, signal_name, grace_s)

    # -- new container -----------------------------------------------------------

    def _run_image(self, spec: RunSpec, argvs: list[list[str]], logs: StepLogs) -> int:
        api = self._api
        ensure_image(api, spec.image, spec.pull)
        background = len(argvs) > 1
        cmd = argvs[0] if len(argvs) == 1 else None
        labels = {_LABEL_RUN: self.attempt.env.get("DAG_RUN_ID", ""), _LABEL_DAG: self.attempt.dag.name}
        body = container_body(spec, cmd=cmd, entrypoint=list(KEEPALIVE) if background else None, cwd=self.attempt.cwd, labels=labels)
        created = api.create_container_from_config(body, name=spec.name, platform=spec.platform)
        cid = created["Id"]
        logger.info("%s: created container %s from %s", self.label, cid[:12], spec.image)
        try:
            with self._lock:
                self._container = cid
            if background:
                # A stop kills the whole container (and with it the running exec).
                api.start(cid)
                self._act_if_stopped()
                try:
                    return self._exec_all(_ExecTarget(cid, spec.user, spec.working_dir), argvs, logs)
                finally:
                    if _is_running(api, cid):
                        api.kill(cid, "SIGKILL")
            stream = api.attach(cid, stdout=True, stderr=True, stream=True, logs=True, demux=True)
            api.start(cid)
            self._act_if_stopped()
            _pump(stream, logs)
            return int(api.wait(cid)["StatusCode"])
        finally:
            with self._lock:
                self._container = None
            if spec.auto_remove:
                _remove(api, cid)

    def _act_if_stopped(self) -> None:
        """A stop that arrived while the container was being created acts now."""
        if self.is_ending:
            self.interrupt(self._stop_signal or "SIGTERM", self.attempt.timeout_grace_s)

    def _kill_container(self, cid: str, signal_name: str, grace_s: float) -> None:
        api = self._api
        logger.info("%s: sending %s to container %s", self.label, signal_name, cid[:12])
        api.kill(cid, signal_name)
        self.later(grace_s, lambda: api.kill(cid, "SIGKILL") if _is_running(api, cid) else None, "docker-kill")

    # -- exec --------------------------------------------------------------------

    def _exec_all(self, target: _ExecTarget, argvs: list[list[str]], logs: StepLogs) -> int:
        if not argvs:
            raise StepFailure(f"docker: nothing to run in container {target.container!r}; give the step a `command`")
        code = 0
        for argv in argvs:
            if self.is_ending:
                break
            code = self._exec_one(target, argv, logs)
            if code != 0:
                break
        return code

    def _exec_one(self, target: _ExecTarget, argv: list[str], logs: StepLogs) -> int:
        api = self._api
        raw = dict(target.raw_exec)
        options = {
            "stdout": True,
            "stderr": True,
            "user": target.user or raw.pop("User", None) or raw.pop("user", None) or "",
            "environment": list(target.env) + list(raw.pop("Env", None) or raw.pop("env", None) or []) or None,
            "workdir": target.working_dir or raw.pop("WorkingDir", None) or raw.pop("workingDir", None),
            "privileged": bool(raw.pop("Privileged", raw.pop("privileged", False))),
        }
        try:
            exec_id = api.exec_create(target.container, argv, **options)["Id"]
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404 or "No such container" in str(exc):
                raise StepFailure(f"docker: container {target.container!r} not found; is it running?") from exc
            if "is not running" in str(exc):
                raise StepFailure(f"docker: container {target.container!r} is not running") from exc
            raise
        with self._lock:
            self._exec_id = exec_id
        try:
            stream = api.exec_start(exec_id, stream=True, demux=True)
            self._act_if_stopped()
            _pump(stream, logs)
            info = _wait_exec(api, exec_id)
        finally:
            with self._lock:
                self._exec_id = None
        code = info.get("ExitCode")
        if code is None:
            raise StepFailure(f"docker: exec of {argv[0]!r} in {target.container!r} reported no exit code")
        if code == 126 or code == 127:
            logs.err(f"docker: cannot run {argv[0]!r} in container {target.container!r} (exit {code})\n")
        return int(code)

    def _kill_exec(self, exec_id: str, signal_name: str, grace_s: float) -> None:
        api = self._api
        pid = api.exec_inspect(exec_id).get("Pid") or 0
        if pid <= 0:
            return
        logger.info("%s: sending %s to exec process %d", self.label, signal_name, pid)
        _signal_host_pid(pid, signal_name)

        def kill() -> None:
            if api.exec_inspect(exec_id).get("Running"):
                _signal_host_pid(pid, "SIGKILL")

        self.later(grace_s, kill, "docker-exec-kill")

    def _shell(self, target: RunSpec | _ExecTarget) -> tuple[str, ...]:
        step_shell = self.attempt.step.shell
        if step_shell:
            return (*shlex.split(step_shell), *self.attempt.step.shell_args, "-c")
        return target.shell


# -- the run's DAG-level container ------------------------------------------------


@dataclass
class _SharedContainer:
    lock: threading.Lock = field(default_factory=threading.Lock)
    container_id: str | None = None
    error: str | None = None
    keep: bool = False
    api: Any = None


def release_run(run_id: str) -> None:
    """Remove the DAG-level container of run `run_id`, if this process started one.

    Called by the run process once the run (handlers included) has finished.
    """
    with _shared_lock:
        entry = _shared.pop(run_id, None)
    if entry is None or entry.container_id is None:
        return
    with entry.lock:
        if entry.keep:
            logger.info("run %s: keeping DAG container %s", run_id, entry.container_id[:12])
            return
        logger.info("run %s: removing DAG container %s", run_id, entry.container_id[:12])
        _remove(entry.api, entry.container_id)


def _shared_container(api: Any, attempt: Attempt, spec: RunSpec) -> str:
    run_id = attempt.env.get("DAG_RUN_ID") or "no-run-id"
    with _shared_lock:
        entry = _shared.setdefault(run_id, _SharedContainer())
    with entry.lock:
        if entry.container_id is None and entry.error is None:
            entry.api, entry.keep = api, not spec.auto_remove
            try:
                entry.container_id = _start_shared(api, spec, attempt, run_id)
            except Exception as exc:
                entry.error = f"DAG container from {spec.image!r} did not start: {_api_message(exc)}"
        if entry.error is not None:
            raise StepFailure(entry.error)
        assert entry.container_id is not None
        return entry.container_id


def _start_shared(api: Any, spec: RunSpec, attempt: Attempt, run_id: str) -> str:
    ensure_image(api, spec.image, spec.pull)
    entrypoint = list(KEEPALIVE) if spec.startup == "keepalive" else None
    cmd = list(spec.command) if spec.startup == "command" and spec.command else None
    labels = {_LABEL_RUN: run_id, _LABEL_DAG: attempt.dag.name}
    body = container_body(spec, cmd=cmd, entrypoint=entrypoint, cwd=attempt.cwd, labels=labels)
    name = spec.name or _container_name(attempt.dag.name, run_id)
    cid = api.create_container_from_config(body, name=name, platform=spec.platform)["Id"]
    try:
        api.start(cid)
        _wait_ready(api, cid, spec)
    except Exception:
        _remove(api, cid)
        raise
    logger.info("run %s: DAG container %s (%s) is up", run_id, cid[:12], spec.image)
    return cid


def _wait_ready(api: Any, cid: str, spec: RunSpec) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    pattern = re.compile(spec.log_pattern) if spec.log_pattern else None
    delay = 0.05
    while True:
        state = api.inspect_container(cid)["State"]
        if not state.get("Running"):
            logs = api.logs(cid, tail=20).decode("utf-8", "replace").strip()
            raise StepFailure(f"container exited with status {state.get('ExitCode')} right after starting" + (f": {logs}" if logs else ""))
        healthy = spec.wait_for != "healthy" or (state.get("Health") or {}).get("Status") == "healthy"
        matched = pattern is None or bool(pattern.search(api.logs(cid).decode("utf-8", "replace")))
        if healthy and matched:
            return
        if time.monotonic() > deadline:
            raise StepFailure(f"container not ready after {_READY_TIMEOUT_S:g}s (wait_for={spec.wait_for}, log_pattern={spec.log_pattern!r})")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def _container_name(dag_name: str, run_id: str) -> str:
    safe = re.sub(r"[^a-zA-Z0-9_.-]", "-", dag_name)
    return f"dagu-{safe}-{run_id[:24]}"


# -- reading the config -------------------------------------------------------------


def _target(attempt: Attempt) -> RunSpec | _ExecTarget:
    """What the step runs in: its own config, its own `container:`, or the DAG's `container:`."""
    config = attempt.config
    if config.get("image"):
        return _spec_from_step_config(config)
    if config.get("container_name"):
        return _ExecTarget(str(config["container_name"]), working_dir=config.get("working_dir"), raw_exec=dict(config.get("exec") or {}))
    step_container = attempt.step.container
    if step_container is not None:
        return _from_container_field(_expanded(step_container, attempt), shared=False)
    if attempt.dag.container is not None:
        return _from_container_field(_expanded(attempt.dag.container, attempt), shared=True)
    raise StepFailure("docker steps need `image` or `container_name` in config (or a `container:` on the step or DAG)")


def _spec_from_step_config(config: Mapping[str, Any]) -> RunSpec:
    network = config.get("network")
    return RunSpec(
        image=str(config["image"]),
        pull=parse_pull_policy(config.get("pull"), "missing"),
        env=env_list(config.get("env")),
        volumes=tuple(str(v) for v in config.get("volumes") or ()),
        working_dir=config.get("working_dir") or None,
        platform=config.get("platform") or None,
        network=network if network else None,
        raw_container=dict(config.get("container") or {}),
        raw_host=dict(config.get("host") or {}),
        auto_remove=config_bool(config.get("auto_remove")),
    )


def _from_container_field(value: Any, *, shared: bool) -> RunSpec | _ExecTarget:
    if isinstance(value, str):
        return _ExecTarget(value)
    if value.get("exec"):
        return _ExecTarget(str(value["exec"]), value.get("user"), value.get("working_dir"), env_list(value.get("env")))
    spec = _spec_from_container(value)
    if shared:
        return _ExecTarget("", spec.user, spec.working_dir, shell=spec.shell, shared=True)
    return spec


def _dag_run_spec(attempt: Attempt) -> RunSpec:
    return _spec_from_container(_expanded(attempt.dag.container, attempt))


def _expanded(value: Any, attempt: Attempt) -> Any:
    """A `container:` value with variables (`${TEST_IMAGE}`) replaced from the step's env; the
    engine expands only the step's `config`."""
    from dagu.resolve import ResolveError, expand_config

    try:
        return expand_config(value, attempt.env, backticks=False, process_env=attempt.env)
    except ResolveError as exc:
        raise StepFailure(f"docker: container settings: {exc}") from exc


def _spec_from_container(value: Mapping[str, Any]) -> RunSpec:
    return RunSpec(
        image=str(value["image"]),
        pull=parse_pull_policy(value.get("pull_policy"), "missing"),
        env=env_list(value.get("env")),
        volumes=tuple(str(v) for v in value.get("volumes") or ()),
        working_dir=value.get("working_dir") or None,
        user=value.get("user") or None,
        platform=value.get("platform") or None,
        network=value.get("network") or None,
        ports=tuple(str(p) for p in value.get("ports") or ()),
        auto_remove=not config_bool(value.get("keep_container")),
        name=value.get("name") or None,
        startup=value.get("startup") or "keepalive",
        command=tuple(_strs(value.get("command"))),
        wait_for=value.get("wait_for") or "running",
        log_pattern=value.get("log_pattern") or None,
        restart_policy=value.get("restart_policy") or None,
        shell=tuple(_strs(value.get("shell"))),
    )


def parse_pull_policy(value: Any, default: str) -> str:
    """`always`/`never`/`missing` (also true/false and 2.15 `fallback`) -> always | never | missing."""
    if value is None or value == "":
        return default
    text = ("true" if value else "false") if isinstance(value, bool) else str(value).strip().lower()
    policy = _PULL_POLICIES.get(text)
    if policy is None:
        raise StepFailure(f"docker: unknown pull policy {value!r}; use always, never or missing")
    return policy


def env_list(value: Any) -> tuple[str, ...]:
    """`env` as a mapping, a list of `K=V` strings or a list of one-key mappings -> `K=V` strings."""
    if not value:
        return ()
    if isinstance(value, Mapping):
        return tuple(f"{k}={_text(v)}" for k, v in value.items())
    items: list[str] = []
    for item in value:
        if isinstance(item, Mapping):
            items.extend(f"{k}={_text(v)}" for k, v in item.items())
        else:
            items.append(str(item))
    return tuple(items)


def volume_binds(volumes: Iterable[str], cwd: str) -> list[str]:
    """`host:ctr[:mode]` entries with relative host paths made absolute against `cwd`.

    A host part without a slash that does not start with a dot is a named volume and stays.
    """
    binds = []
    for entry in volumes:
        parts = entry.split(":")
        if len(parts) < 2 or len(parts) > 3 or not parts[0] or not parts[1]:
            raise StepFailure(f"docker: bad volume {entry!r}; write host_path:container_path[:ro|rw]")
        host = parts[0]
        if host.startswith(".") or ("/" in host and not host.startswith("/")):
            host = os.path.normpath(os.path.join(cwd, host))
        elif host.startswith("~"):
            host = os.path.expanduser(host)
        binds.append(":".join([host, *parts[1:]]))
    return binds


def command_argv(text: str, shell: tuple[str, ...] = ()) -> list[str]:
    """A step command as the container's argv: split like shell words, no shell inserted
    unless a shell wrapper is configured."""
    if shell:
        return [*shell, text]
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise StepFailure(f"docker: cannot split command {text!r}: {exc}") from exc
    if not argv:
        raise StepFailure("docker: the step command is empty")
    return argv


def container_body(spec: RunSpec, *, cmd: list[str] | None, entrypoint: list[str] | None, cwd: str,
                   labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Docker API create body: our keys first, then the raw `container`/`host` objects on top."""
    body: dict[str, Any] = {"Image": spec.image, "AttachStdout": True, "AttachStderr": True, "Tty": False}
    host: dict[str, Any] = {}
    if cmd is not None:
        body["Cmd"] = cmd
    if entrypoint is not None:
        body["Entrypoint"] = entrypoint
    if spec.env:
        body["Env"] = list(spec.env)
    if spec.working_dir:
        body["WorkingDir"] = spec.working_dir
    if spec.user:
        body["User"] = spec.user
    if labels:
        body["Labels"] = dict(labels)
    if spec.volumes:
        host["Binds"] = volume_binds(spec.volumes, cwd)
    if isinstance(spec.network, str):
        host["NetworkMode"] = spec.network
    elif isinstance(spec.network, Mapping):
        body["NetworkingConfig"] = _pascal_keys(spec.network)
    if spec.ports:
        body["ExposedPorts"], host["PortBindings"] = _ports(spec.ports)
    if spec.restart_policy:
        host["RestartPolicy"] = {"Name": spec.restart_policy}
    raw = _pascal_keys(spec.raw_container)
    if "Env" in raw and "Env" in body:
        raw["Env"] = [*body["Env"], *env_list(raw["Env"])]
    elif "Env" in raw:
        raw["Env"] = list(env_list(raw["Env"]))
    body.update(raw)
    raw_host = _pascal_keys(spec.raw_host)
    if "Binds" in raw_host and "Binds" in host:
        raw_host["Binds"] = [*host["Binds"], *raw_host["Binds"]]
    host.update(raw_host)
    host.pop("AutoRemove", None)  # we remove the container ourselves, after reading its exit code
    if host:
        body["HostConfig"] = host
    return body


# -- docker helpers ------------------------------------------------------------------


def ensure_image(api: Any, image: str, policy: str) -> None:
    """Pull `image` as `policy` says; fail naming the image when it cannot be had."""
    present = _has_image(api, image)
    if policy == "never" and not present:
        raise StepFailure(f"docker: image {image!r} is not present locally and the pull policy is never")
    if policy == "always" or (policy == "missing" and not present):
        repo, tag = _split_image(image)
        logger.info("pulling image %s", image)
        try:
            api.pull(repo, tag=tag)
        except Exception as exc:
            raise StepFailure(f"docker: cannot pull image {image!r} (pull policy {policy}): {_api_message(exc)}") from exc


def _has_image(api: Any, image: str) -> bool:
    try:
        api.inspect_image(image)
    except Exception as exc:
        if getattr(exc, "status_code", None) == 404 or type(exc).__name__ == "ImageNotFound":
            return False
        raise
    return True


def _split_image(image: str) -> tuple[str, str | None]:
    if "@" in image:
        return image, None
    name, _, tag = image.rpartition(":")
    if name and "/" not in tag:
        return name, tag
    return image, "latest"


def _pump(stream: Iterator[tuple[bytes | None, bytes | None]], logs: StepLogs) -> None:
    for out, err in stream:
        if out:
            logs.out(out)
        if err:
            logs.err(err)


def _wait_exec(api: Any, exec_id: str) -> dict[str, Any]:
    """exec_inspect once the exec has stopped (the stream can end a moment before)."""
    delay = 0.01
    while True:
        info = api.exec_inspect(exec_id)
        if not info.get("Running"):
            return info
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _is_running(api: Any, cid: str) -> bool:
    try:
        return bool(api.inspect_container(cid)["State"].get("Running"))
    except Exception:
        return False


def _remove(api: Any, cid: str) -> None:
    try:
        api.remove_container(cid, force=True, v=True)
    except Exception as exc:
        if getattr(exc, "status_code", None) != 404:
            logger.warning("cannot remove container %s: %s", cid[:12], exc)


def _signal_host_pid(pid: int, signal_name: str) -> None:
    """Signal an exec'd process by its host pid (the daemon runs on this machine)."""
    try:
        os.kill(pid, signal.Signals[signal_name])
    except ProcessLookupError:
        pass
    except (PermissionError, KeyError) as exc:
        logger.warning("cannot send %s to exec process %d: %s; it may keep running in the container", signal_name, pid, exc)


def _api_message(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)


def _ports(ports: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    exposed: dict[str, Any] = {}
    bindings: dict[str, Any] = {}
    for entry in ports:
        *host, ctr = entry.split(":")
        key = ctr if "/" in ctr else f"{ctr}/tcp"
        exposed[key] = {}
        if host:
            ip = host[0] if len(host) == 2 else ""
            bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": host[-1]})
    return exposed, bindings


def _pascal_keys(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level keys of a raw Docker API object as the API spells them (`workingDir`,
    `working_dir` -> `WorkingDir`); the daemon matches nested keys case-insensitively."""
    return {"".join(p[:1].upper() + p[1:] for p in str(k).split("_")): v for k, v in raw.items()}


def _strs(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
