"""CommandExecutor against real shells and real processes: forms, logs, capture, timeout, stop."""

from __future__ import annotations

import json
import os
import select
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import child_pids

from dagu.spec.model import Dag, Location, Step
from dagu.steps.base import TIMEOUT_EXIT_CODE, Attempt, AttemptResult
from dagu.steps.command import CommandExecutor

SH = ("sh", "-e")
PY = (sys.executable,)  # `python -c text`: runs a command without any shell noise in env/cwd
RUN_DEADLINE_S = 10.0


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """Fail a test that leaves a child process or an executor thread running.

    Children that existed before the test (a server fixture of an earlier module) are not its doing.
    """
    before = set(child_pids())
    yield
    threads = [t.name for t in threading.enumerate() if t.name.startswith("dagu-step-")]
    assert not threads, f"executor threads still running: {threads}"
    left = set(child_pids()) - before
    assert not left, f"child processes left: {sorted(left)}"


@pytest.fixture
def host_env() -> dict[str, str]:
    return {"PATH": os.environ["PATH"]}


@pytest.fixture
def make_attempt(tmp_path: Path, host_env: dict[str, str]):
    def make(*commands: str, script: str | None = None, shell: tuple[str, ...] = SH, **kw) -> Attempt:
        location = Location(str(tmp_path / "dag.yaml"))
        step = Step(name="step", location=location, commands=commands, script=script)
        fields = dict(
            dag=Dag(name="dag", location=location, steps=(step,)),
            step=step,
            commands=commands,
            script=script,
            shell=shell,
            env=host_env,
            cwd=str(tmp_path),
            stdout_path=str(tmp_path / "logs" / "step.out"),
            stderr_path=str(tmp_path / "logs" / "step.err"),
        )
        fields.update(kw)
        return Attempt(**fields)

    return make


class Running:
    """An executor whose run() is going on in another thread, as the engine calls it."""

    def __init__(self, executor: CommandExecutor) -> None:
        self.executor = executor
        self.result: AttemptResult | None = None
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.result = self.executor.run()

    def wait(self, timeout: float = RUN_DEADLINE_S) -> AttemptResult:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"run() did not return within {timeout}s"
        assert self.result is not None
        return self.result

    @property
    def is_done(self) -> bool:
        return not self._thread.is_alive()


@pytest.fixture
def start() -> Iterator:
    """Start executors in a background thread; whatever is still running at the end is killed."""
    running: list[Running] = []

    def _start(attempt: Attempt) -> Running:
        r = Running(CommandExecutor(attempt))
        running.append(r)
        return r

    yield _start
    for r in running:
        if not r.is_done:
            r.executor.stop("SIGKILL", 0)
            r.wait()


