"""The OS-process supervisor behind `dagu start-all`, with real spawned processes and real signals.

Each test runs the supervisor in its own Python process (`proc_targets.supervise`),
so signals hit it and not pytest; children record their starts and SIGTERMs in
`<tmp>/events` (see proc_targets.py), which the tests wait on with deadlines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actors.processes import CONFIG_ERROR_EXIT, RESTARTS_EXCEEDED_EXIT, ProcessSpec, ProcessSupervisor
from actors.supervisor import Intensity

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TITLE_MARK = "dagu-test:"
FAST = {"max_restarts": 3, "within_s": 30.0, "backoff_s": [0.01, 0.05]}
WAIT_S = 10.0


class SupervisorProcess:
    """A ProcessSupervisor running in a subprocess, with its log and its children's events."""

    def __init__(self, folder: Path, children: list[dict], intensity: dict, reraise: bool) -> None:
        self.folder = folder
        self.log_path = folder / "supervisor.log"
        for child in children:
            child.setdefault("title", f"{TITLE_MARK} {child['id']}")
            child["args"] = [str(folder), child["id"], *child.get("args", ())]
        config = json.dumps({"children": children, "intensity": intensity, "reraise": reraise})
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "import sys, proc_targets; proc_targets.supervise(sys.argv[1])", config],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, cwd=folder,
            )

    def log(self) -> str:
        return self.log_path.read_text()

    def events(self, kind: str | None = None) -> list[tuple[str, str, int]]:
        """(kind, child id, pid) per recorded event, in the order they happened."""
        path = self.folder / "events"
        rows = [line.split() for line in path.read_text().splitlines()] if path.exists() else []
        return [(k, name, int(pid)) for k, name, pid, _ in rows if kind in (None, k)]

    def pids(self, child_id: str) -> list[int]:
        return [pid for _, name, pid in self.events("start") if name == child_id]

    def wait_for(self, what: str, condition: Callable[[], bool], timeout: float = WAIT_S) -> None:
        # Files have no event to block on; a short poll against a deadline is the next best.
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not happen within {timeout:g}s; supervisor log:\n{self.log()}")
            if self.proc.poll() is not None and not condition():
                pytest.fail(f"supervisor exited {self.proc.returncode} before {what}; log:\n{self.log()}")
            time.sleep(0.01)

    def wait_started(self, *child_ids: str) -> None:
        self.wait_for(f"start of {child_ids}", lambda: all(self.pids(c) for c in child_ids))

    def wait_exit(self, timeout: float = WAIT_S) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"supervisor still running after {timeout:g}s; log:\n{self.log()}")

    def kill_everything(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        # Children orphaned by a failed test: ours if they run in our folder (spawn
        # inherits the supervisor's cwd), which a reused pid would not. The title is
        # no proof: a broken title is one of the things a test may catch.
        for pid in _pids_in(self.folder):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def supervise(tmp_path: Path) -> Iterator[Callable[..., SupervisorProcess]]:
    started: list[SupervisorProcess] = []

    def start(*children: dict, intensity: dict = FAST, reraise: bool = True) -> SupervisorProcess:
        started.append(SupervisorProcess(tmp_path, list(children), intensity, reraise))
        return started[-1]

    yield start
    for sup in started:
        sup.kill_everything()


def serve(child_id: str, **extra) -> dict:
    return {"id": child_id, "target": "proc_targets:serve", **extra}


def test_children_start_in_spec_order_and_carry_their_titles(supervise):
    sup = supervise(serve("server"), serve("scheduler"), serve("coordinator"))
    sup.wait_started("server", "scheduler", "coordinator")

    log = sup.log()
    positions = [log.index(f"started child {c} [{sup.pids(c)[0]}]") for c in ("server", "scheduler", "coordinator")]
    assert positions == sorted(positions), log
    for child_id in ("server", "scheduler", "coordinator"):
        assert _title(sup.pids(child_id)[0]) == f"{TITLE_MARK} {child_id}"
    sup.proc.terminate()
    assert sup.wait_exit() == -signal.SIGTERM


def test_crashed_permanent_child_is_restarted_with_a_new_pid_and_the_restart_is_logged(supervise):
    sup = supervise(serve("steady"), {"id": "flaky", "target": "proc_targets:crash_once", "args": [3]})
    sup.wait_for("restart of flaky", lambda: len(sup.pids("flaky")) == 2)

    first, second = sup.pids("flaky")
    assert first != second
    assert f"child flaky [{first}] exited 3; restarting in" in sup.log()
    assert "(restart 1 of 3 within 30s)" in sup.log()
    sup.wait_for("log of the new start", lambda: f"started child flaky [{second}]" in sup.log())
    assert len(sup.pids("steady")) == 1  # one_for_one: the sibling is untouched
    sup.proc.terminate()
    assert sup.wait_exit() == -signal.SIGTERM


def test_transient_child_is_not_restarted_after_clean_exit(supervise):
    sup = supervise({"id": "job", "target": "proc_targets:crash", "args": [0], "restart": "transient"})

    # NOTE: were it restarted, it would exit 0 again and again until the intensity
    # is exceeded, and the supervisor would exit 1, not 0.
    assert sup.wait_exit() == 0
    assert len(sup.pids("job")) == 1
    assert "child job" in sup.log() and "exited 0; transient, not restarting" in sup.log()


def test_transient_child_is_restarted_after_abnormal_exit(supervise):
    sup = supervise({"id": "job", "target": "proc_targets:crash", "args": [2], "restart": "transient"},
                    intensity={**FAST, "max_restarts": 1})

    assert sup.wait_exit() == RESTARTS_EXCEEDED_EXIT
    assert len(sup.pids("job")) == 2


def test_supervisor_gives_up_when_restarts_exceed_intensity_and_leaves_no_child(supervise):
    sup = supervise(serve("steady"), {"id": "crasher", "target": "proc_targets:crash", "args": [1]},
                    intensity={**FAST, "max_restarts": 2})

    assert sup.wait_exit() == RESTARTS_EXCEEDED_EXIT
    assert len(sup.pids("crasher")) == 3  # the first start and two restarts
    assert "more than 2 restarts within 30s, stopping all children and giving up" in sup.log()
    # NOTE: steady may be stopped before it gets to record its start, so the proof is
    # the supervisor's word plus the folder scan in _assert_gone, not steady's events.
    assert "stopping child steady" in sup.log()
    _assert_gone(sup)


def test_config_error_exit_stops_everything_without_restart(supervise):
    sup = supervise(serve("steady"), {"id": "broken", "target": "proc_targets:crash", "args": [CONFIG_ERROR_EXIT]})

    assert sup.wait_exit() == CONFIG_ERROR_EXIT
    assert len(sup.pids("broken")) == 1
    assert "exited 78 (config error); not restarting, stopping all children" in sup.log()
    # NOTE: steady may be stopped before it gets to record its start, so the proof is
    # the supervisor's word plus the folder scan in _assert_gone, not steady's events.
    assert "stopping child steady" in sup.log()
    _assert_gone(sup)


def test_child_target_that_cannot_be_imported_is_a_config_error(supervise):
    sup = supervise({"id": "typo", "target": "proc_targets:no_such_function"})

    assert sup.wait_exit() == CONFIG_ERROR_EXIT
    assert "cannot load child target proc_targets:no_such_function" in sup.log()
    assert "restarting in" not in sup.log()


def test_sigterm_stops_children_in_reverse_order_within_their_grace_and_reraises_it(supervise):
    sup = supervise(serve("a"), serve("b"), serve("c"))
    sup.wait_started("a", "b", "c")

    sup.proc.terminate()
    assert sup.wait_exit() == -signal.SIGTERM
    assert [name for _, name, _ in sup.events("term")] == ["c", "b", "a"]
    assert "SIGKILL" not in sup.log()
    assert sup.log().count("exited 0") == 3
    _assert_gone(sup)


def test_without_reraise_a_signal_stop_returns_128_plus_the_signal(supervise):
    sup = supervise(serve("a"), reraise=False)
    sup.wait_started("a")

    sup.proc.send_signal(signal.SIGINT)
    assert sup.wait_exit() == 128 + signal.SIGINT
    assert [name for _, name, _ in sup.events("term")] == ["a"]


def test_child_ignoring_sigterm_is_killed_after_its_shutdown_s(supervise):
    sup = supervise(serve("polite"), serve("stubborn", args=[True], shutdown_s=0.5))
    sup.wait_started("polite", "stubborn")

    signalled_at = time.monotonic()
    sup.proc.terminate()
    assert sup.wait_exit() == -signal.SIGTERM
    assert time.monotonic() - signalled_at >= 0.5  # the grace was waited out
    log = sup.log()
    assert "child stubborn" in log and "did not stop within 0.5s; SIGKILL" in log
    assert "killed by SIGKILL (possibly out of memory)" in log
    assert [name for _, name, _ in sup.events("term")] == ["stubborn", "polite"]
    _assert_gone(sup)


def test_second_sigint_skips_the_grace(supervise):
    sup = supervise(serve("polite"), serve("stubborn", args=[True], shutdown_s=60))
    sup.wait_started("polite", "stubborn")

    sup.proc.send_signal(signal.SIGINT)
    sup.wait_for("SIGTERM to stubborn", lambda: sup.events("term"))
    sup.proc.send_signal(signal.SIGINT)
    # NOTE: the timeout is far below stubborn's 60 s grace, so only skipping it passes.
    assert sup.wait_exit(timeout=WAIT_S) == -signal.SIGINT
    assert "got SIGINT while stopping; killing the rest without grace" in sup.log()
    assert [name for _, name, _ in sup.events("term")] == ["stubborn"]  # polite: SIGKILL, no SIGTERM
    _assert_gone(sup)


def test_run_in_process_returns_the_code_restores_signals_and_snapshots_restarts(tmp_path):
    # In pytest's own main thread: the spawned children find proc_targets on the
    # sys.path they inherit from this process.
    before = signal.getsignal(signal.SIGTERM)
    spec = ProcessSpec("crasher", "proc_targets:crash", args=(str(tmp_path), "crasher", 4),
                       title=f"{TITLE_MARK} crasher")
    supervisor = ProcessSupervisor([spec], intensity=Intensity(max_restarts=2, backoff_s=(0.01, 0.05)))

    assert supervisor.run() == RESTARTS_EXCEEDED_EXIT
    assert signal.getsignal(signal.SIGTERM) is before
    snap = supervisor.snapshot()
    assert snap.child("crasher").restarts == 2
    assert snap.child("crasher").state == "stopped" and snap.child("crasher").pid is None


def test_importing_the_module_starts_nothing():
    code = (
        "import signal, threading, multiprocessing, actors.processes;"
        "assert threading.active_count() == 1;"
        "assert not multiprocessing.active_children();"
        "assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL;"
        "assert signal.set_wakeup_fd(-1) == -1"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _pids_in(folder: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")) == folder:
                pids.append(int(proc.name))
        except OSError:  # gone meanwhile, or not ours to inspect
            continue
    return pids


def _assert_gone(sup: SupervisorProcess) -> None:
    # The supervisor reaps every child before it exits, so no pid may survive it.
    for _, name, pid in sup.events("start"):
        assert not Path(f"/proc/{pid}").exists(), f"child {name} [{pid}] outlived the supervisor"
    # multiprocessing's resource tracker exits on its own once it reads EOF from the
    # dead supervisor, a moment later; it gets a deadline, not a pass.
    deadline = time.monotonic() + WAIT_S
    while (left := _pids_in(sup.folder)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert left == [], f"processes {left} outlived the supervisor"
