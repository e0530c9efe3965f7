"""The `sftp` step type: copy files and folders between here and a remote host over SFTP.

Owns dag-spec 4.4: the ssh connection keys (shared with `dagu.steps.ssh`, including the
DAG's `ssh:` defaults) plus `direction` (`upload`, the default, or `download`), `source`
and `destination`. A folder is copied recursively; a file lands at `destination`, or
inside it when `destination` is an existing folder. Relative local paths are relative
to the step's working directory. 2.15 `action: sftp.upload|download` sets the direction.

Each copied file is reported on stdout (`uploaded a -> b (n bytes)`). Stop and timeout
are checked between files and between 32 KiB blocks of a file, and close the connection.
"""

from __future__ import annotations

import os
import posixpath
import stat
from typing import Any

from dagu.steps.base import Attempt, AttemptResult
from dagu.steps.service import Cancel, Cancelled, StepExecutor, StepLogs
from dagu.steps.ssh import SshError, connect, ssh_settings

__all__ = ["SftpExecutor"]


class SftpExecutor(StepExecutor):
    """One attempt of an sftp step. `run` blocks; `stop` may come from any thread."""

    def work(self, io: StepLogs) -> AttemptResult:
        cfg = self.attempt.config
        direction = _direction(self.attempt)
        source, destination = str(cfg.get("source") or ""), str(cfg.get("destination") or "")
        if direction not in ("upload", "download") or not source or not destination:
            return io.fail("sftp: needs `source`, `destination` and `direction` upload or download" + (f" (got {direction!r})" if direction not in ("upload", "download") else ""))
        try:
            settings = ssh_settings(self.attempt)
            client = connect(settings, self._cancel)
        except Cancelled:
            return io.result(cancel=self._cancel)
        except SshError as exc:
            return io.fail(f"sftp {exc}")
        try:
            sftp = client.open_sftp()
            copier = _Copier(sftp, io, self._cancel, settings.where)
            if direction == "upload":
                copier.upload(os.path.join(self.attempt.cwd, os.path.expanduser(source)), destination)
            else:
                copier.download(source, os.path.join(self.attempt.cwd, os.path.expanduser(destination)))
            io.out(f"{direction}ed {copier.files} file(s), {copier.bytes} bytes\n")
            return io.result(0)
        except Cancelled:
            return io.result(cancel=self._cancel)
        except (OSError, EOFError) as exc:
            if self._cancel.is_set:
                return io.result(cancel=self._cancel)
            return io.fail(f"sftp {settings.where}: {direction} {source} -> {destination} failed: {exc}")
        finally:
            client.close()


class _Copier:
    def __init__(self, sftp: Any, io: StepLogs, cancel: Cancel, where: str) -> None:
        self._sftp = sftp
        self._io = io
        self._cancel = cancel
        self._where = where
        self.files = 0
        self.bytes = 0

    def upload(self, local: str, remote: str) -> None:
        if not os.path.exists(local):
            raise FileNotFoundError(f"local source {local} does not exist")
        if os.path.isdir(local):
            self._mkdirs(remote)  # the folder's contents go into `remote`, like `cp -r a/. b`
            for name in sorted(os.listdir(local)):
                self.upload(os.path.join(local, name), posixpath.join(remote, name))
            return
        if self._remote_is_dir(remote):
            remote = posixpath.join(remote, os.path.basename(local))
        self._cancel.check()
        self._sftp.put(local, remote, callback=self._progress)
        size = os.path.getsize(local)
        self._done("uploaded", local, f"{self._where}:{remote}", size)

    def download(self, remote: str, local: str) -> None:
        try:
            attrs = self._sftp.stat(remote)
        except FileNotFoundError:
            raise FileNotFoundError(f"remote source {remote} does not exist on {self._where}") from None
        if stat.S_ISDIR(attrs.st_mode or 0):
            os.makedirs(local, exist_ok=True)
            for entry in sorted(self._sftp.listdir_attr(remote), key=lambda e: e.filename):
                self.download(posixpath.join(remote, entry.filename), os.path.join(local, entry.filename))
            return
        if os.path.isdir(local):
            local = os.path.join(local, posixpath.basename(remote))
        os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
        self._cancel.check()
        self._sftp.get(remote, local, callback=self._progress)
        self._done("downloaded", f"{self._where}:{remote}", local, attrs.st_size or 0)

    def _progress(self, _done: int, _total: int) -> None:
        self._cancel.check()  # raising here aborts the transfer between blocks

    def _done(self, verb: str, src: str, dst: str, size: int) -> None:
        self.files += 1
        self.bytes += size
        self._io.out(f"{verb} {src} -> {dst} ({size} bytes)\n")

    def _remote_is_dir(self, path: str) -> bool:
        try:
            return stat.S_ISDIR(self._sftp.stat(path).st_mode or 0)
        except OSError:
            return False

    def _mkdirs(self, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        current = "/" if path.startswith("/") else ""
        for part in parts:
            current = posixpath.join(current, part) if current else part
            if not self._remote_is_dir(current):
                self._sftp.mkdir(current)


def _direction(attempt: Attempt) -> str:
    written = attempt.config.get("direction")
    if written:
        return str(written).strip().lower()
    action = str((attempt.step.extras or {}).get("action") or "")
    if action.startswith("sftp."):
        return action.split(".", 1)[1]
    return "upload"
