"""`dagu scheduler`: fire cron schedules and drain the queues until SIGTERM/SIGINT."""

from __future__ import annotations

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("-d", "--dags", metavar="DIR", help="DAGs folder (default: <home>/dags)")


def run(args, settings) -> int:
    from pathlib import Path

    from dagu.cli.service import scheduler_service, with_overrides

    try:
        import setproctitle

        setproctitle.setproctitle("dagu: scheduler")
    except ImportError:  # only `ps` output suffers
        pass
    overrides = (("dags_dir", Path(args.dags).absolute()),) if args.dags else ()
    return scheduler_service(with_overrides(settings, overrides))
