"""StepActor: one attempt of one step, from its preconditions to its result.

The actor thread only receives messages; the blocking work (preconditions, the
executor, the repeat condition) runs in one helper thread that tells the actor when
it is done. Retries and repeats are not decided here: the DagRunActor starts a new
StepActor for every attempt, as a supervisor restarts a child.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pykka

from actors.messages import ChildExited, StepFinished, StepStarted, StopStep
from dagu.resolve import ResolveError, evaluate_env, evaluate_precondition, expand_command, expand_config, expand_script
from dagu.spec.model import Dag, Precondition, Step
from dagu.status import NodeStatus
from dagu.steps import registry
from dagu.steps.base import Attempt, AttemptResult

__all__ = ["StepActor", "StepJob"]

logger = logging.getLogger(__name__)

_SUB_DAG_TYPES = ("dag", "parallel")  # executors that start child runs and need the run context


@dataclass(frozen=True, slots=True)
class StepJob:
    """What the DagRunActor hands a StepActor: the step and its resolved surroundings."""

    run_id: str
    dag: Dag
    step: Step
    node: str  # node key: the step name, or the handler node name ("onExit")
    attempt: int  # 1 for the first execution; counts retries and repeats
    env: Mapping[str, str]  # run env + predecessor outputs; step env is added here
    shell: tuple[str, ...]
    cwd: str
    stdout_path: str
    stderr_path: str
    step_refs: Mapping[str, Any] = field(default_factory=dict)  # step id -> dagu.resolve.StepRef
    check_preconditions: bool = True
    timeout_grace_s: float = 5.0
    context: Mapping[str, Any] = field(default_factory=dict)  # for sub-DAG executors: settings, parent


@dataclass(frozen=True, slots=True)
class _AttemptDone:
    """StepActor helper thread -> StepActor: the work is finished."""

    message: StepFinished


class StepActor(pykka.ThreadingActor):
    """Runs one attempt of a step and reports `StepFinished` to its parent."""

    def __init__(self, parent: pykka.ActorRef, job: StepJob):
        super().__init__()
        self._parent = parent
        self._job = job
        self._executor: Any = None
        self._stop_request: StopStep | None = None
        self._lock = threading.Lock()  # guards _executor/_stop between the actor and helper thread
        self._reported = False

    def on_start(self) -> None:
        threading.Thread(target=self._work, name=f"step:{self._job.node}", daemon=True).start()

    def on_receive(self, message: Any) -> Any:
        match message:
            case _AttemptDone(message=finished):
                self._reported = True
                self._parent.tell(finished)
                self.stop()
            case StopStep():
                self._on_stop_step(message)
            case _:
                return super().on_receive(message)

    def on_failure(self, exception_type, exception_value, traceback) -> None:
        job = self._job
        if not self._reported:
            self._parent.tell(
                StepFinished(job.run_id, job.node, job.attempt, NodeStatus.FAILED.value, None, f"internal error: {exception_value}")
            )
        self._parent.tell(ChildExited(job.node, "crashed", abnormal=True, error=str(exception_value)))

    def _on_stop_step(self, message: StopStep) -> None:
        with self._lock:
            self._stop_request = message
            executor = self._executor
        if executor is not None:
            executor.stop(message.signal_name or self._job.step.signal_on_stop or "SIGTERM", message.grace_s)

    # -- helper thread -------------------------------------------------------

    def _work(self) -> None:
        job = self._job
        try:
            finished = self._execute()
        except Exception as exc:  # a bug or an unexpected executor error: the step fails, the run goes on
            logger.exception("step %s of run %s crashed", job.node, job.run_id)
            finished = StepFinished(job.run_id, job.node, job.attempt, NodeStatus.FAILED.value, None, f"{type(exc).__name__}: {exc}")
        self.actor_ref.tell(_AttemptDone(finished))

    def _execute(self) -> StepFinished:
        job, step = self._job, self._job.step
        env = dict(job.env)
        try:
            if step.env:
                env.update(evaluate_env(step.env, env, process_env=env))
            env["PWD"] = job.cwd
            if job.check_preconditions and step.preconditions:
                for pre in step.preconditions:
                    if not evaluate_precondition(pre, env, shell=job.shell, cwd=job.cwd, env=env):
                        return self._finished(NodeStatus.SKIPPED, None, None)
            commands = tuple(
                expand_command(c, env, steps=job.step_refs, shell=job.shell, process_env=env, env_for_shell=env, cwd=job.cwd)
                for c in step.commands
            )
            script = expand_script(step.script, env, steps=job.step_refs, process_env=env) if step.script is not None else None
            config = (
                expand_config(step.config, env, steps=job.step_refs, shell=job.shell, process_env=env, env_for_shell=env, cwd=job.cwd)
                if step.config
                else {}
            )
        except ResolveError as exc:
            return self._finished(NodeStatus.FAILED, None, str(exc))
        attempt = Attempt(
            dag=job.dag,
            step=step,
            commands=commands,
            script=script,
            shell=job.shell,
            env=env,
            cwd=job.cwd,
            stdout_path=job.stdout_path,
            stderr_path=job.stderr_path,
            timeout_s=float(step.timeout_sec or 0),
            max_output_size=job.dag.max_output_size,
            capture_output=step.output is not None or step.type in _SUB_DAG_TYPES,
            timeout_grace_s=job.timeout_grace_s,
            config=config,
        )
        try:
            factory = registry.resolve(step.type)
        except registry.UnknownStepType as exc:
            return self._finished(NodeStatus.FAILED, None, str(exc))
        executor = factory(attempt, context=job.context) if step.type in _SUB_DAG_TYPES else factory(attempt)
        with self._lock:
            stop = self._stop_request
            self._executor = executor
        if stop is not None:
            executor.stop(stop.signal_name or step.signal_on_stop or "SIGTERM", stop.grace_s)
        self._parent.tell(StepStarted(job.run_id, job.node, job.attempt))
        result: AttemptResult = executor.run()
        status = NodeStatus.SUCCEEDED if result.exit_code == 0 and not result.stopped else NodeStatus.FAILED
        if result.stopped:
            status = NodeStatus.ABORTED
        if status == NodeStatus.SUCCEEDED and result.status is not None:
            status = NodeStatus(result.status)  # sub-DAG executors pass a partial success through
        repeat = False
        if step.repeat_policy is not None and not result.stopped and not result.timed_out:
            out_env = dict(env)
            if step.output is not None and result.output is not None:
                out_env[step.output.name] = result.output
            try:
                repeat = self._should_repeat(result, out_env)
            except ResolveError as exc:
                return self._finished(NodeStatus.FAILED, result, f"repeat condition: {exc}")
        return self._finished(status, result, result.error, repeat=repeat)

    def _should_repeat(self, result: AttemptResult, env: Mapping[str, str]) -> bool:
        job, policy = self._job, self._job.step.repeat_policy
        assert policy is not None
        if policy.condition is not None:
            holds = evaluate_precondition(
                Precondition(policy.condition, policy.expected), env, shell=job.shell, cwd=job.cwd, env=env
            )
        elif policy.exit_codes:
            holds = result.exit_code in policy.exit_codes
        else:
            holds = result.exit_code == 0
        return holds if policy.mode == "while" else not holds

    def _finished(self, status: NodeStatus, result: AttemptResult | None, error: str | None, *, repeat: bool = False) -> StepFinished:
        job = self._job
        return StepFinished(
            run_id=job.run_id,
            node=job.node,
            attempt=job.attempt,
            status=status.value,
            exit_code=None if result is None else result.exit_code,
            error=error,
            output=None if result is None else result.output,
            timed_out=bool(result and result.timed_out),
            repeat=repeat,
            children=() if result is None else result.children,
        )
