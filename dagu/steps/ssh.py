"""The `ssh` step type: run the step's commands (or script) on a remote host with paramiko.

Owns dag-spec 4.3: connection settings from the DAG's `ssh:` block overlaid by the step's
`config` (`user`, `host`/`ip`, `port`, `key`, `password`, `strict_host_key` (default true),
`known_host_file` (default ~/.ssh/known_hosts), `shell`, `timeout` (connect)), host-key
checking, and running commands. `connect()` is shared with the `sftp` step type.

Expansion follows 1.30: after the engine's own substitution, `$VAR`/`${VAR}` left in the
command are expanded locally from the step environment (unset names become empty), with
the POSIX forms (`${X:-d}`) too when `shell` is set; write `\\$VAR` to have the remote
shell expand it (the backslash is removed before sending). With `shell`, the command
runs as `shell -c '<cmd>'` remotely; a `script` is sent on the stdin of `shell -s`
(default `sh`).

Stop and timeout: sshd makes the remote shell a session and process-group leader, and the
command first reports that shell's pid on stderr (the line is removed from the log). A stop
sends the stop signal to that remote process group over a second channel, then SIGKILL
after the grace period, then closes the channel, so no remote process is left behind.
"""

from __future__ import annotations

import logging
import os
import re
import select
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dagu.steps.base import Attempt, AttemptResult
from dagu.steps.service import Cancel, Cancelled, StepExecutor, StepLogs, config_bool, config_seconds, run_cancellable

__all__ = ["SshExecutor", "SshSettings", "SshError", "connect", "ssh_settings"]

logger = logging.getLogger(__name__)

