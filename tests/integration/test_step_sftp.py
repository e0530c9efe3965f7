"""The sftp step type against a real sshd (internal-sftp) on 127.0.0.1: folders, errors, timeout, stop.

sshd runs on this machine, so the "remote" paths are folders under tmp_path too.
"""

from __future__ import annotations

import filecmp
import threading
import time
from pathlib import Path

import pytest

import servers
from dagu.spec.model import Dag, Location, Step
from dagu.steps.base import TIMEOUT_EXIT_CODE, Attempt
from dagu.steps.sftp import SftpExecutor
from helpers import EXAMPLES, run_dagu, wait_for

_BIG = 400 * 1024 * 1024  # sparse locally; takes seconds over SFTP, long enough to stop mid-way


@pytest.fixture
def sshd(tmp_path: Path) -> dict:
    port, key = servers.ssh()
    (host_key_pub,) = servers.need("SSH_HOST_KEY_PUB")
    kind, blob = Path(host_key_pub).read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {kind} {blob}\n")
    return {"host": "127.0.0.1", "port": port, "user": "root", "key": key, "known_host_file": str(known)}


def _attempt(tmp_path: Path, config: dict, timeout_s: float = 0.0) -> Attempt:
    loc = Location(str(tmp_path / "dag.yaml"))
    step = Step(name="copy", location=loc, type="sftp")
    return Attempt(
        dag=Dag(name="t", location=loc), step=step, commands=(), script=None, shell=("sh",), env={},
        cwd=str(tmp_path), stdout_path=str(tmp_path / "logs" / "out.log"), stderr_path=str(tmp_path / "logs" / "err.log"),
        timeout_s=timeout_s, config=config,
    )  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "local"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)) * 100)
    (src / "sub" / "deeper" / "c.txt").write_text("deep\n")
    return src


def _same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    return all(_same_tree(a / d, b / d) for d in cmp.common_dirs)


def test_folders_upload_and_download_recursively(tmp_path, sshd, tree):
    up = SftpExecutor(_attempt(tmp_path, {**sshd, "direction": "upload", "source": "local", "destination": str(tmp_path / "remote")})).run()
    assert up.exit_code == 0, up.error
    assert _same_tree(tree, tmp_path / "remote")
    down = SftpExecutor(_attempt(tmp_path, {**sshd, "direction": "download", "source": str(tmp_path / "remote"), "destination": "back"})).run()
    assert down.exit_code == 0, down.error
    assert _same_tree(tree, tmp_path / "back")
    log = (tmp_path / "logs" / "out.log").read_text()
    assert "uploaded 3 file(s)" in log and "downloaded 3 file(s)" in log


def test_a_file_lands_inside_an_existing_remote_folder(tmp_path, sshd, tree):
    (tmp_path / "inbox").mkdir()
    result = SftpExecutor(_attempt(tmp_path, {**sshd, "source": "local/a.txt", "destination": str(tmp_path / "inbox")})).run()
    assert result.exit_code == 0, result.error  # upload is the default direction
    assert (tmp_path / "inbox" / "a.txt").read_text() == "alpha\n"


def test_a_missing_source_names_the_path(tmp_path, sshd):
    result = SftpExecutor(_attempt(tmp_path, {**sshd, "direction": "download", "source": "/nonexistent/x", "destination": "d"})).run()
    assert result.exit_code == 1
    assert "remote source /nonexistent/x does not exist on root@127.0.0.1" in result.error


def test_an_unreachable_host_is_named(tmp_path, sshd):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = SftpExecutor(_attempt(tmp_path, {**sshd, "port": port, "source": "a", "destination": "b"})).run()
    assert result.exit_code == 1 and result.error.startswith(f"sftp root@127.0.0.1:{port}: cannot connect")


def _big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:
        f.truncate(_BIG)
    return path


def test_timeout_stops_a_long_transfer(tmp_path, sshd):
    _big_file(tmp_path)
    started = time.monotonic()
    result = SftpExecutor(_attempt(tmp_path, {**sshd, "source": "big.bin", "destination": str(tmp_path / "copy.bin")}, timeout_s=1.0)).run()
    assert result.timed_out and result.exit_code == TIMEOUT_EXIT_CODE
    assert time.monotonic() - started < 10
    assert (tmp_path / "copy.bin").stat().st_size < _BIG


def test_stop_mid_transfer_ends_the_attempt(tmp_path, sshd):
    _big_file(tmp_path)
    target = tmp_path / "copy.bin"
    executor = SftpExecutor(_attempt(tmp_path, {**sshd, "source": "big.bin", "destination": str(target)}))
    box = {}
    runner = threading.Thread(target=lambda: box.setdefault("result", executor.run()))
    runner.start()
    wait_for(lambda: target.exists() and target.stat().st_size > 0, "the transfer to start")
    executor.stop("SIGTERM", 1.0)
    runner.join(10)
    assert not runner.is_alive(), "run() did not return after stop()"
    assert box["result"].stopped
    assert target.stat().st_size < _BIG


def test_example_runs_through_the_cli(tmp_path, sshd):
    env = {"SSH_PORT": str(sshd["port"]), "SSH_KEY": sshd["key"], "KNOWN_HOSTS": sshd["known_host_file"]}
    result = run_dagu("start", str(EXAMPLES / "steps" / "sftp.yaml"), home=tmp_path / "home", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
