"""`dagu retry -r <run-id> <dag>`: run a finished run again as a new attempt with the same ID."""

from __future__ import annotations

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("dag", help="DAG name, or its workflow file")
    parser.add_argument("-r", "--run-id", required=True, help="the run to retry")
    parser.add_argument("--step", help="re-run only this step (others keep their results)")


def run(args, settings) -> int:
    from actors.launch import RunRequest
    from dagu.cli.cmd_start import execute
    from dagu.cli.lookup import dag_name_of, find_run
    from dagu.errors import Conflict

    name = dag_name_of(args.dag, settings)
    _, attempt, record = find_run(settings, name, args.run_id)
    if record.status.is_active:
        raise Conflict(f"run {args.run_id} of {name} is still {record.status.label}; stop it first")
    dag = stored_dag(settings, attempt, name)
    request = RunRequest(retry_of=record, retry_step=args.step, parent=record.parent, root=record.root if record.parent else None)
    return execute(dag, settings, request, quiet=args.quiet)


def stored_dag(settings, attempt, name):
    """The DAG as it ran (from the attempt's dag.json), so a retry runs what ran before."""
    from dagu.errors import NotFound
    from dagu.spec import load_dag, load_dag_text
    from dagu.store import RunStore

    try:
        data = RunStore(settings.data_dir, settings.log_dir).read_dag_json(attempt)
    except NotFound:
        data = {}
    base = settings.base_config if settings.base_config.is_file() else None
    if data.get("yamlData"):
        dag = load_dag_text(data["yamlData"], data.get("file") or f"{name}.yaml", name=name, base_config=base)
        return dag
    from dagu.cli.common import resolve_dag_path

    return load_dag(resolve_dag_path(name, settings), base_config=base)
