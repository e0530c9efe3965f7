"""Run and step status codes with Dagu's names and numbers; shared by the store, actors, CLI and API."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["RunStatus", "NodeStatus", "TriggerType"]


class _Labelled(IntEnum):
    @property
    def label(self) -> str:
        """snake_case name as Dagu writes it (`partially_succeeded`)."""
        return self.name.lower()

    @property
    def human(self) -> str:
        """Title form for people (`Partially Succeeded`)."""
        return self.name.replace("_", " ").title()

    @classmethod
    def from_label(cls, text: str):
        return cls[text.strip().upper().replace(" ", "_")]


class RunStatus(_Labelled):
    NOT_STARTED = 0
    RUNNING = 1
    FAILED = 2
    ABORTED = 3
    SUCCEEDED = 4
    QUEUED = 5
    PARTIALLY_SUCCEEDED = 6
    WAITING = 7
    REJECTED = 8

    @property
    def is_active(self) -> bool:
        return self in (RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.WAITING)


class NodeStatus(_Labelled):
    NOT_STARTED = 0
    RUNNING = 1
    FAILED = 2
    ABORTED = 3
    SUCCEEDED = 4
    SKIPPED = 5
    PARTIALLY_SUCCEEDED = 6
    WAITING = 7
    REJECTED = 8
    RETRYING = 9

    @property
    def is_done(self) -> bool:
        return self not in (NodeStatus.NOT_STARTED, NodeStatus.RUNNING, NodeStatus.WAITING, NodeStatus.RETRYING)


class TriggerType(_Labelled):
    UNKNOWN = 0
    SCHEDULER = 1
    MANUAL = 2
    WEBHOOK = 3
    SUBDAG = 4
    RETRY = 5
    CATCHUP = 6
