"""`dagu start <dag> [-- params]`: run a workflow in the foreground and print its summary."""

from __future__ import annotations

__all__ = ["add_arguments", "run", "execute"]


def add_arguments(parser) -> None:
    from dagu.cli.runopts import add_run_flags

    add_run_flags(parser)
    parser.add_argument("-r", "--run-id", help="use this run ID (letters, digits, - and _; at most 64)")
    parser.add_argument("--queued", action="store_true", help="execute the queued run --run-id (what the queue does)")


def run(args, settings) -> int:
    from dagu.cli.runopts import load_for_run, parse_ref

    if args.queued:
        return _run_queued(args, settings)
    dag = load_for_run(args, settings)
    from actors.launch import RunRequest
    from dagu.status import TriggerType

    parent = parse_ref(args.parent)
    request = RunRequest(
        run_id=args.run_id,
        params_text=args.params_text,
        param_args=tuple(args.params),
        parent=parent,
        root=parse_ref(args.root),
        trigger=TriggerType.SUBDAG if parent else TriggerType.MANUAL,
        default_working_dir=args.default_working_dir,
    )
    return execute(dag, settings, request, quiet=args.quiet)


def _run_queued(args, settings) -> int:
    """Execute a run that `dagu enqueue` created, as a new attempt of the same run."""
    from actors.launch import RunRequest
    from dagu.cli.cmd_retry import stored_dag
    from dagu.cli.lookup import dag_name_of, find_run
    from dagu.errors import Conflict, InvalidRequest
    from dagu.status import RunStatus
    from dagu.store import RunStore

    if not args.run_id:
        raise InvalidRequest("--queued needs --run-id")
    name = dag_name_of(args.dag, settings)
    _, attempt, record = find_run(settings, name, args.run_id)
    if record.status != RunStatus.QUEUED:
        raise Conflict(f"run {args.run_id} of {name} is {record.status.label}, not queued")
    queue = RunStore(settings.data_dir, settings.log_dir).read_dag_json(attempt).get("queue")
    dag = stored_dag(settings, attempt, name)
    return execute(dag, settings, RunRequest(queued_of=record, queue=queue), quiet=args.quiet)


def execute(dag, settings, request, *, quiet: bool) -> int:
    """Run with an optional live progress view; print the summary; return the exit code."""
    import dataclasses
    import sys

    from actors.launch import run_dag
    from dagu.cli.progress import progress_observer
    from dagu.cli.render import exit_code_for, render_summary

    settings.ensure_dirs()
    with progress_observer(dag, enabled=not quiet) as observer:
        rec, _ = run_dag(dag, settings, dataclasses.replace(request, observer=observer))
    if not quiet:
        print(render_summary(rec), flush=True)
    code = exit_code_for(rec.status)
    if code and not quiet:
        first = rec.error or next((n.error for n in rec.nodes if n.error), "")
        print(f"Error: the run of {rec.name} (run ID {rec.run_id}) ended {rec.status.label}" + (f": {first}" if first else ""),
              file=sys.stderr)
    return code
