"""`dagu validate <dag>`: load a workflow without running anything and report every problem."""

from __future__ import annotations

import sys

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("dag", help="workflow file, or a name looked up in the DAGs folder")


def run(args, settings) -> int:
    from dagu.cli.common import eprint, resolve_dag_path
    from dagu.errors import SpecError
    from dagu.spec import load_dag

    path = resolve_dag_path(args.dag, settings)
    base = settings.base_config if settings.base_config.is_file() else None
    try:
        dag = load_dag(path, base_config=base)
    except SpecError as exc:
        n = len(exc.issues)
        eprint(f"Error: validation failed for {path}: {n} problem{'s' if n != 1 else ''}")
        for issue in exc.issues:
            eprint(issue.format())
        return 1
    if not args.quiet:
        extra = f", {len(dag.local_dags)} local sub-DAG(s)" if dag.local_dags else ""
        print(f"{path}: valid ({dag.name}: {len(dag.steps)} step(s){extra})", file=sys.stderr)
    return 0
