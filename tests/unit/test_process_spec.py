"""ProcessSpec's checks and describe_exit's words; the supervisor runs in tests/integration/test_processes.py."""

from __future__ import annotations

import re
import signal
import threading

import pytest

from actors.processes import ProcessSpec, ProcessSupervisor, describe_exit
from actors.supervisor import Restart


@pytest.mark.parametrize(
    ("exitcode", "words"),
    [
        (0, "exited 0"),
        (3, "exited 3"),
        (78, "exited 78 (config error)"),
        (-signal.SIGKILL, "killed by SIGKILL (possibly out of memory)"),
        (-signal.SIGTERM, "killed by SIGTERM"),
        (-signal.SIGSEGV, "killed by SIGSEGV"),
        (-200, "killed by signal 200"),
        (None, "still running"),
    ],
)
def test_describe_exit_turns_an_exit_code_into_words(exitcode, words):
    assert describe_exit(exitcode) == words


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"id": ""}, ValueError, "ProcessSpec.id: expected a non-empty string"),
        ({"target": "dagu.cli.scheduler"}, ValueError, 'expected "package.module:function"'),
        ({"target": "dagu.cli:run:x"}, ValueError, 'expected "package.module:function"'),
        ({"args": [1]}, TypeError, "args: expected a tuple, got list"),
        ({"args": (threading.Lock(),)}, TypeError, "args: must be picklable"),
        ({"restart": "permanent"}, TypeError, "restart: expected a Restart"),
        ({"shutdown_s": -1}, ValueError, "shutdown_s: expected a number >= 0"),
    ],
)
def test_process_spec_rejects_bad_fields_when_built(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        ProcessSpec(**{"id": "scheduler", "target": "dagu.cli:scheduler", **kwargs})


def test_process_spec_accepts_a_well_formed_spec():
    spec = ProcessSpec("scheduler", "dagu.cli.start_all:run", ("/tmp/x",), Restart.TRANSIENT, 0, "dagu: scheduler")
    assert spec.title == "dagu: scheduler"


def test_supervisor_rejects_duplicate_child_ids_and_unknown_log_levels_when_built():
    spec = ProcessSpec("server", "dagu.cli:server")
    with pytest.raises(ValueError, match="duplicate child id 'server'"):
        ProcessSupervisor([spec, spec])
    with pytest.raises(ValueError, match="log_level: expected DEBUG, INFO, WARNING or ERROR, got 'LOUD'"):
        ProcessSupervisor([spec], log_level="LOUD")


def test_supervisor_refuses_to_run_outside_the_main_thread():
    supervisor = ProcessSupervisor([ProcessSpec("server", "dagu.cli:server")])
    errors: list[BaseException] = []

    def run() -> None:
        try:
            supervisor.run()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert [str(e) for e in errors] == [
        "ProcessSupervisor(start-all).run() must be called from the main thread, to handle signals"
    ]
