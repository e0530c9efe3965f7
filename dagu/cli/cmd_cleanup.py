"""`dagu cleanup <dag>`: delete run history (records and logs) older than a retention; active runs stay."""

from __future__ import annotations

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("dag", help="DAG name, or its workflow file")
    parser.add_argument("--retention-days", type=int, default=0, help="keep runs newer than this many days (0: delete all)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be deleted")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")


def run(args, settings) -> int:
    import sys

    from dagu.cli.lookup import dag_name_of
    from dagu.errors import InvalidRequest
    from dagu.store import RunStore

    if args.retention_days < 0:
        raise InvalidRequest("--retention-days must be 0 or more")
    name = dag_name_of(args.dag, settings)
    store = RunStore(settings.data_dir, settings.log_dir)
    doomed = store.delete_runs(name, args.retention_days, dry_run=True)
    if not doomed:
        print(f'No runs to delete for DAG "{name}"')
        return 0
    if args.dry_run:
        print(f'Dry run: Would delete {len(doomed)} run(s) for DAG "{name}":')
        for run_id in doomed:
            print(f"  - {run_id}")
        return 0
    if not args.yes:
        print(f'This deletes {len(doomed)} run(s) of DAG "{name}" and their logs. Continue? [y/N]: ', end="", flush=True)
        answer = sys.stdin.readline()
        if not answer:
            raise InvalidRequest("no answer on stdin; pass -y to delete without asking")
        if answer.strip().lower() not in ("y", "yes"):
            print("cancelled")
            return 0
    deleted = store.delete_runs(name, args.retention_days)
    print(f'Successfully removed {len(deleted)} run(s) for DAG "{name}"')
    return 0