_DEFAULT_CONNECT_TIMEOUT_S = 30.0
_PID_MARK = "\x1edagu-pid "
_TICK_S = 0.1
_READ = 65536
_VAR_RE = re.compile(r"(\\*)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


class SshError(Exception):
    """The connection could not be made; the text names the host and what failed."""


@dataclass(frozen=True)
class SshSettings:
    host: str
    port: int = 22
    user: str = ""
    key: str | None = None
    password: str | None = None
    strict_host_key: bool = True
    known_host_file: str = "~/.ssh/known_hosts"
    shell: tuple[str, ...] = ()
    timeout_s: float = _DEFAULT_CONNECT_TIMEOUT_S

    @property
    def where(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"


def ssh_settings(attempt: Attempt) -> SshSettings:
    """The DAG's `ssh:` defaults (expanded here) overlaid by the step's config.

    Raises:
        SshError: no host, or a value of the wrong kind.
    """
    values: dict[str, Any] = {}
    if attempt.dag.ssh:
        from dagu.resolve import expand_config

        values.update(expand_config(attempt.dag.ssh, dict(attempt.env), process_env=attempt.env, backticks=False))
    values.update({k: v for k, v in attempt.config.items() if v not in (None, "")})
    host = str(values.get("host") or values.get("ip") or "").strip()
    if not host:
        raise SshError("no host; set config `host:` or a DAG-level `ssh: {host: ...}`")
    try:
        port = int(values.get("port") or 22)
    except (TypeError, ValueError):
        raise SshError(f"port must be a number, got {values.get('port')!r}") from None
    shell = values.get("shell")
    if isinstance(shell, str):
        shell_argv = tuple(shlex.split(shell))
    elif isinstance(shell, (list, tuple)):
        shell_argv = tuple(str(s) for s in shell)
    else:
        shell_argv = ()
    try:
        timeout_s = config_seconds(values.get("timeout"), _DEFAULT_CONNECT_TIMEOUT_S)
    except ValueError as exc:
        raise SshError(f"timeout: {exc}") from None
    return SshSettings(
        host=host,
        port=port,
        user=str(values.get("user") or ""),
        key=str(values["key"]) if values.get("key") else None,
        password=str(values["password"]) if values.get("password") not in (None, "") else None,
        strict_host_key=config_bool(values.get("strict_host_key"), True),
        known_host_file=str(values.get("known_host_file") or "~/.ssh/known_hosts"),
        shell=shell_argv,
        timeout_s=timeout_s,
    )


def connect(settings: SshSettings, cancel: Cancel) -> Any:
    """An authenticated paramiko SSHClient; closed when `cancel` fires.

    Raises:
        SshError: host key, network or authentication failure, named with the host.
        Cancelled: stopped or timed out while connecting.
    """
    import paramiko

    client = paramiko.SSHClient()
    if settings.strict_host_key:
        path = os.path.expanduser(settings.known_host_file)
        if not os.path.isfile(path):
            raise SshError(
                f"{settings.where}: known hosts file {path} does not exist; "
                f"add the host key to it (ssh-keyscan -p {settings.port} {settings.host} >> {path}) or set strict_host_key: false"
            )
        try:
            client.load_host_keys(path)
        except (OSError, paramiko.SSHException) as exc:
            raise SshError(f"{settings.where}: cannot read known hosts file {path}: {exc}") from exc
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    else:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    connecting = [True]  # after connect the session owns the client (a stop must still reach the remote)
    cancel.on_abort(lambda: client.close() if connecting[0] else None)
    kwargs: dict[str, Any] = {
        "hostname": settings.host,
        "port": settings.port,
        "username": settings.user or None,
        "timeout": settings.timeout_s,
        "banner_timeout": settings.timeout_s,
        "auth_timeout": settings.timeout_s,
        "allow_agent": False,
    }
    if settings.key:
        kwargs.update(key_filename=os.path.expanduser(settings.key), look_for_keys=False)
    elif settings.password is not None:
        kwargs.update(password=settings.password, look_for_keys=False)
    else:
        kwargs["look_for_keys"] = True  # ~/.ssh/id_rsa, id_ecdsa, id_ed25519, id_dsa
    if settings.key and settings.password is not None:
        kwargs["passphrase"] = settings.password
    try:
        run_cancellable(lambda: client.connect(**kwargs), cancel, "dagu-ssh-connect")
    except Cancelled:
        client.close()
        raise
    except paramiko.AuthenticationException as exc:
        client.close()
        how = f"key {settings.key}" if settings.key else "password" if settings.password is not None else "default keys"
        raise SshError(f"{settings.where}: authentication failed with {how}: {exc}") from exc
    except paramiko.SSHException as exc:
        client.close()
        text = str(exc)
        if "not found in known_hosts" in text:
            text = f"host key is not in {settings.known_host_file}; add it or set strict_host_key: false"
        raise SshError(f"{settings.where}: {text}") from exc
    except (OSError, EOFError) as exc:
        client.close()
        raise SshError(f"{settings.where}: cannot connect: {exc}") from exc
    connecting[0] = False
    return client


class SshExecutor(StepExecutor):
    """One attempt of an ssh step. `run` blocks; `stop` may come from any thread."""

    def work(self, io: StepLogs) -> AttemptResult:
        try:
            settings = ssh_settings(self.attempt)
            client = connect(settings, self._cancel)
        except Cancelled:
            return io.result(cancel=self._cancel)
        except SshError as exc:
            return io.fail(f"ssh {exc}")
        try:
            for command, stdin in _invocations(self.attempt, settings):
                code, error = _Session(client, settings, io, self._cancel).run(command, stdin)
                if self._cancel.is_set:
                    return io.result(cancel=self._cancel)
                if code != 0:
                    return io.result(code, error)
            return io.result(0)
        finally:
            client.close()


class _Session:
    """One remote command on its own channel, its output streamed into the step logs."""

    def __init__(self, client: Any, settings: SshSettings, io: StepLogs, cancel: Cancel) -> None:
        self._client = client
        self._settings = settings
        self._io = io
        self._cancel = cancel
        self._pgid: int | None = None
        self._head = b""  # stderr until the pid line has been seen
        self._head_done = False

    def run(self, command: str, stdin: str | None) -> tuple[int, str | None]:
        wrapped = f"printf '{_PID_MARK}%s\\n' \"$$\" >&2; {command}"
        try:
            chan = self._client.get_transport().open_session(timeout=self._settings.timeout_s)
            chan.exec_command(wrapped)
            if stdin is not None:
                chan.sendall(stdin.encode())
                chan.shutdown_write()
        except Exception as exc:  # paramiko raises SSHException, EOFError or socket errors here
            if self._cancel.is_set:
                return 1, None
            return 255, f"ssh {self._settings.where}: cannot start the command: {exc}"
        try:
            self._pump(chan)
            if self._cancel.is_set:
                self._kill(chan)
                return 1, None
            status = chan.recv_exit_status()
        finally:
            chan.close()
        self._flush_head()
        if status == -1:
            return 255, f"ssh {self._settings.where}: the remote command ended without an exit status (killed by a signal?)"
        return status, (f"exit status {status} from {self._settings.where}" if status else None)

    def _pump(self, chan: Any) -> None:
        while not self._cancel.is_set:
            busy = self._drain(chan)
            if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                self._drain(chan)
                return
            if not busy:
                select.select([chan], [], [], _TICK_S)  # woken by stdout data or close; stderr within a tick

    def _drain(self, chan: Any) -> bool:
        busy = False
        while chan.recv_ready():
            self._io.out(chan.recv(_READ))
            busy = True
        while chan.recv_stderr_ready():
            self._stderr(chan.recv_stderr(_READ))
            busy = True
        return busy

    def _stderr(self, data: bytes) -> None:
        if self._head_done:
            self._io.err(data)
            return
        self._head += data
        if b"\n" not in self._head:
            return
        line, _, rest = self._head.partition(b"\n")
        text = line.decode(errors="replace")
        if text.startswith(_PID_MARK) and text[len(_PID_MARK) :].strip().isdigit():
            self._pgid = int(text[len(_PID_MARK) :])
        else:
            rest = self._head
        self._head_done, self._head = True, b""
        if rest:
            self._io.err(rest)

    def _flush_head(self) -> None:
        if not self._head_done and self._head:
            self._io.err(self._head)
        self._head_done = True

    def _kill(self, chan: Any) -> None:
        """Signal the remote process group; SIGKILL it after the grace period."""
        if self._pgid is None:
            return
        sig = self._cancel.signal_name.removeprefix("SIG") if self._cancel.reason == "stop" else "TERM"
        logger.info("ssh %s: sending SIG%s to remote process group %d", self._settings.where, sig, self._pgid)
        self._remote(f"kill -s {sig} -- -{self._pgid}")
        deadline = time.monotonic() + max(self._cancel.grace_s, 0.0)
        while time.monotonic() < deadline and not chan.exit_status_ready():
            self._drain(chan)
            select.select([chan], [], [], _TICK_S)
        if not chan.exit_status_ready():
            self._remote(f"kill -s KILL -- -{self._pgid}")
        self._drain(chan)

    def _remote(self, command: str) -> None:
        try:
            chan = self._client.get_transport().open_session(timeout=self._settings.timeout_s)
            try:
                chan.exec_command(command)
                chan.recv_exit_status()
            finally:
                chan.close()
        except Exception as exc:  # best effort: the connection may be gone
            logger.warning("ssh %s: could not run `%s`: %s", self._settings.where, command, exc)


def _invocations(attempt: Attempt, settings: SshSettings) -> list[tuple[str, str | None]]:
    """(remote command, stdin) for each run, in order."""
    env = attempt.env
    if attempt.script is not None:
        interpreter = attempt.commands[0] if attempt.commands else shlex.join(settings.shell or ("sh",))
        return [(f"{interpreter} -s" if not attempt.commands else interpreter, attempt.script)]
    out = []
    for text in attempt.commands:
        expanded = _expand_local(text, env, posix=bool(settings.shell))
        if settings.shell:
            expanded = f"{shlex.join(settings.shell)} -c {shlex.quote(expanded)}"
        out.append((expanded, None))
    return out


def _expand_local(text: str, env: Mapping[str, str], *, posix: bool) -> str:
    """1.30: what the engine left of `$VAR` is expanded from the local step environment."""
    if posix:
        from dagu.resolve.posix import expand_parameters

        protected = text.replace("\\$", "\ue000")
        return expand_parameters(protected, lambda name: env.get(name, "")).replace("\ue000", "$")

    def replace(m: re.Match[str]) -> str:
        if len(m.group(1)) % 2:
            return m.group(0)[1:]  # escaped: the backslash goes, the remote shell expands it
        return m.group(1) + env.get(m.group(2) or m.group(3), "")

    return _VAR_RE.sub(replace, text)
