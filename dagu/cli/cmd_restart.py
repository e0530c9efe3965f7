"""`dagu restart <dag>`: stop the running run, wait `restart_wait_sec`, start it again with the same params."""

from __future__ import annotations

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("dag", help="DAG name, or its workflow file")
    parser.add_argument("-r", "--run-id", help="the run to restart (default: the latest)")


def run(args, settings) -> int:
    import time

    from actors.launch import RunRequest
    from dagu.cli.cmd_retry import stored_dag
    from dagu.cli.cmd_start import execute
    from dagu.cli.cmd_stop import stop_run
    from dagu.cli.lookup import dag_name_of, find_run
    from dagu.errors import Conflict
    from dagu.status import RunStatus

    name = dag_name_of(args.dag, settings)
    _, attempt, record = find_run(settings, name, args.run_id)
    if record.status != RunStatus.RUNNING:
        raise Conflict(f"DAG {name} is not running, current status: {record.status.label}")
    dag = stored_dag(settings, attempt, name)
    stop_run(settings, attempt, record, wait=True)
    if dag.restart_wait_sec:
        time.sleep(dag.restart_wait_sec)
    return execute(dag, settings, RunRequest(param_args=tuple(record.params_list)), quiet=args.quiet)
