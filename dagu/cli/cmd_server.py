"""`dagu server`: serve the REST API (and UI) over HTTP or HTTPS until SIGTERM/SIGINT."""

from __future__ import annotations

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("-s", "--host", help="address to bind (default 127.0.0.1, or `host` in config)")
    parser.add_argument("-p", "--port", type=int, help="port to listen on (default 8080, or `port` in config)")
    parser.add_argument("-d", "--dags", metavar="DIR", help="DAGs folder (default: <home>/dags)")


def run(args, settings) -> int:

    from dagu.cli.service import flag_overrides, with_overrides
    from web.server import serve

    settings = with_overrides(settings, flag_overrides(args))
    try:
        import setproctitle

        setproctitle.setproctitle("dagu: server")
    except ImportError:
        pass
    return serve(settings)
