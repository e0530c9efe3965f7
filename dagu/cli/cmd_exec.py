"""`dagu exec -- <command> [args]`: run a one-off command as a one-step workflow run."""

from __future__ import annotations

import shlex

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("argv", nargs="+", metavar="command", help="the command and its arguments (after --)")
    parser.add_argument("-r", "--run-id", help="use this run ID")
    parser.add_argument("-N", "--name", help="DAG name (default: exec-<command>)")
    parser.add_argument("--workdir", help="working directory (must exist)")
    parser.add_argument("--shell", help="shell for the step")
    parser.add_argument("-E", "--env", action="append", default=[], metavar="KEY=VALUE", help="environment (repeatable)")
    parser.add_argument("--dotenv", action="append", default=[], metavar="FILE", help="dotenv file (repeatable)")


def run(args, settings) -> int:
    import os

    import yaml

    from actors.launch import RunRequest
    from dagu.cli.cmd_start import execute
    from dagu.errors import InvalidRequest
    from dagu.spec import load_dag_text

    workdir = os.path.abspath(args.workdir or os.getcwd())
    if not os.path.isdir(workdir):
        raise InvalidRequest(f"--workdir {args.workdir} is not a directory")
    env = []
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidRequest(f"invalid --env value {item!r}: expected KEY=VALUE")
        env.append({key: value})
    name = args.name or ("exec-" + os.path.basename(args.argv[0]))[:40]
    doc = {
        "name": "".join(c if c.isalnum() or c in "-_." else "_" for c in name),
        "type": "chain",
        "working_dir": workdir,
        "steps": [{"name": "main", "command": shlex.join(args.argv)}],
    }
    if env:
        doc["env"] = env
    if args.dotenv:
        doc["dotenv"] = args.dotenv
    if args.shell:
        doc["shell"] = args.shell
    text = yaml.safe_dump(doc, sort_keys=False)
    dag = load_dag_text(text, os.path.join(workdir, f"{doc['name']}.yaml"))
    return execute(dag, settings, RunRequest(run_id=args.run_id), quiet=args.quiet)
