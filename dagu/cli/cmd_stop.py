"""`dagu stop <dag>`: stop the running run (or `--run-id`); its steps get their stop signal."""

from __future__ import annotations

__all__ = ["add_arguments", "run", "stop_run"]


def add_arguments(parser) -> None:
    parser.add_argument("dag", help="DAG name, or its workflow file")
    parser.add_argument("-r", "--run-id", help="stop this run (default: the latest running one)")
    parser.add_argument("--no-wait", action="store_true", help="return at once instead of waiting for the run to end")


def run(args, settings) -> int:
    import sys

    from dagu.cli.lookup import dag_name_of, find_run
    from dagu.errors import NotFound
    from dagu.status import RunStatus

    name = dag_name_of(args.dag, settings)
    try:
        _, attempt, record = find_run(settings, name, args.run_id)
    except NotFound:
        print(f"no running run of {name} found", file=sys.stderr)
        return 0
    if record.status != RunStatus.RUNNING:
        print(f"no running run of {name} found (latest run {record.run_id} is {record.status.label})", file=sys.stderr)
        return 0
    final = stop_run(settings, attempt, record, wait=not args.no_wait)
    if not args.quiet:
        print(f"{name} run {record.run_id}: {'stop requested' if final is None else final.status.label}", file=sys.stderr)
    return 0


def stop_run(settings, attempt, record, *, wait: bool, timeout_s: float = 60.0):
    """Ask the run process to stop (flag file + SIGTERM); optionally wait for its final status."""
    import os
    import signal
    import time

    from dagu.store import RunStore, read_status

    RunStore(settings.data_dir, settings.log_dir).request_cancel(attempt)
    if record.pid:
        try:
            os.kill(record.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    if not wait:
        return None
    from dagu.cli.lookup import mark_if_zombie

    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while time.monotonic() < deadline:
        rec = mark_if_zombie(settings, attempt, read_status(attempt.status_path))
        if not rec.status.is_active:
            return rec
        # NOTE: another process's file has no change notification we can rely on; short backoff polling.
        time.sleep(delay)
        delay = min(delay * 2, 0.25)
    return read_status(attempt.status_path)
