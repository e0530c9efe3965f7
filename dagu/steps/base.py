"""The contract between the engine and a step type: what an attempt gets and how it is stopped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dagu.spec.model import Dag, Step

__all__ = ["Attempt", "AttemptResult", "Executor", "ExecutorFactory", "TIMEOUT_EXIT_CODE"]

TIMEOUT_EXIT_CODE = 124


@dataclass(frozen=True, slots=True)
class Attempt:
    """Everything one execution of a step needs, already resolved by the engine.

    `commands` and `script` have had variables substituted; `env` is the complete
    environment of the step process (allow-listed host env + run env + step env).
    """

    dag: Dag
    step: Step
    commands: tuple[str, ...]
    script: str | None
    shell: tuple[str, ...]  # e.g. ("sh", "-e") or ("bash",); never empty for command steps
    env: Mapping[str, str]
    cwd: str
    stdout_path: str
    stderr_path: str  # equal to stdout_path when log output is merged
    timeout_s: float = 0.0  # 0 = none
    max_output_size: int = 1_048_576
    capture_output: bool = False  # keep stdout in memory for `output:`
    timeout_grace_s: float = 5.0  # on timeout: SIGTERM, wait this long, then SIGKILL
    config: Mapping[str, Any] = field(default_factory=dict)  # step `config`, every string expanded (plain dicts/lists)


@dataclass(frozen=True, slots=True)
class AttemptResult:
    exit_code: int  # 128+N when killed by signal N (shell convention); TIMEOUT_EXIT_CODE on timeout
    error: str | None = None  # human text; None on success
    output: str | None = None  # captured stdout (trimmed) when capture_output
    timed_out: bool = False
    stopped: bool = False  # ended because stop() was called
    killed_by: str | None = None  # signal name ("SIGKILL") when the process died by a signal
    status: int | None = None  # NodeStatus to record on success (a sub-DAG that partially succeeded)
    children: tuple[tuple[str, str], ...] = ()  # (run ID, params) of the child runs a step started


class Executor(Protocol):
    """One attempt of one step. `run` blocks; `stop` may be called from another thread."""

    def run(self) -> AttemptResult: ...

    def stop(self, signal_name: str, grace_s: float) -> None: ...


class ExecutorFactory(Protocol):
    def __call__(self, attempt: Attempt) -> Executor: ...
