"""DagRunActor: walks one run's graph, supervises its StepActors and owns the run's status.

Every change is written to the status log before anyone is told of it. Retries are
restarts: a failed StepActor that its `retry_policy` allows to restart is replaced by
a new one after the policy's delay. The actor never blocks: preconditions of the DAG
run in a helper thread, delays are timers that tell the actor.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pykka

from actors.messages import (
    ChildExited,
    RestartStep,
    RunChanged,
    RunDeadline,
    StepChanged,
    StepFinished,
    StepStarted,
    StopRun,
    StopStep,
    Wake,
)
from actors.plan import NodeOutcome, Plan, Readiness, final_run_status
from actors.retry import step_restart_policy
from actors.step import StepActor, StepJob
from dagu.resolve import ResolveError, StepRef, evaluate_precondition, expand, matches_output, resolve_dir
from dagu.spec.model import HANDLER_NODE_NAMES, Dag, Step
from dagu.status import NodeStatus, RunStatus
from dagu.steps.shell import build_shell
from dagu.store import HANDLER_KEYS, ChildRun, NodeRecord, RunRecord, StatusWriter, utc_now

__all__ = ["DagRunActor", "RunSetup"]

logger = logging.getLogger(__name__)

_ABORT_HOOK = {RunStatus.SUCCEEDED: "success", RunStatus.PARTIALLY_SUCCEEDED: "success", RunStatus.FAILED: "failure", RunStatus.ABORTED: "abort"}


@dataclass
class RunSetup:
    """Everything a DagRunActor needs, prepared by `actors.launch` (the store is already open)."""

    dag: Dag
    run_id: str
    record: RunRecord  # initial record: nodes in definition order, status not started
    writer: StatusWriter
    step_log_paths: Callable[[str, datetime], tuple[str, str]]
    env: Mapping[str, str]  # host allow-list + params + DAG env + dotenv + run-context vars
    working_dir: str
    default_shell: str | None = None
    keep: Mapping[str, NodeRecord] = field(default_factory=dict)  # retry: finished nodes kept as they were
    context: Mapping[str, Any] = field(default_factory=dict)  # for sub-DAG executors
    on_done: Callable[[RunRecord], None] | None = None  # called once, after the final status is durable
    before_close: Callable[[RunRecord], None] | None = None  # called once with the final record just before it is written
    observer: pykka.ActorRef | None = None  # receives StepChanged / RunChanged


class DagRunActor(pykka.ThreadingActor):
    """Owns one run attempt from its first status line to its last."""

    def __init__(self, setup: RunSetup):
        super().__init__()
        self._s = setup
        self._dag = setup.dag
        self._plan = Plan(setup.dag)
        self._ids = [(s.id, s.name) for s in setup.dag.steps if s.id]  # addressable by ${id.stdout} etc.
        self._record = setup.record
        self._nodes: dict[str, NodeRecord] = {n.name: n for n in setup.record.nodes}
        self._index: dict[str, int] = {n.name: i for i, n in enumerate(setup.record.nodes)}
        self._outcomes: dict[str, NodeOutcome] = {}
        self._running: dict[str, tuple[int, pykka.ActorRef]] = {}  # node -> (attempt, actor)
        self._restarting: dict[str, threading.Timer] = {}
        self._awaiting_slot: list[str] = []  # restarts whose delay is over, waiting for a free slot
        self._attempt: dict[str, int] = {}
        self._timers: list[threading.Timer] = []
        self._phase = "pre"
        self._handler_queue: list[str] = []
        self._cancelled = False
        self._explicit_error: str | None = None
        self._launch_hold = False  # delay_sec: no launch until the Wake arrives
        self._finished = False

    # -- lifecycle -------------------------------------------------------------

    def on_start(self) -> None:
        rec = self._record
        rec.status = RunStatus.RUNNING
        rec.started_at = utc_now()
        rec.pid = os.getpid()
        for name, kept in self._s.keep.items():
            self._nodes[name] = kept
            rec.nodes[self._index[name]] = kept
            self._outcomes[name] = NodeOutcome(kept.status, continuable=self._is_continuable_record(name, kept))
        self._s.writer.open(rec)
        self._announce_run()
        if self._dag.timeout_sec > 0:
            self._timer(self._dag.timeout_sec, RunDeadline(self._s.run_id))
        if self._dag.preconditions:
            threading.Thread(target=self._check_dag_preconditions, name="dag-preconditions", daemon=True).start()
        else:
            self._start_init()

    def on_stop(self) -> None:
        for t in [*self._timers, *self._restarting.values()]:
            t.cancel()

    def on_failure(self, exception_type, exception_value, traceback) -> None:
        """A bug in this actor must not leave the run `running` forever: record it and finish."""
        logger.error("run %s: the run actor crashed: %s", self._s.run_id, exception_value)
        self.on_stop()
        for _, ref in self._running.values():
            ref.tell(StopStep("SIGKILL", 0.0))
        if self._finished:
            return
        self._finished = True
        rec = self._record
        rec.status = RunStatus.FAILED
        rec.error = f"internal error: {exception_type.__name__}: {exception_value}"
        rec.finished_at = utc_now()
        try:
            self._before_close(rec)
            self._s.writer.close(rec)
        finally:
            if self._s.on_done is not None:
                self._s.on_done(rec)

    def on_receive(self, message: Any) -> Any:
        match message:
            case StepStarted():
                self._on_step_started(message)
            case StepFinished():
                self._on_step_finished(message)
            case RestartStep(node=node):
                self._on_restart(node)
            case Wake():
                self._launch_hold = False
                self._schedule()
            case StopRun():
                self._on_stop_run(message)
            case RunDeadline():
                self._on_deadline()
            case _PreconditionsChecked():
                self._on_dag_preconditions(message)
            case ChildExited():
                logger.debug("run %s: child %s exited (%s)", self._s.run_id, message.child_id, message.reason)
            case _:
                return super().on_receive(message)

    # -- phases ------------------------------------------------------------------

    def _check_dag_preconditions(self) -> None:
        env = dict(self._s.env)
        shell = build_shell(None, self._dag.shell, self._s.default_shell, env)
        try:
            for pre in self._dag.preconditions:
                if not evaluate_precondition(pre, env, shell=shell, cwd=self._s.working_dir, env=env):
                    self.actor_ref.tell(_PreconditionsChecked(False, f"precondition not met: {pre.condition}"))
                    return
        except ResolveError as exc:
            self.actor_ref.tell(_PreconditionsChecked(False, str(exc)))
            return
        self.actor_ref.tell(_PreconditionsChecked(True, None))

    def _on_dag_preconditions(self, message: _PreconditionsChecked) -> None:
        if self._phase != "pre":
            return
        if message.met:
            self._start_init()
        else:
            logger.info("run %s: %s; no step runs", self._s.run_id, message.reason)
            self._record.error = message.reason or ""
            self._cancelled = True
            self._begin_handlers(RunStatus.ABORTED)

    def _start_init(self) -> None:
        if self._dag.handler_on.init is not None:
            self._phase = "init"
            self._launch_handler("init", RunStatus.RUNNING)
        else:
            self._start_main()

    def _start_main(self) -> None:
        self._phase = "main"
        self._schedule()

    # -- the main loop -----------------------------------------------------------

    def _schedule(self) -> None:
        """Launch every step that may start; settle those that never will; finish when done."""
        if self._phase != "main":
            return
        if self._cancelled:
            # Stopped: steps that never started stay not_started (dag-spec 3.14).
            if not self._running and not self._restarting and not self._awaiting_slot:
                self._begin_handlers(self._compute_status())
            return
        while self._awaiting_slot and self._may_launch():
            name = self._awaiting_slot.pop(0)
            self._launch_step(name, attempt=self._attempt.get(name, 1) + 1)
            self._hold_after_launch()
        changed = True
        while changed:
            changed = False
            for name in self._plan.order:
                if name in self._outcomes or name in self._running or name in self._restarting:
                    continue
                verdict = self._plan.readiness(name, self._outcomes)
                if verdict is Readiness.WAIT:
                    continue
                if verdict is Readiness.SKIP:
                    self._settle(name, NodeStatus.SKIPPED, error="")
                    changed = True
                elif verdict is Readiness.ABORT:
                    self._settle(name, NodeStatus.ABORTED, error="upstream failed")
                    changed = True
                elif self._may_launch():
                    self._launch_step(name, attempt=1)
                    self._hold_after_launch()
        if not self._running and not self._restarting and not self._awaiting_slot:
            if len(self._outcomes) == len(self._plan.steps):
                self._begin_handlers(self._compute_status())
            elif not self._launch_hold:
                self._explicit_error = "deadlock: steps remain but none can start"
                self._begin_handlers(RunStatus.FAILED)

    def _hold_after_launch(self) -> None:
        """delay_sec: no further launch until the Wake timer fires."""
        if self._dag.delay_sec > 0:
            self._launch_hold = True
            self._timer(self._dag.delay_sec, Wake())

    def _may_launch(self) -> bool:
        if self._launch_hold or self._cancelled:
            return False
        limit = self._dag.max_active_steps
        return limit <= 0 or len(self._running) < limit

    def _launch_step(self, name: str, *, attempt: int) -> None:
        step = self._plan.steps[name]
        node = self._nodes[name]
        now = utc_now()
        if attempt == 1 and node.done_count == 0:
            out, err = self._s.step_log_paths(name, now)
            self._write_node(name, status=NodeStatus.RUNNING, stdout=out, stderr=err, started_at=now, finished_at=None, error="", exit_code=None)
        else:
            self._write_node(name, status=NodeStatus.RUNNING)
        env = self._env_for(name, step)
        self._start_child(name, step, attempt, env, check_preconditions=attempt == 1 and node.done_count == 0)

    def _start_child(self, node_name: str, step: Step, attempt: int, env: dict[str, str], *, check_preconditions: bool) -> None:
        node = self._nodes.get(node_name) or self._record.node(node_name)
        cwd = self._working_dir(step, env)
        job = StepJob(
            run_id=self._s.run_id,
            dag=self._dag,
            step=step,
            node=node_name,
            attempt=attempt,
            env=env,
            shell=build_shell(step.shell, self._dag.shell, self._s.default_shell, env, shell_args=step.shell_args or self._dag.shell_args),
            cwd=cwd,
            stdout_path=node.stdout,
            stderr_path=node.stderr,
            step_refs=self._step_refs(),
            check_preconditions=check_preconditions,
            timeout_grace_s=float(self._dag.max_clean_up_time_sec),
            context={**self._s.context, "step_node": node_name, "done_count": node.done_count},
        )
        self._attempt[node_name] = attempt
        ref = StepActor.start(self.actor_ref, job)
        self._running[node_name] = (attempt, ref)

    def _on_step_started(self, message: StepStarted) -> None:
        if self._running.get(message.node, (None,))[0] == message.attempt:
            self._announce_step(message.node, NodeStatus.RUNNING)

    def _on_step_finished(self, msg: StepFinished) -> None:
        current = self._running.get(msg.node)
        if current is None or current[0] != msg.attempt:
            return  # a late report of an attempt we already gave up on
        del self._running[msg.node]
        if self._phase in ("init", "handlers"):
            self._on_handler_finished(msg)
            return
        name, node = msg.node, self._nodes[msg.node]
        step = self._plan.steps[name]
        status = NodeStatus(msg.status)
        node.exit_code = msg.exit_code
        if status == NodeStatus.SUCCEEDED and step.output is not None and msg.output is not None:
            self._set_output(name, step, msg.output)
        if status != NodeStatus.SKIPPED:
            node.done_count += 1
        if msg.children:
            self._write_node(name, children=[*node.children, *(ChildRun(run_id, params) for run_id, params in msg.children)])
        if self._may_retry(step, node, msg, status):
            return
        if self._may_repeat(step, node, msg, status):
            return
        continuable = False
        if status == NodeStatus.FAILED:
            continuable = self._is_continuable(step, msg.exit_code, node.stdout)
            if continuable and step.continue_on.mark_success:
                status = NodeStatus.SUCCEEDED
        self._settle(name, status, error=msg.error or "", exit_code=msg.exit_code, continuable=continuable)
        self._schedule()

    def _may_retry(self, step: Step, node: NodeRecord, msg: StepFinished, status: NodeStatus) -> bool:
        if status != NodeStatus.FAILED or step.retry_policy is None:
            return False
        env = self._s.env
        try:
            limit = int(_expand_number(step.retry_policy.limit, env))
            interval = float(_expand_number(step.retry_policy.interval_sec, env))
        except ValueError as exc:
            self._settle(msg.node, NodeStatus.FAILED, error=f"retry_policy: {exc}", exit_code=msg.exit_code)
            self._schedule()
            return True
        policy = step_restart_policy(step.retry_policy, limit=limit, interval_s=interval)
        if node.retry_count >= limit or not policy.should_restart(msg.exit_code, timed_out=msg.timed_out, cancelled=self._cancelled):
            return False
        delay = policy.delay_s(node.retry_count)
        self._write_node(msg.node, retry_count=node.retry_count + 1, retried_at=utc_now(), error=msg.error or "")
        logger.info("run %s: step %s failed (%s); retry %d/%d in %.1fs", self._s.run_id, msg.node, msg.error, node.retry_count, limit, delay)
        self._restarting[msg.node] = self._timer(delay, RestartStep(self._s.run_id, msg.node))
        self._schedule()  # the slot is free while the step waits out its delay
        return True

    def _may_repeat(self, step: Step, node: NodeRecord, msg: StepFinished, status: NodeStatus) -> bool:
        policy = step.repeat_policy
        if policy is None or not msg.repeat or self._cancelled:
            return False
        if policy.limit and node.done_count >= policy.limit:
            return False
        delay = policy.interval_sec * (policy.backoff ** (node.done_count - 1))
        if policy.max_interval_sec is not None:
            delay = min(delay, policy.max_interval_sec)
        self._write_node(msg.node, done_count=node.done_count, repeated=True)
        self._restarting[msg.node] = self._timer(delay, RestartStep(self._s.run_id, msg.node))
        self._schedule()
        return True

    def _on_restart(self, name: str) -> None:
        if self._restarting.pop(name, None) is None or self._cancelled:
            return
        # Restarts queue for a slot like any launch (max_active_steps, delay_sec);
        # _schedule starts them before new steps, when the next step ends or the Wake comes.
        self._awaiting_slot.append(name)
        self._schedule()

    # -- stopping ----------------------------------------------------------------

    def _on_stop_run(self, message: StopRun) -> None:
        if self._cancelled or self._finished:
            return
        logger.info("run %s: stop requested (%s)", self._s.run_id, message.reason)
        self._cancelled = True
        self._abort_pending("aborted")
        self._stop_running()
        if self._phase == "main":
            self._schedule()
        elif self._phase in ("pre", "init"):
            if not self._running:
                self._begin_handlers(RunStatus.ABORTED)

    def _on_deadline(self) -> None:
        if self._finished or self._phase == "handlers":
            return
        self._explicit_error = f"run timed out after {self._dag.timeout_sec}s"
        logger.info("run %s: %s", self._s.run_id, self._explicit_error)
        self._cancelled = True
        self._abort_pending("aborted")
        for name in self._plan.order:
            if name not in self._outcomes and name not in self._running:
                self._settle(name, NodeStatus.ABORTED, error=self._explicit_error)
        self._stop_running()
        self._schedule()

    def _abort_pending(self, error: str) -> None:
        for name, timer in list(self._restarting.items()):
            timer.cancel()
            del self._restarting[name]
            self._settle(name, NodeStatus.ABORTED, error=error)
        for name in self._awaiting_slot:
            self._settle(name, NodeStatus.ABORTED, error=error)
        self._awaiting_slot.clear()

    def _stop_running(self) -> None:
        for name, (_, ref) in self._running.items():
            step = self._step_or_handler(name)
            ref.tell(StopStep(step.signal_on_stop or "SIGTERM", float(self._dag.max_clean_up_time_sec)))

    # -- handlers ----------------------------------------------------------------

    def _begin_handlers(self, status: RunStatus) -> None:
        if self._phase == "handlers":
            return
        self._phase = "handlers"
        self._set_run(status=status, error=self._explicit_error or self._record.error or "")
        hooks = []
        hook = _ABORT_HOOK.get(status)
        if hook and getattr(self._dag.handler_on, hook) is not None:
            hooks.append(hook)
        if self._dag.handler_on.exit is not None:
            hooks.append("exit")
        self._handler_queue = hooks
        self._next_handler()

    def _next_handler(self) -> None:
        if not self._handler_queue:
            self._complete()
            return
        self._launch_handler(self._handler_queue.pop(0), self._record.status)

    def _launch_handler(self, hook: str, status: RunStatus) -> None:
        step: Step = getattr(self._dag.handler_on, hook)
        key = HANDLER_NODE_NAMES[hook]
        node = NodeRecord(step=_step_json(step, key))
        now = utc_now()
        node.stdout, node.stderr = self._s.step_log_paths(key, now)
        node.started_at = now
        node.status = NodeStatus.RUNNING
        self._set_handler_node(key, node)
        env = dict(self._s.env)
        for n in self._nodes.values():
            for var, text in n.output_variables.items():
                env[var] = text.partition("=")[2]
        env["DAG_RUN_STATUS"] = status.label
        env["DAG_RUN_STEP_NAME"] = key
        self._start_child(key, step, 1, env, check_preconditions=True)

    def _on_handler_finished(self, msg: StepFinished) -> None:
        key = msg.node
        node = self._handler_nodes()[key]
        status = NodeStatus(msg.status)
        node.status, node.finished_at, node.error, node.exit_code = status, utc_now(), msg.error or "", msg.exit_code
        node.done_count = 1
        self._write_handler(key, node)
        if self._phase == "init":
            if status == NodeStatus.FAILED or self._cancelled:
                self._record.error = f"init handler failed: {msg.error}" if status == NodeStatus.FAILED else self._record.error
                self._cancelled = True
                self._begin_handlers(RunStatus.ABORTED)
            else:
                self._start_main()
            return
        if status == NodeStatus.FAILED:
            self._explicit_error = f"handler {key} failed: {msg.error}"
            self._set_run(status=RunStatus.FAILED, error=self._explicit_error)
        self._next_handler()

    def _complete(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._phase = "done"
        rec = self._record
        rec.finished_at = utc_now()
        if rec.status == RunStatus.RUNNING:
            rec.status = self._compute_status()
        self._before_close(rec)
        self._s.writer.close(rec)
        self._announce_run()
        if self._s.on_done is not None:
            self._s.on_done(rec)
        self.stop()

    def _before_close(self, rec: RunRecord) -> None:
        """Let the launcher write what must exist once the run reads as finished (its outputs)."""
        if self._s.before_close is None:
            return
        try:
            self._s.before_close(rec)
        except Exception:  # never keep a run from recording its end
            logger.exception("run %s: finishing work before the final status failed", self._s.run_id)

    # -- state changes (durable first, then announced) ------------------------------

    def _settle(self, name: str, status: NodeStatus, *, error: str, exit_code: int | None = None, continuable: bool = False) -> None:
        node = self._nodes[name]
        node.status = status
        node.error = error
        node.finished_at = utc_now() if node.started_at is not None else None
        if exit_code is not None:
            node.exit_code = exit_code
        self._outcomes[name] = NodeOutcome(status, continuable)
        fields: dict[str, Any] = {"status": status, "error": error, "finished_at": node.finished_at, "done_count": node.done_count}
        if exit_code is not None:
            fields["exit_code"] = exit_code
        self._write_node(name, durable=True, **fields)

    def _write_node(self, name: str, *, durable: bool | None = None, **fields: Any) -> None:
        self._s.writer.update_node(self._record, self._index[name], durable=durable, **fields)
        if "status" in fields:
            self._announce_step(name, fields["status"])

    def _set_run(self, **fields: Any) -> None:
        self._s.writer.update_run(self._record, durable=True, **fields)
        self._announce_run()

    def _handler_nodes(self) -> dict[str, NodeRecord]:
        return {k: getattr(self._record, attr) for k, attr in HANDLER_KEYS.items() if getattr(self._record, attr) is not None}

    def _set_handler_node(self, key: str, node: NodeRecord) -> None:
        setattr(self._record, HANDLER_KEYS[key], node)
        self._s.writer.update_node(
            self._record, key, step=node.step, stdout=node.stdout, stderr=node.stderr, started_at=node.started_at, status=node.status
        )
        self._announce_step(key, node.status)

    def _write_handler(self, key: str, node: NodeRecord) -> None:
        self._s.writer.update_node(
            self._record, key, status=node.status, finished_at=node.finished_at, error=node.error,
            exit_code=node.exit_code, done_count=node.done_count,
        )
        self._announce_step(key, node.status)

    def _set_output(self, name: str, step: Step, value: str) -> None:
        assert step.output is not None
        var = step.output.name
        self._write_node(name, output_variables={var: f"{var}={value}"})

    def _announce_step(self, name: str, status: NodeStatus) -> None:
        if self._s.observer is not None:
            self._s.observer.tell(StepChanged(self._s.run_id, name, int(status)))

    def _announce_run(self) -> None:
        if self._s.observer is not None:
            self._s.observer.tell(RunChanged(self._s.run_id, int(self._record.status)))

    # -- helpers -------------------------------------------------------------------

    def _compute_status(self) -> RunStatus:
        statuses = {n: self._nodes[n].status for n in self._plan.steps}
        continuable = {n: o.continuable for n, o in self._outcomes.items()}
        return final_run_status(statuses, continuable, failed_explicitly=self._explicit_error is not None, cancelled=self._cancelled)

    def _is_continuable(self, step: Step, exit_code: int | None, stdout_path: str) -> bool:
        c = step.continue_on
        if c.failure:
            return True
        if exit_code is not None and exit_code in c.exit_codes:
            return True
        if c.output and stdout_path:
            try:
                with open(stdout_path, errors="replace") as f:
                    text = f.read(self._dag.max_output_size)
            except OSError:
                return False
            return matches_output(c.output, text)
        return False

    def _is_continuable_record(self, name: str, node: NodeRecord) -> bool:
        if node.status != NodeStatus.FAILED:
            return False
        return self._is_continuable(self._plan.steps[name], node.exit_code, node.stdout)

    def _env_for(self, name: str, step: Step) -> dict[str, str]:
        env = dict(self._s.env)
        for anc in self._plan.output_sources(name):
            for var, text in self._nodes[anc].output_variables.items():
                env[var] = text.partition("=")[2]
        env["DAG_RUN_STEP_NAME"] = name
        node = self._nodes[name]
        env["DAG_RUN_STEP_STDOUT_FILE"] = node.stdout
        env["DAG_RUN_STEP_STDERR_FILE"] = node.stderr
        return env

    def _working_dir(self, step: Step, env: Mapping[str, str]) -> str:
        return resolve_dir(step.working_dir, env, self._s.working_dir) if step.working_dir else self._s.working_dir

    def _step_refs(self) -> dict[str, StepRef]:
        refs = {}
        for step_id, name in self._ids:
            n = self._nodes[name]
            refs[step_id] = StepRef(stdout=n.stdout, stderr=n.stderr, exit_code=n.exit_code or 0)
        return refs

    def _step_or_handler(self, name: str) -> Step:
        if name in self._plan.steps:
            return self._plan.steps[name]
        for hook, key in HANDLER_NODE_NAMES.items():
            if key == name:
                return getattr(self._dag.handler_on, hook)
        raise KeyError(name)

    def _timer(self, delay_s: float, message: Any) -> threading.Timer:
        t = threading.Timer(max(0.0, delay_s), self._tell_safely, args=(message,))
        t.daemon = True
        t.start()
        self._timers.append(t)
        return t

    def _tell_safely(self, message: Any) -> None:
        try:
            self.actor_ref.tell(message)
        except pykka.ActorDeadError:
            pass


@dataclass(frozen=True, slots=True)
class _PreconditionsChecked:
    """DagRunActor helper thread -> DagRunActor: the DAG preconditions were evaluated."""

    met: bool
    reason: str | None


def _expand_number(value: int | float | str, env: Mapping[str, str]) -> float:
    if isinstance(value, (int, float)):
        return value
    text = expand(value, env, backticks=False).strip()
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r} (from {value!r})") from None


def _step_json(step: Step, name: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name or step.name}
    if step.id:
        out["id"] = step.id
    if step.description:
        out["description"] = step.description
    if step.commands:
        out["commands"] = list(step.commands)
        out["command"] = step.commands[0]
    if step.script is not None:
        out["script"] = step.script
    if step.depends:
        out["depends"] = list(step.depends)
    if step.output is not None:
        out["output"] = step.output.name
    if step.call:
        out["call"] = step.call
    if step.type != "command":
        out["type"] = step.type
    return out


step_json = _step_json
