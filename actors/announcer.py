"""AnnouncerActor: the run's observer that puts its step and run changes on the event bus.

It sits between a DagRunActor and whatever else observes the run (the CLI progress
view): every StepChanged / RunChanged is published as a small event (`dagu.events`)
and then passed on unchanged. Publishing happens on this actor's thread, so a slow
subscriber can delay announcements but never the run itself.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pykka

from actors.messages import RunChanged, StepChanged
from dagu.events import EventPublisher, run_event, step_event
from dagu.status import NodeStatus, RunStatus

__all__ = ["AnnouncerActor"]

logger = logging.getLogger(__name__)
run_logger = logging.getLogger("dagu.run")  # lines of the run's own log file (actors.launch attaches it)


class AnnouncerActor(pykka.ThreadingActor):
    """Publishes one run's changes; forwards each message to `forward` when given.

    Args:
        dag_name, run_id: the run.
        root: (DAG name, run ID) of the root run; differs from the run for sub-DAG runs.
        directory: the events folder (`dagu.events.events_dir(settings.data_dir)`).
        forward: another observer that gets every message after it is published.
    """

    # A subscriber that stopped reading must not keep a finished run's process alive.
    use_daemon_thread = True

    def __init__(self, dag_name: str, run_id: str, root: tuple[str, str] | None, directory: str | os.PathLike[str],
                 forward: pykka.ActorRef[Any] | None = None) -> None:
        super().__init__()
        self._dag_name = dag_name
        self._run_id = run_id
        self._root = root
        self._publisher = EventPublisher(directory)
        self._forward = forward
        # A repeated status says nothing new to a client: a step is marked running at
        # launch and again when its process starts. A run's final status is set before
        # its handlers and again at the end; the second one is news only when handler
        # steps ran in between.
        self._step_status: dict[str, int] = {}
        self._run_status: int | None = None  # forgotten when a step changes

    def on_stop(self) -> None:
        self._publisher.close()

    def on_failure(self, *exc_info: Any) -> None:
        self._publisher.close()

    def on_receive(self, message: Any) -> Any:
        match message:
            case StepChanged():
                if self._is_news(message.node, message.status):
                    run_logger.info("step %s: %s", message.node, NodeStatus(message.status).label)
                    self._publisher.publish(step_event(self._dag_name, self._run_id, message.node, NodeStatus(message.status), root=self._root))
            case RunChanged():
                if self._is_news(None, message.status):
                    self._publisher.publish(run_event(self._dag_name, self._run_id, RunStatus(message.status), root=self._root))
            case _:
                return super().on_receive(message)
        if self._forward is not None:
            try:
                self._forward.tell(message)
            except pykka.ActorDeadError:
                self._forward = None

    def _is_news(self, step: str | None, status: int) -> bool:
        if step is None:
            news, self._run_status = self._run_status != status, status
        else:
            news = self._step_status.get(step) != status
            self._step_status[step] = status
            if news:
                self._run_status = None
        return news
