"""A step's `retry_policy` read as a restart policy: intensity, backoff, restartable failures.

Owns the one mapping from `dagu.spec.model.RetryPolicy` to restart terms. It does
not resolve variables in the policy (the caller passes `limit` and `interval_s`
already resolved), and it does not schedule anything: the DagRunActor keeps a
RestartBook per step and a timer per pending retry.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from actors.supervisor import Clock, Intensity, RestartBook
from dagu.spec.model import RetryPolicy

__all__ = ["NO_RETRY", "StepRestartPolicy", "step_restart_policy"]


@dataclass(frozen=True, slots=True)
class StepRestartPolicy:
    """When and how soon a failed step attempt is started again."""

    intensity: Intensity  # max_restarts = limit, within an unbounded window
    exit_codes: frozenset[int] = frozenset()  # empty: any failure is restartable

    def should_restart(self, exit_code: int | None, *, timed_out: bool = False, cancelled: bool = False) -> bool:
        """Whether a failed attempt with this exit code may be retried (the limit aside).

        Args:
            exit_code: the attempt's exit code; None when it has none (failed to
                start, an HTTP error, ...). A 0 is not a failure.
            timed_out: the step hit its timeout; never retried.
            cancelled: the run is being cancelled; never retried.
        """
        if timed_out or cancelled or exit_code == 0 or self.intensity.max_restarts == 0:
            return False
        if not self.exit_codes:
            return True
        return exit_code in self.exit_codes

    def delay_s(self, restart: int) -> float:
        """The wait before retry number `restart` (0 for the first retry)."""
        return self.intensity.delay_s(restart)

    def new_book(self, clock: Clock = time.monotonic) -> RestartBook:
        """A fresh restart count for one step of one run."""
        return RestartBook(self.intensity, clock)


NO_RETRY = StepRestartPolicy(Intensity(max_restarts=0, within_s=math.inf, backoff_s=(0.0, 0.0), multiplier=1.0))
"""The policy of a step without `retry_policy`: a failure is final."""


def step_restart_policy(policy: RetryPolicy | None, *, limit: int, interval_s: float) -> StepRestartPolicy:
    """Map a step's `retry_policy` to its restart policy.

    `limit` retries are allowed in total (the window never slides); retry k
    (0-based) waits `interval_s * backoff**k`, capped by `max_interval_sec` when
    that is set and positive; `exit_codes` restricts which exit codes are retried.

    Args:
        policy: the step's policy, or None for a step without one (then `limit`
            and `interval_s` are ignored).
        limit: `policy.limit`, resolved to a whole number >= 0.
        interval_s: `policy.interval_sec`, resolved to seconds >= 0.

    Raises:
        ValueError: `limit`, `interval_s` or `backoff` out of range.
    """
    if policy is None:
        return NO_RETRY
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"retry_policy.limit: expected a whole number >= 0, got {limit!r}")
    if interval_s < 0:
        raise ValueError(f"retry_policy.interval_sec: expected seconds >= 0, got {interval_s!r}")
    # Like Dagu, a max_interval_sec of 0 means "no cap", not "no wait".
    cap = policy.max_interval_sec if policy.max_interval_sec and policy.max_interval_sec > 0 else math.inf
    intensity = Intensity(
        max_restarts=limit,
        within_s=math.inf,
        backoff_s=(float(interval_s), float(cap)),
        multiplier=float(policy.backoff),
    )
    return StepRestartPolicy(intensity, frozenset(policy.exit_codes))
