"""`dagu worker`: take runs from the coordinator and execute them here, reporting back status and logs."""

from __future__ import annotations

__all__ = ["add_arguments", "run"]

EPILOG = """\
The worker needs no disk shared with the coordinator: each task carries the DAG's
YAML and params; the run is recorded under this worker's DAGU_HOME and its status
and logs are streamed to the coordinator, which keeps the run history.
A DAG runs here only if every key of its `worker_selector` equals one of these labels.
Config keys: worker.{id,max_active_runs,labels,heartbeat_interval}, coordinator.{host,port},
peer.{cert_file,key_file,client_ca_file}. Example:
  dagu worker --coordinator 10.0.0.5:50055 --labels gpu=true,zone=eu -m 8
"""


def add_arguments(parser) -> None:
    import argparse

    from dagu.cli.cmd_coord import add_peer_flags

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--coordinator", metavar="HOST:PORT",
                        help="coordinator address (default: coordinator.host:coordinator.port, 127.0.0.1:50055)")
    parser.add_argument("-l", "--labels", metavar="K=V,...", help="this worker's labels (DAGU_WORKER_LABELS)")
    parser.add_argument("-m", "--max-active-runs", type=int, metavar="N",
                        help="runs executed at once (default 4; DAGU_WORKER_MAX_ACTIVE_RUNS)")
    parser.add_argument("--worker-id", help="ID shown by the coordinator (default <hostname>@<pid>; DAGU_WORKER_ID)")
    parser.add_argument("--heartbeat-interval", type=float, metavar="SECONDS", help="seconds between heartbeats (default 1)")
    parser.add_argument("--health-port", type=int, metavar="PORT", help="serve grpc.health.v1 on 127.0.0.1:PORT")
    add_peer_flags(parser)


def run(args, settings) -> int:
    import logging
    import sys

    from dagu.cli.cmd_coord import _block_stop_signals, _set_title, peer_flags, wait_for_stop_signal
    from dagu.config import ConfigError
    from transports.grpc.options import parse_labels, worker_options

    try:
        labels = parse_labels(args.labels) if args.labels is not None else None
    except ValueError as exc:
        raise ConfigError(f"--labels: {exc}") from exc
    opts = worker_options(settings, coordinator=args.coordinator, labels=labels, max_active_runs=args.max_active_runs,
                          worker_id=args.worker_id, heartbeat_interval_s=args.heartbeat_interval,
                          health_port=args.health_port, peer=peer_flags(args))
    _set_title(f"dagu: worker {opts.worker_id}")
    blocked = _block_stop_signals()
    from transports.grpc.worker import Worker

    worker = Worker(settings, opts).start()
    health = None
    if opts.health_port is not None:
        from transports.grpc.health import serve_health

        health, _, port = serve_health(f"127.0.0.1:{opts.health_port}")
        logging.getLogger("dagu.worker").info("worker health on 127.0.0.1:%d", port)
    print(f"worker {opts.worker_id} polling {opts.coordinator}", file=sys.stderr, flush=True)
    try:
        wait_for_stop_signal(blocked)
    finally:
        worker.stop()
        if health is not None:
            health.stop(1.0)
    return 0
