"""A step's retry_policy as a restart policy: one test per field, and no policy at all."""

from __future__ import annotations

import math

import pytest

from actors.retry import step_restart_policy
from dagu.spec.model import RetryPolicy


def test_limit_is_the_number_of_restarts_allowed_and_the_window_never_slides():
    policy = step_restart_policy(RetryPolicy(limit=2, interval_sec=0), limit=2, interval_s=0.0)
    assert policy.intensity.max_restarts == 2
    assert policy.intensity.within_s == math.inf
    clock = [0.0]
    book = policy.new_book(clock=lambda: clock[0])
    assert book.record_restart() == 0.0
    clock[0] += 1e6
    assert book.record_restart() == 0.0
    clock[0] += 1e6
    assert book.record_restart() is None  # a third retry exceeds the limit, however late


def test_limit_zero_never_restarts():
    policy = step_restart_policy(RetryPolicy(limit=0, interval_sec=1), limit=0, interval_s=1.0)
    assert not policy.should_restart(1)
    assert policy.new_book().record_restart() is None


def test_interval_is_the_delay_of_every_retry_without_backoff():
    policy = step_restart_policy(RetryPolicy(limit=3, interval_sec=2), limit=3, interval_s=2.0)
    assert [policy.delay_s(k) for k in range(3)] == [2.0, 2.0, 2.0]


def test_backoff_multiplies_the_interval_per_retry():
    policy = step_restart_policy(RetryPolicy(limit=4, interval_sec=1, backoff=2.0), limit=4, interval_s=1.0)
    assert [policy.delay_s(k) for k in range(4)] == [1.0, 2.0, 4.0, 8.0]
    book = policy.new_book(clock=lambda: 0.0)
    assert [book.record_restart() for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]


def test_max_interval_caps_the_backed_off_delay():
    retry = RetryPolicy(limit=5, interval_sec=1, backoff=3.0, max_interval_sec=5.0)
    policy = step_restart_policy(retry, limit=5, interval_s=1.0)
    assert [policy.delay_s(k) for k in range(4)] == [1.0, 3.0, 5.0, 5.0]


def test_max_interval_of_zero_means_no_cap():
    retry = RetryPolicy(limit=5, interval_sec=1, backoff=3.0, max_interval_sec=0)
    assert step_restart_policy(retry, limit=5, interval_s=1.0).delay_s(3) == 27.0


def test_exit_codes_restrict_which_failures_are_restarted():
    retry = RetryPolicy(limit=1, interval_sec=0, exit_codes=(3, 75))
    policy = step_restart_policy(retry, limit=1, interval_s=0.0)
    assert policy.should_restart(75)
    assert not policy.should_restart(1)
    assert not policy.should_restart(None)  # a failure without an exit code matches no listed code


def test_empty_exit_codes_restart_any_failure_but_not_success():
    policy = step_restart_policy(RetryPolicy(limit=1, interval_sec=0), limit=1, interval_s=0.0)
    assert policy.should_restart(1)
    assert policy.should_restart(137)
    assert policy.should_restart(None)
    assert not policy.should_restart(0)


def test_timeouts_and_cancellation_are_never_restarted():
    policy = step_restart_policy(RetryPolicy(limit=3, interval_sec=0), limit=3, interval_s=0.0)
    assert not policy.should_restart(1, timed_out=True)
    assert not policy.should_restart(1, cancelled=True)


def test_no_policy_means_no_restart():
    policy = step_restart_policy(None, limit=5, interval_s=1.0)  # limit and interval are ignored
    assert policy.intensity.max_restarts == 0
    assert not policy.should_restart(1)
    assert policy.new_book().record_restart() is None


def test_resolved_limit_and_interval_win_over_the_unresolved_strings():
    retry = RetryPolicy(limit="${RETRIES}", interval_sec="${WAIT}")
    policy = step_restart_policy(retry, limit=2, interval_s=0.5)
    assert policy.intensity.max_restarts == 2
    assert policy.delay_s(0) == 0.5


@pytest.mark.parametrize(("limit", "interval_s"), [(-1, 1.0), (1, -0.5)])
def test_negative_limit_or_interval_is_refused(limit, interval_s):
    with pytest.raises(ValueError, match="retry_policy"):
        step_restart_policy(RetryPolicy(limit=1, interval_sec=1), limit=limit, interval_s=interval_s)
