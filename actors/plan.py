"""The rules of a run as pure functions: which step may start, what a finished step means for
its dependents, and the final status of the run (dag-spec 3.6, 3.11, 6.3).

The DagRunActor owns the state and asks these functions; nothing here runs anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from dagu.spec.model import Dag, Step
from dagu.status import NodeStatus, RunStatus

__all__ = ["Plan", "Readiness", "NodeOutcome", "final_run_status", "topological_order"]

_OK = (NodeStatus.SUCCEEDED, NodeStatus.PARTIALLY_SUCCEEDED)


class Readiness(Enum):
    WAIT = "wait"
    READY = "ready"
    SKIP = "skip"  # an upstream step was skipped and did not allow continuing
    ABORT = "abort"  # an upstream step failed or was aborted


@dataclass(frozen=True, slots=True)
class NodeOutcome:
    """What the plan needs to know about a finished step."""

    status: NodeStatus
    continuable: bool = False  # a failure that `continue_on` lets dependents pass


class Plan:
    """The graph of one DAG: dependencies, dependents, ancestors and a stable topological order."""

    def __init__(self, dag: Dag):
        self.dag = dag
        self.steps: dict[str, Step] = {s.name: s for s in dag.steps}
        self.dependents: dict[str, list[str]] = {name: [] for name in self.steps}
        for s in dag.steps:
            for d in s.depends:
                self.dependents[d].append(s.name)
        self.order: list[str] = topological_order(dag)
        self._output_sources: dict[str, frozenset[str]] = {}

    def output_sources(self, name: str) -> frozenset[str]:
        """Ancestors of `name` (direct or transitive) that declare `output:`.

        Only these matter for a step's environment; keeping just them keeps a long
        chain linear instead of storing every step's whole ancestry. Computed once,
        in topological order (no recursion, so any depth works).
        """
        if not self._output_sources:
            for n in self.order:
                acc: set[str] = set()
                for d in self.steps[n].depends:
                    if self.steps[d].output is not None:
                        acc.add(d)
                    acc |= self._output_sources[d]
                self._output_sources[n] = frozenset(acc)
        return self._output_sources[name]

    def descendants(self, name: str) -> set[str]:
        out: set[str] = set()
        stack = list(self.dependents[name])
        while stack:
            n = stack.pop()
            if n not in out:
                out.add(n)
                stack.extend(self.dependents[n])
        return out

    def readiness(self, name: str, outcomes: Mapping[str, NodeOutcome]) -> Readiness:
        """May step `name` start, given the outcomes of finished steps so far?"""
        verdict = Readiness.READY
        for dep in self.steps[name].depends:
            outcome = outcomes.get(dep)
            if outcome is None:
                return Readiness.WAIT
            dep_step = self.steps[dep]
            if outcome.status in _OK:
                continue
            if outcome.status == NodeStatus.FAILED:
                if outcome.continuable:
                    continue
                verdict = Readiness.ABORT
            elif outcome.status == NodeStatus.SKIPPED:
                if dep_step.continue_on.skipped:
                    continue
                if verdict is Readiness.READY:
                    verdict = Readiness.SKIP
            else:  # aborted, rejected
                verdict = Readiness.ABORT
        return verdict


def topological_order(dag: Dag) -> list[str]:
    """Step names so every step comes after its dependencies; ties keep definition order."""
    index = {s.name: i for i, s in enumerate(dag.steps)}
    pending = {s.name: len(s.depends) for s in dag.steps}
    dependents: dict[str, list[str]] = {s.name: [] for s in dag.steps}
    for s in dag.steps:
        for d in s.depends:
            dependents[d].append(s.name)
    import heapq

    heap = [(index[n], n) for n, c in pending.items() if c == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        _, n = heapq.heappop(heap)
        order.append(n)
        for m in dependents[n]:
            pending[m] -= 1
            if pending[m] == 0:
                heapq.heappush(heap, (index[m], m))
    return order


def final_run_status(
    statuses: Mapping[str, NodeStatus],
    continuable: Mapping[str, bool],
    *,
    failed_explicitly: bool = False,
    cancelled: bool = False,
) -> RunStatus:
    """The run's status from its steps' statuses (dag-spec 6.3)."""
    values = list(statuses.values())
    if failed_explicitly:
        return RunStatus.FAILED
    if cancelled and not all(v in (NodeStatus.SUCCEEDED, NodeStatus.SKIPPED) for v in values):
        return RunStatus.ABORTED
    if any(v == NodeStatus.RUNNING for v in values):
        return RunStatus.RUNNING
    if any(v == NodeStatus.WAITING for v in values):
        return RunStatus.WAITING
    if any(v == NodeStatus.REJECTED for v in values):
        return RunStatus.REJECTED
    failed = [n for n, v in statuses.items() if v == NodeStatus.FAILED]
    aborted = [n for n, v in statuses.items() if v == NodeStatus.ABORTED]
    partial = any(v == NodeStatus.PARTIALLY_SUCCEEDED for v in values)
    has_success = any(v == NodeStatus.SUCCEEDED for v in values)
    if failed and not aborted and has_success and all(continuable.get(n, False) for n in failed):
        return RunStatus.PARTIALLY_SUCCEEDED
    if failed or aborted:
        return RunStatus.FAILED
    if partial:
        return RunStatus.PARTIALLY_SUCCEEDED
    return RunStatus.SUCCEEDED