@pytest.fixture
def kill_at_end() -> Iterator[list[int]]:
    """Pids of grandchildren a test spawned; SIGKILLed at teardown in case the test failed."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for_file(path: Path, timeout: float = 5.0) -> str:
    """Contents of `path` once it holds a complete line (written by a shell `echo`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_text()
            if text.endswith("\n"):
                return text
        time.sleep(0.01)
    raise AssertionError(f"{path} was never written within {timeout}s")


def open_pidfd(pid: int) -> int | None:
    """A pidfd for `pid`, or None when it already exited and was reaped."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def wait_process_gone(pidfd: int | None, timeout: float = 5.0) -> bool:
    """True once the process behind `pidfd` has terminated (zombies count as gone)."""
    if pidfd is None:
        return True
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(pidfd)


def run(attempt: Attempt) -> AttemptResult:
    return CommandExecutor(attempt).run()


# --- exit status ------------------------------------------------------------------------


def test_successful_command_exits_zero_without_error(make_attempt):
    result = run(make_attempt("true"))
    assert result == AttemptResult(0)


def test_failing_command_reports_its_exit_status(make_attempt):
    result = run(make_attempt("exit 7"))
    assert (result.exit_code, result.error) == (7, "exit status 7")


def test_death_by_signal_uses_the_shell_convention_128_plus_n(make_attempt):
    result = run(make_attempt("kill -KILL $$"))
    assert result.exit_code == 128 + signal.SIGKILL
    assert result.killed_by == "SIGKILL"
    assert result.error == "killed by SIGKILL"


def test_missing_shell_fails_with_127_and_names_the_program(make_attempt):
    result = run(make_attempt("true", shell=("/nonexistent/shell",)))
    assert result.exit_code == 127
    assert "cannot start /nonexistent/shell" in result.error


def test_missing_working_directory_fails_to_start(make_attempt, tmp_path):
    result = run(make_attempt("true", cwd=str(tmp_path / "missing")))
    assert result.exit_code == 127
    assert "missing" in result.error


# --- command forms ----------------------------------------------------------------------


def test_command_list_runs_in_order_and_stops_at_first_failure(make_attempt, tmp_path):
    result = run(make_attempt("echo one >> trail", "exit 4", "echo three >> trail"))
    assert result.exit_code == 4
    assert (tmp_path / "trail").read_text() == "one\n"


def test_command_list_items_share_no_shell_state(make_attempt, tmp_path):
    result = run(make_attempt("X=set", 'echo "[$X]" > trail'))
    assert result.exit_code == 0
    assert (tmp_path / "trail").read_text() == "[]\n"


def test_script_runs_from_a_temp_file_that_is_removed_afterwards(make_attempt, tmp_path):
    result = run(make_attempt(script='echo "$0" > where\nfalse\necho after-false > where\n'))
    # NOTE: exit 1 with only the path in `where` shows `-e` from the shell tuple reached the script.
    assert result.exit_code == 1
    script_path = (tmp_path / "where").read_text().strip()
    assert os.path.isabs(script_path)
    assert not os.path.exists(os.path.dirname(script_path))


def test_script_with_shebang_is_executed_directly(make_attempt, tmp_path):
    script = f"#!{sys.executable}\nimport sys\nopen('who', 'w').write(sys.executable)\n"
    result = run(make_attempt(script=script))
    assert result.exit_code == 0, result.error
    assert (tmp_path / "who").read_text() == sys.executable


def test_command_with_script_runs_the_script_through_that_interpreter(make_attempt):
    script = "import os, sys\nprint('interpreted', os.path.basename(sys.argv[0]))\n"
    interpreter = f"{shlex.quote(sys.executable)} -u"
    result = run(make_attempt(interpreter, script=script, capture_output=True))
    assert result.exit_code == 0, result.error
    assert result.output == "interpreted script"


def test_script_with_several_commands_is_rejected(make_attempt):
    result = run(make_attempt("python3", "bash", script="print(1)"))
    assert result.exit_code != 0
    assert "one interpreter command" in result.error


# --- environment and working directory ----------------------------------------------------


def test_env_is_exactly_the_attempt_env(make_attempt, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGU_TEST_HOST_ONLY", "leak")
    env = {"PATH": os.environ["PATH"], "GREETING": "hi there"}
    attempt = make_attempt("import json, os; print(json.dumps(dict(os.environ)))", shell=PY, env=env)
    result = run(replace(attempt, capture_output=True))
    seen = json.loads(result.output)
    # NOTE: Python may add LC_CTYPE itself (PEP 538 locale coercion) when none is set.
    seen.pop("LC_CTYPE", None)
    assert seen == env


def test_cwd_is_honoured(make_attempt, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    result = run(make_attempt("import os; print(os.getcwd())", shell=PY, cwd=str(work), capture_output=True))
    assert result.output == str(work.resolve())


def test_stdin_is_not_inherited_from_the_engine(make_attempt):
    # Give our own fd 0 some data for the duration of the run; a step that inherited it
    # would read "leaked".
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"leaked\n")
    os.close(write_fd)
    saved = os.dup(0)
    try:
        os.dup2(read_fd, 0)
        result = run(make_attempt("cat", capture_output=True))
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(read_fd)
    assert (result.exit_code, result.output) == (0, "")


# --- logs ------------------------------------------------------------------------------------


def test_stdout_and_stderr_go_to_separate_files(make_attempt):
    attempt = make_attempt("echo to-out; echo to-err >&2")
    run(attempt)
    assert Path(attempt.stdout_path).read_text() == "to-out\n"
    assert Path(attempt.stderr_path).read_text() == "to-err\n"


def test_same_path_for_both_streams_merges_them(make_attempt, tmp_path):
    log = str(tmp_path / "logs" / "step.log")
    attempt = make_attempt("echo to-out; echo to-err >&2; echo to-out-again", stdout_path=log, stderr_path=log)
    run(attempt)
    # NOTE: two separate O_APPEND fds would pass this too; what matters is one file, in order.
    assert Path(log).read_text() == "to-out\nto-err\nto-out-again\n"


def test_retries_append_to_the_same_logs(make_attempt):
    attempt = make_attempt("echo attempt; echo oops >&2; exit 1")
    run(attempt)
    run(attempt)
    assert Path(attempt.stdout_path).read_text() == "attempt\nattempt\n"
    assert Path(attempt.stderr_path).read_text() == "oops\noops\n"


# --- output capture --------------------------------------------------------------------------


def test_captured_output_is_trimmed_and_still_logged(make_attempt):
    attempt = make_attempt("printf '  \\n  hello world \\n\\n'; echo not-captured >&2", capture_output=True)
    result = run(attempt)
    assert result.output == "hello world"
    assert Path(attempt.stdout_path).read_text() == "  \n  hello world \n\n"
    assert Path(attempt.stderr_path).read_text() == "not-captured\n"


def test_capture_spans_every_command_of_a_list(make_attempt):
    result = run(make_attempt("echo one", "echo two", capture_output=True))
    assert result.output == "one\ntwo"


def test_output_beyond_max_output_size_fails_the_step_but_is_fully_logged(make_attempt):
    attempt = make_attempt("head -c 100 /dev/zero | tr '\\0' x", capture_output=True, max_output_size=10)
    result = run(attempt)
    assert result.exit_code != 0
    assert result.error == "output exceeded max_output_size (10 bytes)"
    assert result.output is None
    assert Path(attempt.stdout_path).read_text() == "x" * 100


def test_output_exactly_at_the_cap_is_accepted(make_attempt):
    result = run(make_attempt("printf 0123456789", capture_output=True, max_output_size=10))
    assert (result.exit_code, result.output) == (0, "0123456789")


def test_capture_returns_when_a_background_child_keeps_stdout_open(make_attempt, tmp_path, kill_at_end):
    attempt = make_attempt("sleep 300 & echo $! > bgpid; echo done", capture_output=True)
    started = time.monotonic()
    result = run(attempt)
    kill_at_end.append(int((tmp_path / "bgpid").read_text()))
    assert result == AttemptResult(0, output="done")
    assert time.monotonic() - started < 3.0


# --- timeout ---------------------------------------------------------------------------------


def test_timeout_kills_the_step_and_its_grandchild(make_attempt, tmp_path, start, kill_at_end):
    # The shell and its background child both ignore SIGTERM, so only the SIGKILL after
    # the grace ends them: this covers the escalation too.
    attempt = make_attempt(
        "trap '' TERM; sleep 300 & echo $! > gcpid; wait",
        timeout_s=0.5,
        timeout_grace_s=0.2,
        capture_output=True,  # a grandchild holding the pipe must not hang the reader
    )
    running = start(attempt)
    grandchild = int(wait_for_file(tmp_path / "gcpid"))
    kill_at_end.append(grandchild)
    pidfd = open_pidfd(grandchild)
    result = running.wait()
    elapsed = time.monotonic() - running.started_at
    assert result.exit_code == TIMEOUT_EXIT_CODE
    assert result.timed_out and not result.stopped
    assert result.error == "step timed out after 0.5s"
    assert 0.5 + 0.2 <= elapsed < 0.5 + 0.2 + 1.3
    assert wait_process_gone(pidfd), f"grandchild {grandchild} survived the timeout"


def test_timeout_covers_the_whole_command_list_not_each_command(make_attempt, tmp_path):
    # NOTE: each command alone is well inside the timeout; only their sum exceeds it.
    result = run(make_attempt(*["sleep 0.25"] * 4, "touch done", timeout_s=0.6))
    assert result.timed_out
    assert not (tmp_path / "done").exists()


def test_survivors_of_the_leader_are_killed_without_waiting_out_the_grace(
    make_attempt, tmp_path, start, kill_at_end
):
    # The leader dies on SIGTERM at once; its child ignores SIGTERM. With a 30 s grace
    # the run still returns promptly because leftovers are SIGKILLed when the leader exits.
    attempt = make_attempt(
        "sh -c 'trap \"\" TERM; echo $$ > gcpid; exec sleep 300' & wait",
        timeout_s=0.3,
        timeout_grace_s=30,
    )
    running = start(attempt)
    grandchild = int(wait_for_file(tmp_path / "gcpid"))
    kill_at_end.append(grandchild)
    pidfd = open_pidfd(grandchild)
    result = running.wait()
    assert result.timed_out
    assert time.monotonic() - running.started_at < 5.0
    assert wait_process_gone(pidfd), f"grandchild {grandchild} survived its leader"


# --- stop ------------------------------------------------------------------------------------


def test_stop_delivers_the_requested_signal_to_the_step(make_attempt, tmp_path, start):
    script = "trap 'echo got-int > marker; exit 3' INT\necho ready > ready\nsleep 300 & wait\n"
    running = start(make_attempt(script=script))
    wait_for_file(tmp_path / "ready")
    running.executor.stop("SIGINT", 5.0)
    result = running.wait()
    assert (tmp_path / "marker").read_text() == "got-int\n"
    assert result.stopped and not result.timed_out
    assert result.exit_code == 3
    assert result.error == "stopped by SIGINT; exit status 3"
    assert time.monotonic() - running.started_at < 5.0, "the trap's exit was not noticed before the grace ran out"


def test_stop_sends_sigkill_after_the_grace_when_the_signal_is_ignored(make_attempt, tmp_path, start):
    running = start(make_attempt("trap '' INT TERM; echo ready > ready; sleep 300 & wait"))
    wait_for_file(tmp_path / "ready")
    stopped_at = time.monotonic()
    running.executor.stop("SIGINT", 0.3)
    result = running.wait()
    assert time.monotonic() - stopped_at >= 0.3
    assert result.stopped
    assert (result.exit_code, result.killed_by) == (128 + signal.SIGKILL, "SIGKILL")


def test_a_second_stop_with_no_grace_kills_at_once(make_attempt, tmp_path, start):
    running = start(make_attempt("trap '' INT TERM; echo ready > ready; sleep 300 & wait"))
    wait_for_file(tmp_path / "ready")
    running.executor.stop("SIGINT", 60)
    running.executor.stop("SIGINT", 0)
    result = running.wait(timeout=5.0)
    assert result.killed_by == "SIGKILL"


def test_stop_before_run_starts_nothing(make_attempt, tmp_path):
    executor = CommandExecutor(make_attempt("touch started"))
    executor.stop("SIGTERM", 1.0)
    result = executor.run()
    assert result.stopped
    assert result.exit_code == 128 + signal.SIGTERM
    assert not (tmp_path / "started").exists()


def test_stop_between_commands_skips_the_rest(make_attempt, tmp_path, start):
    running = start(make_attempt("echo ready > ready; trap 'exit 0' TERM; sleep 300 & wait", "touch second"))
    wait_for_file(tmp_path / "ready")
    running.executor.stop("SIGTERM", 5.0)
    result = running.wait()
    # NOTE: the first command exits 0 on SIGTERM, so only the stop makes the list end here.
    assert result.stopped
    assert not (tmp_path / "second").exists()


def test_stop_after_run_is_a_no_op(make_attempt):
    executor = CommandExecutor(make_attempt("true"))
    assert executor.run().exit_code == 0
    executor.stop("SIGTERM", 1.0)
    executor.stop("SIGTERM", 1.0)


def test_stop_rejects_an_unknown_signal_name(make_attempt):
    executor = CommandExecutor(make_attempt("true"))
    with pytest.raises(ValueError, match='unknown signal "INT"'):
        executor.stop("INT", 1.0)
