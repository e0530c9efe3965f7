"""`dagu enqueue <dag> [-- params]`: create a queued run; a scheduler (or start-all) starts it."""

from __future__ import annotations

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    from dagu.cli.runopts import add_run_flags

    add_run_flags(parser)
    parser.add_argument("-r", "--run-id", help="use this run ID (letters, digits, - and _; at most 64)")
    parser.add_argument("-u", "--queue", help="put the run on this queue instead of the DAG's own")
    parser.add_argument("--priority", choices=("low", "high"), default="low", help="high runs go before every low one")
    parser.add_argument("--trigger", choices=("manual", "scheduler", "catchup", "webhook"), default="manual", help="recorded trigger type")


def run(args, settings) -> int:
    import sys

    from actors.launch import RunRequest, enqueue_run
    from dagu.cli.runopts import load_for_run
    from dagu.status import TriggerType

    dag = load_for_run(args, settings)
    settings.ensure_dirs()
    request = RunRequest(
        run_id=args.run_id,
        params_text=args.params_text,
        param_args=tuple(args.params),
        queue=args.queue,
        trigger=TriggerType.from_label(args.trigger),
        default_working_dir=args.default_working_dir,
    )
    record = enqueue_run(dag, settings, request, priority=args.priority)
    if not args.quiet:
        print(f"queued {record.name} run {record.run_id}", file=sys.stderr)
    return 0
