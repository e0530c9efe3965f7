"""A live progress view on a terminal: one line per step change, on stderr."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["progress_observer"]

_MARKS = {1: "▶", 2: "✗", 3: "■", 4: "✓", 5: "○", 6: "◐"}


@contextlib.contextmanager
def progress_observer(dag, *, enabled: bool) -> Iterator[object | None]:
    """Yield an observer ActorRef when stderr is a terminal (and progress is wanted), else None."""
    if not enabled or os.environ.get("DISABLE_PROGRESS") or not sys.stderr.isatty():
        yield None
        return
    import pykka

    from actors.messages import RunChanged, StepChanged
    from dagu.status import NodeStatus, RunStatus

    total = len(dag.steps)

    class ProgressActor(pykka.ThreadingActor):
        def __init__(self) -> None:
            super().__init__()
            self.done: set[str] = set()

        def on_receive(self, message):
            match message:
                case StepChanged(node=node, status=status):
                    st = NodeStatus(status)
                    if st.is_done:
                        self.done.add(node)
                    mark = _MARKS.get(status, "·")
                    count = f"[{len(self.done)}/{total}]" if node in {s.name for s in dag.steps} else "[handler]"
                    sys.stderr.write(f"{count} {mark} {node}: {st.label}\n")
                case RunChanged(status=status):
                    if RunStatus(status) == RunStatus.RUNNING and not self.done:
                        sys.stderr.write(f"running {dag.name} ({total} steps)\n")
                case _:
                    return super().on_receive(message)

    ref = ProgressActor.start()
    try:
        yield ref
    finally:
        ref.stop()
