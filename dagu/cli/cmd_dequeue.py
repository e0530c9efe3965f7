"""`dagu dequeue <queue>`: take a queued run off its queue (the first one, or `--dag-run dag:id`)."""

from __future__ import annotations

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("queue", help="queue name (a DAG's own queue is named after the DAG)")
    parser.add_argument("-d", "--dag-run", metavar="DAG:RUN_ID", help="the run to remove (default: the first in the queue)")


def run(args, settings) -> int:
    import sys

    from dagu.cli.lookup import find_run
    from dagu.cli.runopts import parse_ref
    from dagu.errors import NotFound
    from dagu.status import RunStatus
    from dagu.store import rewrite_status, utc_now
    from dagu.store.queue import QueueStore

    queues = QueueStore(settings.queue_dir)
    if args.dag_run:
        ref = parse_ref(args.dag_run)
        item = queues.find(args.queue, ref.id)
        if item is None:
            raise NotFound(f"dag-run ID {ref.id} not found in queue {args.queue}")
    else:
        items = queues.items(args.queue)
        if not items:
            raise NotFound(f"queue {args.queue} is empty")
        item = items[0]
    _, attempt, record = find_run(settings, item.dag_name, item.run_id)
    # Record first, then drop the item: a queue reader that sees the item finds the run no longer queued.
    if record.status == RunStatus.QUEUED:
        record.status = RunStatus.ABORTED
        record.finished_at = utc_now()
        record.error = "dequeued"
        rewrite_status(attempt.status_path, record)
        _announce_aborted(settings, record)
    queues.remove(item)
    if not args.quiet:
        print(f"dequeued {item.dag_name} run {item.run_id}", file=sys.stderr)
    return 0


def _announce_aborted(settings, record) -> None:
    from dagu.events import events_dir, publish_once, run_event

    publish_once(events_dir(settings.data_dir), run_event(record.name, record.run_id, record.status))
