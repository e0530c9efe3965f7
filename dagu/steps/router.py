"""The `router` step type at run time: report the value and which routes it matches.

The routing itself is decided at load time (`dagu.spec.routes`): each target carries a
precondition on the router's value, so targets of patterns that do not match end
skipped. This step prints one JSON line, `{"value", "matched", "targets"}`, so the run's
log shows the decision; it fails only when a pattern is an invalid regex.
"""

from __future__ import annotations

import json

from dagu.steps.base import AttemptResult
from dagu.steps.service import StepExecutor, StepLogs

__all__ = ["RouterExecutor"]


class RouterExecutor(StepExecutor):
    """One attempt of a router step (quick; nothing to stop)."""

    def work(self, io: StepLogs) -> AttemptResult:
        from dagu.resolve import ResolveError, matches_expected

        value = str(self.attempt.config.get("value", ""))
        routes = self.attempt.config.get("routes") or {}
        matched, targets = [], []
        try:
            for pattern, names in routes.items():
                if matches_expected(value, str(pattern)):
                    matched.append(pattern)
                    targets.extend([names] if isinstance(names, str) else names)
        except ResolveError as exc:
            return io.fail(f"router: {exc}")
        io.out(json.dumps({"value": value, "matched": matched, "targets": targets}) + "\n")
        return io.result(0)
