"""`dagu coordinator` (alias `coord`): serve the gRPC coordinator that hands queued runs to workers."""

from __future__ import annotations

__all__ = ["add_arguments", "run", "add_peer_flags", "peer_flags", "coordinator_process", "wait_for_stop_signal"]

EPILOG = """\
Workers connect with `dagu worker --coordinator HOST:PORT`. The scheduler routes a
run through the coordinator when its DAG has a `worker_selector` (or with
`default_execution_mode: distributed`) and `coordinator.enabled`, `.host` or `.port`
is configured. TLS: give --peer-cert-file and --peer-key-file; add
--peer-client-ca-file to require client certificates (mutual TLS).
Config keys: coordinator.{host,port,worker_lost_after}, peer.{cert_file,key_file,client_ca_file}.
"""


def add_arguments(parser) -> None:
    import argparse

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("-H", "--host", help="address to bind (default 127.0.0.1; DAGU_COORDINATOR_HOST)")
    parser.add_argument("-P", "--port", type=int, help="port to bind, 0 for any free one (default 50055; DAGU_COORDINATOR_PORT)")
    parser.add_argument("--worker-lost-after", type=float, metavar="SECONDS",
                        help="mark a worker lost after this long without a heartbeat (default 15)")
    add_peer_flags(parser)


def add_peer_flags(parser) -> None:
    """TLS flags shared by `coordinator` and `worker` (override the `peer.*` config keys)."""
    group = parser.add_argument_group("TLS (peer.*)")
    group.add_argument("--peer-cert-file", metavar="FILE", help="this side's certificate (PEM)")
    group.add_argument("--peer-key-file", metavar="FILE", help="this side's private key (PEM)")
    group.add_argument("--peer-client-ca-file", metavar="FILE",
                       help="coordinator: CA that client certificates must chain to (mutual TLS); "
                            "worker: CA of the coordinator's certificate")
    group.add_argument("--peer-insecure", action="store_true", default=None, help="plaintext, no TLS")


def peer_flags(args) -> dict:
    flags = {"cert_file": args.peer_cert_file, "key_file": args.peer_key_file, "client_ca_file": args.peer_client_ca_file,
             "insecure": True if args.peer_insecure else None}
    if (args.peer_cert_file or args.peer_client_ca_file) and not args.peer_insecure:
        flags["insecure"] = False
    return flags


def run(args, settings) -> int:
    from transports.grpc.options import coordinator_options

    opts = coordinator_options(settings, host=args.host, port=args.port, worker_lost_after_s=args.worker_lost_after,
                               peer=peer_flags(args))
    return _serve(settings, opts)


def coordinator_process(dagu_home: str | None, config: str | None, overrides: tuple = ()) -> int:
    """start-all child: the coordinator with the configured options."""
    from dagu.cli.service import with_overrides
    from dagu.config import load_settings
    from transports.grpc.options import coordinator_options

    settings = with_overrides(load_settings(dagu_home=dagu_home, config=config), overrides)
    return _serve(settings, coordinator_options(settings))


def _serve(settings, opts) -> int:
    import logging
    import sys

    _set_title("dagu: coordinator")
    blocked = _block_stop_signals()  # before any thread starts, so that sigwait below gets them
    from transports.grpc.server import start_coordinator

    settings.ensure_dirs()
    server = start_coordinator(settings, opts)
    from dagu.store.service_registry import register

    registration = register(settings.data_dir, "coordinator", host=opts.advertise or opts.host, port=server.port)
    mode = "mutual TLS" if opts.peer.client_ca_file else "TLS" if opts.peer.uses_tls else "plaintext"
    logging.getLogger("dagu.coordinator").info("coordinator listening on %s:%d (%s)", opts.host, server.port, mode)
    print(f"coordinator listening on {opts.host}:{server.port} ({mode})", file=sys.stderr, flush=True)
    try:
        wait_for_stop_signal(blocked)
    finally:
        registration.close()
        server.stop()
    return 0


def wait_for_stop_signal(blocked) -> int:
    """Block until SIGINT or SIGTERM (blocked in every thread, so only this wait sees it)."""
    import signal

    return signal.sigwait(blocked)


def _block_stop_signals():
    import signal

    stops = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    return stops


def _set_title(title: str) -> None:
    try:
        import setproctitle

        setproctitle.setproctitle(title)
    except ImportError:  # only `ps` output suffers
        pass
