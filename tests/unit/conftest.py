"""Guards for every unit test: no actor outlives its test, and no actor gets a message it does not match."""

from __future__ import annotations

import logging
import time

import pykka
import pytest

ACTOR_EXIT_GRACE_S = 2.0  # actors stopped without blocking get this long to unregister


class _UnmatchedMessages(logging.Handler):
    """Collects pykka's "Unexpected message received by ..." warnings (from a bare super().on_receive)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Unexpected message received by"):
            self.messages.append(message)


@pytest.fixture(autouse=True)
def actors_are_clean():
    """Fail a test that leaves an actor running or sends an actor a message it does not handle."""
    handler = _UnmatchedMessages()
    pykka_logger = logging.getLogger("pykka")
    pykka_logger.addHandler(handler)
    try:
        yield
    finally:
        pykka_logger.removeHandler(handler)
    leftover = _wait_no_actors(ACTOR_EXIT_GRACE_S)
    if leftover:
        pykka.ActorRegistry.stop_all(block=True, timeout=ACTOR_EXIT_GRACE_S)
        pytest.fail(f"actors still running {ACTOR_EXIT_GRACE_S:g}s after the test: {leftover}")
    if handler.messages:
        pytest.fail("unmatched messages: " + "; ".join(handler.messages))


def _wait_no_actors(timeout_s: float) -> list[str]:
    # The registry has no event to wait on; a short poll with a deadline is the next best.
    deadline = time.monotonic() + timeout_s
    while (refs := pykka.ActorRegistry.get_all()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return [str(ref) for ref in refs]
