"""The `dagu` entry point: global flags, the command table, and lazy import of the chosen command.

Only the module of the command being run is imported, so `dagu validate` never pays
for the engine, the web server or gRPC. Each command module offers
`add_arguments(parser)` and `run(args, settings) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main", "COMMANDS"]

# name -> (module, one-line summary). Aliases map to the same module.
COMMANDS: dict[str, tuple[str, str]] = {
    "start": ("dagu.cli.cmd_start", "run a workflow now, in the foreground, and show its result"),
    "dry": ("dagu.cli.cmd_dry", "show the plan of a workflow without running any step"),
    "validate": ("dagu.cli.cmd_validate", "check a workflow file and report every problem"),
    "status": ("dagu.cli.cmd_status", "show the latest (or a given) run of a workflow"),
    "stop": ("dagu.cli.cmd_stop", "stop a running workflow run"),
    "restart": ("dagu.cli.cmd_restart", "stop a running run and start it again"),
    "retry": ("dagu.cli.cmd_retry", "run a finished run again under the same run ID"),
    "history": ("dagu.cli.cmd_history", "list recent runs"),
    "cleanup": ("dagu.cli.cmd_cleanup", "delete old run history of a workflow"),
    "exec": ("dagu.cli.cmd_exec", "run a one-off command as a workflow run"),
    "enqueue": ("dagu.cli.cmd_enqueue", "put a run on its queue; the scheduler starts it"),
    "dequeue": ("dagu.cli.cmd_dequeue", "take a queued run off its queue"),
    "scheduler": ("dagu.cli.cmd_scheduler", "fire schedules and start queued runs (a long-running service)"),
    "server": ("dagu.cli.cmd_server", "serve the web UI and the REST API over HTTP(S) (a long-running service)"),
    "start-all": ("dagu.cli.cmd_start_all", "run the server and the scheduler as supervised processes"),
    "coordinator": ("dagu.cli.cmd_coord", "hand queued runs to remote workers over gRPC (a long-running service)"),
    "worker": ("dagu.cli.cmd_worker", "execute runs handed out by a coordinator (a long-running service)"),
    "version": ("dagu.cli.cmd_version", "print the version"),
}
ALIASES = {"coord": "coordinator"}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, run the command, and return the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    name = _find_command(argv)
    parser = _build_parser(name)
    if not argv:
        parser.print_help(sys.stderr)
        return 1
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 1
    module = importlib.import_module(COMMANDS[ALIASES.get(args.command, args.command)][0])
    from dagu.cli import common

    return common.run_command(module, args)


def _global_flags(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--dagu-home", metavar="DIR", default=default, help="use DIR as DAGU_HOME (dags/, data/, logs/, config.yaml)")
    parser.add_argument("-c", "--config", metavar="FILE", default=default, help="read this config file instead of <home>/config.yaml")
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS if suppress else False, help="no progress display and no summary"
    )


def _build_parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dagu",
        description="Run Dagu-format YAML workflows: validate, run, inspect and schedule them.",
        epilog="Run `dagu <command> --help` for the flags of one command.",
    )
    _global_flags(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (module_name, summary) in COMMANDS.items():
        aliases = [alias for alias, target in ALIASES.items() if target == name]
        p = sub.add_parser(name, aliases=aliases, help=summary, description=summary[:1].upper() + summary[1:] + ".")
        if name == chosen:
            _global_flags(p, suppress=True)
            importlib.import_module(module_name).add_arguments(p)
    return parser


def _find_command(argv: Sequence[str]) -> str | None:
    """The first argument naming a command, skipping global flags and their values."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--dagu-home", "-c", "--config"):
            skip = True
            continue
        if arg == "--":
            return None
        if arg.startswith("-"):
            continue
        arg = ALIASES.get(arg, arg)
        return arg if arg in COMMANDS else None
    return None
