"""The ssh step type against a real sshd on 127.0.0.1: output, exit codes, host keys, timeout, stop."""

from __future__ import annotations

import random
import subprocess
import threading
import time
from pathlib import Path

import pytest

import servers
from dagu.spec.model import Dag, Location, Step
from dagu.steps.base import TIMEOUT_EXIT_CODE, Attempt
from dagu.steps.ssh import SshExecutor
from helpers import EXAMPLES, run_dagu, wait_for


@pytest.fixture
def sshd(tmp_path: Path) -> dict:
    """Connection config for the test sshd, with a known_hosts file holding its host key."""
    port, key = servers.ssh()
    (host_key_pub,) = servers.need("SSH_HOST_KEY_PUB")
    kind, blob = Path(host_key_pub).read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {kind} {blob}\n")
    return {"host": "127.0.0.1", "port": port, "user": "root", "key": key, "known_host_file": str(known)}


def _attempt(tmp_path: Path, *commands: str, config: dict, script: str | None = None, timeout_s: float = 0.0, env: dict | None = None) -> Attempt:
    loc = Location(str(tmp_path / "dag.yaml"))
    step = Step(name="remote", location=loc, type="ssh", commands=commands)
    return Attempt(
        dag=Dag(name="t", location=loc), step=step, commands=commands, script=script, shell=("sh",),
        env=env or {}, cwd=str(tmp_path), stdout_path=str(tmp_path / "out.log"), stderr_path=str(tmp_path / "err.log"),
        timeout_s=timeout_s, config=config, capture_output=True,
    )  # fmt: skip


def _remote_pids(cfg: dict, pattern: str) -> str:
    """pids of remote processes whose command line matches `pattern` (checked over a new connection)."""
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect("127.0.0.1", port=cfg["port"], username="root", key_filename=cfg["key"], look_for_keys=False, allow_agent=False)
    try:
        # "sleep 4242" -> "sleep 424[2]": the pattern must not match the shell that runs pgrep.
        _, out, _ = client.exec_command(f"pgrep -f '{pattern[:-1]}[{pattern[-1]}]' || true")
        return out.read().decode().strip()
    finally:
        client.close()


def _read(tmp_path: Path, name: str) -> str:
    return (tmp_path / name).read_text()


def test_stdout_stderr_and_exit_code_come_back(tmp_path, sshd):
    result = SshExecutor(_attempt(tmp_path, "echo out; echo err >&2; exit 7", config=sshd)).run()
    assert result.exit_code == 7
    assert result.error == f"exit status 7 from root@127.0.0.1:{sshd['port']}"
    assert _read(tmp_path, "out.log") == "out\n"
    assert _read(tmp_path, "err.log") == "err\n"  # the pid line used for stop is not in the log


def test_commands_run_in_order_and_stop_at_the_first_failure(tmp_path, sshd):
    result = SshExecutor(_attempt(tmp_path, "echo one", "false", "echo three", config=sshd)).run()
    assert result.exit_code == 1
    assert _read(tmp_path, "out.log") == "one\n"


def test_script_is_fed_to_the_remote_shell(tmp_path, sshd):
    result = SshExecutor(_attempt(tmp_path, config=sshd, script="x=4\necho $((x * 2))\n")).run()
    assert result.exit_code == 0 and result.output == "8"


def test_variables_are_expanded_locally_and_escaped_ones_remotely(tmp_path, sshd):
    attempt = _attempt(tmp_path, r"echo $NAME-${NAME}-$UNSET-\$HOME", config=sshd, env={"NAME": "v"})
    result = SshExecutor(attempt).run()
    assert result.output == "v-v--/root"


def test_shell_config_wraps_the_command(tmp_path, sshd):
    result = SshExecutor(_attempt(tmp_path, r"echo ${X:-dflt} \$0", config={**sshd, "shell": "bash"})).run()
    assert result.exit_code == 0 and result.output == "dflt bash"


def test_an_unknown_host_key_is_rejected_by_default(tmp_path, sshd):
    other = tmp_path / "other_known_hosts"
    other.write_text(f"[127.0.0.1]:{sshd['port']} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    result = SshExecutor(_attempt(tmp_path, "true", config={**sshd, "known_host_file": str(other)})).run()
    assert result.exit_code == 1
    assert result.error.startswith(f"ssh root@127.0.0.1:{sshd['port']}:")
    assert "key" in result.error.lower()


def test_a_missing_known_hosts_file_is_a_clear_error(tmp_path, sshd):
    result = SshExecutor(_attempt(tmp_path, "true", config={**sshd, "known_host_file": str(tmp_path / "none")})).run()
    assert result.exit_code == 1 and "known hosts file" in result.error and "strict_host_key: false" in result.error


def test_strict_host_key_false_accepts_any_host_key(tmp_path, sshd):
    cfg = {**sshd, "strict_host_key": False, "known_host_file": str(tmp_path / "none")}
    assert SshExecutor(_attempt(tmp_path, "true", config=cfg)).run().exit_code == 0


def test_a_wrong_key_fails_authentication_naming_the_host(tmp_path, sshd):
    wrong = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    result = SshExecutor(_attempt(tmp_path, "true", config={**sshd, "key": str(wrong)})).run()
    assert result.exit_code == 1
    assert result.error.startswith(f"ssh root@127.0.0.1:{sshd['port']}: authentication failed with key")


def test_timeout_ends_the_step_and_kills_the_remote_process(tmp_path, sshd):
    marker = f"sleep {random.randint(40000, 49999)}"
    started = time.monotonic()
    result = SshExecutor(_attempt(tmp_path, marker, config=sshd, timeout_s=1.0)).run()
    assert result.timed_out and result.exit_code == TIMEOUT_EXIT_CODE
    assert time.monotonic() - started < 15
    wait_for(lambda: _remote_pids(sshd, marker) == "", f"remote `{marker}` to be gone", timeout=10)


def test_stop_mid_step_kills_the_remote_process_group(tmp_path, sshd):
    marker = f"sleep {random.randint(50000, 59999)}"
    executor = SshExecutor(_attempt(tmp_path, f"{marker} & {marker}; wait", config=sshd))
    box = {}
    runner = threading.Thread(target=lambda: box.setdefault("result", executor.run()))
    runner.start()
    wait_for(lambda: len(_remote_pids(sshd, marker).split()) >= 3, f"remote `{marker}` to start")
    executor.stop("SIGTERM", 2.0)
    runner.join(15)
    assert not runner.is_alive(), "run() did not return after stop()"
    assert box["result"].stopped
    # NOTE: both sleeps (the background one too) must go: the whole remote group was signalled.
    wait_for(lambda: _remote_pids(sshd, marker) == "", f"remote `{marker}` to be gone", timeout=10)


def test_example_runs_through_the_cli(tmp_path, sshd):
    env = {"SSH_PORT": str(sshd["port"]), "SSH_KEY": sshd["key"], "KNOWN_HOSTS": sshd["known_host_file"]}
    result = run_dagu("start", str(EXAMPLES / "steps" / "ssh.yaml"), home=tmp_path / "home", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "remote user root" in result.stdout
