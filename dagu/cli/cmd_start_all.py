"""`dagu start-all`: the server and the scheduler as supervised processes, until SIGTERM/SIGINT."""

from __future__ import annotations

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("-s", "--host", help="address the server binds (default 127.0.0.1)")
    parser.add_argument("-p", "--port", type=int, help="server port (default 8080)")
    parser.add_argument("-d", "--dags", metavar="DIR", help="DAGs folder (default: <home>/dags)")
    parser.add_argument("--coordinator", action="store_true", default=None,
                        help="also run the gRPC coordinator for remote workers (or coordinator.enabled: true)")


def run(args, settings) -> int:
    import logging

    from actors.processes import ProcessSpec, ProcessSupervisor
    from dagu.cli.service import flag_overrides

    home = str(settings.home) if settings.home is not None else None
    config = str(settings.config_file) if settings.config_file.exists() else None
    child_args = (home, config, flag_overrides(args))
    settings.ensure_dirs()
    specs = [
        ProcessSpec("server", "dagu.cli.service:server_process", child_args, title="dagu: server"),
        ProcessSpec("scheduler", "dagu.cli.service:scheduler_process", child_args, title="dagu: scheduler"),
    ]
    from transports.grpc.options import coordinator_configured

    if args.coordinator or coordinator_configured(settings):
        import os

        os.environ["DAGU_COORDINATOR_ENABLED"] = "1"  # the scheduler child routes through it
        specs.insert(0, ProcessSpec("coordinator", "dagu.cli.cmd_coord:coordinator_process", child_args,
                                    title="dagu: coordinator"))
    try:
        import setproctitle

        setproctitle.setproctitle("dagu: start-all")
    except ImportError:
        pass
    port = args.port or settings.port
    logging.getLogger(__name__).info(
        "start-all: server on http://%s:%d, scheduler on %s", args.host or settings.host, port, args.dags or settings.dags_dir
    )
    return ProcessSupervisor(specs, name="start-all").run()
