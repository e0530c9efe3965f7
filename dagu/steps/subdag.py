"""Sub-DAG steps: `call` runs another workflow as a child run; `parallel` runs one per item.

Each child is its own `dagu start` process (so a child cannot take its parent down),
with a run ID derived from the parent run, step and params, recorded under the
parent's run folder. The step's stdout is the child's result as JSON, which is what
`output:` captures.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from dagu.resolve import expand, split_parallel_items, sub_dag_run_id
from dagu.status import RunStatus
from dagu.steps.base import Attempt, AttemptResult

__all__ = ["SubDagExecutor", "ParallelExecutor"]

_OK = (RunStatus.SUCCEEDED, RunStatus.PARTIALLY_SUCCEEDED)


class _Children:
    """Starts child runs and stops them all on request."""

    def __init__(self, attempt: Attempt, context: Mapping[str, Any]):
        self.attempt = attempt
        self.ctx = context
        self._procs: list[subprocess.Popen] = []
        self.started: list[tuple[str, str]] = []  # (run ID, params), in start order
        self._lock = threading.Lock()
        self._stopped = False

    def run_child(self, target: str, params: str, salt: str = "") -> dict[str, Any]:
        """Run one child to completion; returns its result document."""
        a, ctx = self.attempt, self.ctx
        parent, root = ctx["parent"], ctx["root"]
        node = ctx.get("step_node", a.step.name)
        seed = params + salt
        if ctx.get("done_count"):
            seed += secrets.token_hex(4)  # a repeated step gets a fresh child each time
        run_id = sub_dag_run_id(parent.id, node, seed)
        local = target in a.dag.local_dags
        args = [sys.executable, "-m", "dagu", "start", "-q", "--run-id", run_id,
                "--parent", f"{parent.name}:{parent.id}", "--root", f"{root.name}:{root.id}",
                "--default-working-dir", ctx.get("working_dir", a.cwd)]
        if local:
            args += ["--local-dag", target, ctx["dag_file"]]
        else:
            args.append(self._find_file(target))
        if params:
            args += ["-p", params]
        env = dict(os.environ)
        settings = ctx.get("settings")
        if settings is not None:
            env.update(settings.env_for_children())
        with self._lock:
            if self._stopped:
                return {"name": target, "dagRunId": run_id, "params": params, "outputs": {}, "status": RunStatus.ABORTED.label}
            with open(a.stderr_path, "ab") as err:
                proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True)
            self._procs.append(proc)
            self.started.append((run_id, params))
        proc.wait()
        return self._result(target, run_id, params)

    def stop(self, signal_name: str, grace_s: float) -> None:
        import signal as _signal

        with self._lock:
            self._stopped = True
            procs = list(self._procs)
        for p in procs:
            if p.poll() is None:
                p.send_signal(getattr(_signal, signal_name, _signal.SIGTERM))

        def kill_later() -> None:
            for p in procs:
                try:
                    p.wait(timeout=grace_s + 2)
                except subprocess.TimeoutExpired:
                    p.kill()

        threading.Thread(target=kill_later, daemon=True).start()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def _find_file(self, target: str) -> str:
        """A sub-DAG file: next to the parent's file, in the step's folder, then in the DAGs folder."""
        from dagu.errors import NotFound

        p = Path(os.path.expanduser(target))
        bases = [p] if p.is_absolute() else [Path(self.ctx.get("dag_file") or ".").parent / p, Path(self.attempt.cwd) / p]
        settings = self.ctx.get("settings")
        if settings is not None and not p.is_absolute():
            bases.append(settings.dags_dir / target)
        suffixes = ("",) if target.endswith((".yaml", ".yml")) else ("", ".yaml", ".yml")
        candidates = [b.with_name(b.name + suffix) for b in bases for suffix in suffixes]
        for c in candidates:
            if c.is_file():
                return str(c)
        raise NotFound(f"sub-DAG {target!r} not found (looked at {', '.join(str(c) for c in candidates)})")

    def _result(self, target: str, run_id: str, params: str) -> dict[str, Any]:
        from dagu.store import RunStore, read_status
        from dagu.store.locate import locate_run

        settings = self.ctx["settings"]
        store = RunStore(settings.data_dir, settings.log_dir)
        parent = self.ctx["parent"]
        status, outputs, name = RunStatus.FAILED, {}, target
        try:
            run = store.find_sub_run(locate_run(store, parent, self.ctx["root"]), run_id)
            attempt = store.latest_attempt(run)
            rec = read_status(attempt.status_path)
            status, name = rec.status, rec.name
            if attempt.outputs_path.exists():
                doc = orjson.loads(attempt.outputs_path.read_bytes())
                outputs = _outputs_by_variable(doc.get("outputs") or {}, rec)
        except Exception as exc:  # the child never wrote a record: report it as failed
            return {"name": name, "dagRunId": run_id, "params": params, "outputs": {}, "status": status.label, "error": str(exc)}
        return {"name": name, "dagRunId": run_id, "params": params, "outputs": outputs, "status": status.label}


def _outputs_by_variable(outputs: Mapping[str, Any], rec) -> dict[str, Any]:
    """outputs.json keys are camelCase; the parent reads `${X.outputs.VAR}` by variable name."""
    by_var: dict[str, Any] = {}
    for node in rec.nodes:
        for var, text in node.output_variables.items():
            by_var[var] = text.partition("=")[2]
    return by_var or dict(outputs)


class SubDagExecutor:
    """`call: <dag>`: run the child and succeed iff it succeeds."""

    def __init__(self, attempt: Attempt, context: Mapping[str, Any]):
        self._attempt = attempt
        self._children = _Children(attempt, context)

    def run(self) -> AttemptResult:
        a = self._attempt
        target = expand(a.step.call or "", a.env, backticks=True)
        params = expand(a.step.params or "", a.env, backticks=True)
        try:
            result = self._children.run_child(target, params)
        except Exception as exc:
            return AttemptResult(exit_code=1, error=str(exc))
        return _finish(a, result, RunStatus.from_label(result["status"]), self._children)

    def stop(self, signal_name: str, grace_s: float) -> None:
        self._children.stop(signal_name, grace_s)


class ParallelExecutor:
    """`parallel:` over items: one child run per item, at most `max_concurrent` at once."""

    def __init__(self, attempt: Attempt, context: Mapping[str, Any]):
        self._attempt = attempt
        self._children = _Children(attempt, context)

    def run(self) -> AttemptResult:
        a = self._attempt
        spec = a.step.parallel
        assert spec is not None
        if spec.items is not None:
            items = [expand(i, a.env) if isinstance(i, str) else i for i in spec.items]
        else:
            items = split_parallel_items(expand(spec.expression or "", a.env))
        target = expand(a.step.call or "", a.env)
        jobs, seen = [], set()
        for item in items:
            item_text = item if isinstance(item, str) else orjson.dumps(_plain(item)).decode()
            if a.step.params:
                params = expand(a.step.params, {**a.env, "ITEM": item_text})
            else:
                params = item_text if isinstance(item, str) else _map_params(item)
            if params not in seen:
                seen.add(params)
                jobs.append(params)
        if len(jobs) > 1000:
            return AttemptResult(exit_code=1, error=f"parallel: {len(jobs)} items; at most 1000 are allowed")
        with ThreadPoolExecutor(max_workers=max(1, spec.max_concurrent), thread_name_prefix="parallel") as pool:
            results = list(pool.map(lambda p: self._children.run_child(target, p, salt=p), jobs))
        statuses = [RunStatus.from_label(r["status"]) for r in results]
        succeeded = sum(s in _OK for s in statuses)
        doc = {
            "summary": {"total": len(results), "succeeded": succeeded, "failed": len(results) - succeeded},
            "results": results,
            "outputs": [r["outputs"] for r in results],
        }
        if succeeded == len(results):
            status = RunStatus.PARTIALLY_SUCCEEDED if RunStatus.PARTIALLY_SUCCEEDED in statuses else RunStatus.SUCCEEDED
        else:
            status = RunStatus.FAILED
        return _finish(a, doc, status, self._children)

    def stop(self, signal_name: str, grace_s: float) -> None:
        self._children.stop(signal_name, grace_s)


def _finish(a: Attempt, doc: Mapping[str, Any], status: RunStatus, children: _Children) -> AttemptResult:
    text = orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()
    with open(a.stdout_path, "a") as f:
        f.write(text + "\n")
    started = tuple(children.started)
    if children.stopped:
        return AttemptResult(exit_code=1, error="stopped", output=text, stopped=True, children=started)
    if status in _OK:
        node_status = 4 if status == RunStatus.SUCCEEDED else 6
        return AttemptResult(exit_code=0, output=text, status=node_status, children=started)
    return AttemptResult(exit_code=1, error=f"sub-DAG run ended {status.label}", output=text, children=started)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _map_params(item: Mapping[str, Any]) -> str:
    parts = []
    for k, v in item.items():
        v = str(v)
        parts.append(f'{k}="{v}"' if " " in v else f"{k}={v}")
    return " ".join(parts)
