"""Finding a run by reference anywhere in a run tree (a root run or a nested sub-run)."""

from __future__ import annotations

from dagu.errors import NotFound
from dagu.store.records import DagRef
from dagu.store.runs import RunHandle, RunStore

__all__ = ["locate_run"]


def locate_run(store: RunStore, ref: DagRef, root: DagRef | None = None) -> RunHandle:
    """The run `ref`: a root run of its DAG, or a sub-run somewhere under `root`.

    Raises:
        NotFound: neither place has it.
    """
    try:
        return store.find_run(ref.name, ref.id)
    except NotFound:
        if root is None or root == ref:
            raise
    top = store.find_run(root.name, root.id)
    found = _search(store, top, ref.id)
    if found is None:
        raise NotFound(f"dag-run {ref.id} of DAG {ref.name} not found under {root.name}/{root.id}")
    return found


def _search(store: RunStore, run: RunHandle, run_id: str) -> RunHandle | None:
    children = run.path / "children"
    if not children.is_dir():
        return None
    try:
        return store.find_sub_run(run, run_id)
    except NotFound:
        pass
    for entry in sorted(children.iterdir()):
        if entry.name.startswith("child_"):
            sub = store.find_sub_run(run, entry.name[len("child_"):])
            hit = _search(store, sub, run_id)
            if hit is not None:
                return hit
    return None
