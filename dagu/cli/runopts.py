"""Flags shared by the commands that start a run (`start`, `dry`, `retry`, `restart`, `exec`)."""

from __future__ import annotations

import argparse

__all__ = ["add_run_flags", "parse_ref", "load_for_run"]


def add_run_flags(parser: argparse.ArgumentParser, *, params: bool = True) -> None:
    parser.add_argument("dag", help="workflow file, or a name looked up in the DAGs folder")
    if params:
        parser.add_argument("params", nargs="*", help="parameters after --: KEY=value or positional words")
        parser.add_argument("-p", "--params", dest="params_text", metavar="TEXT", help='parameters as one string: \'A=1 B="two words"\'')
    parser.add_argument("-N", "--name", help="override the DAG name")
    parser.add_argument("--default-working-dir", metavar="DIR", help="working dir for a DAG that sets none")
    parser.add_argument("--local-dag", metavar="NAME", help=argparse.SUPPRESS)  # run a later document of the file
    parser.add_argument("--parent", metavar="DAG:RUN", help=argparse.SUPPRESS)
    parser.add_argument("--root", metavar="DAG:RUN", help=argparse.SUPPRESS)


def parse_ref(text: str | None):
    """`name:run-id` -> DagRef (None stays None)."""
    if not text:
        return None
    from dagu.errors import InvalidRequest
    from dagu.store import DagRef

    name, sep, run_id = text.rpartition(":")
    if not sep or not name or not run_id:
        raise InvalidRequest(f"expected <dag-name>:<run-id>, got {text!r}")
    return DagRef(name, run_id)


def load_for_run(args, settings):
    """Load the DAG named by `args.dag` (or one of its local documents) with the base config."""
    from dagu.cli.common import resolve_dag_path
    from dagu.errors import NotFound
    from dagu.spec import load_dag

    path = resolve_dag_path(args.dag, settings)
    base = settings.base_config if settings.base_config.is_file() else None
    dag = load_dag(path, name=None if args.local_dag else args.name, base_config=base)
    if args.local_dag:
        try:
            dag = dag.local_dags[args.local_dag]
        except KeyError:
            raise NotFound(f"{path} has no document named {args.local_dag!r}") from None
    return dag
