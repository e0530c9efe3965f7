"""Load a workflow file into the frozen `Dag` model, collecting every problem as one SpecError.

Owns the file-level rules (dag-spec 1.1, 1.2): the multi-document stream, local
sub-DAGs, the DAG name, and merging a base config under each document. Reading
individual fields is delegated to `root`, `steps` and `graph`.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from dagu.errors import NotFound, SpecError, SpecIssue
from dagu.spec.graph import build_steps
from dagu.spec.issues import IssueLog
from dagu.spec.model import HANDLER_NODE_NAMES, Dag, DagType, HandlerOn, Location, Step, freeze
from dagu.spec.nodes import Node, NodeError, parse_documents
from dagu.spec.root import RootValues, merge_roots, read_root
from dagu.spec.steps import StepContext, build_step

__all__ = ["load_dag", "load_dag_text"]

_DAG_NAME_RE = re.compile(r"[a-zA-Z0-9_.-]+")
_MAX_DAG_NAME = 40


def load_dag(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    base_config: str | os.PathLike | None = None,
) -> Dag:
    """Read and validate a workflow file.

    Args:
        path: the YAML file.
        name: overrides the DAG name (else `name:`, else the file stem).
        base_config: a base.yaml merged under every document; ignored if missing.

    Raises:
        NotFound: the file does not exist.
        SpecError: the file is not a valid workflow; carries every issue found.
    """
    text = _read_text(Path(path))
    return load_dag_text(text, os.fspath(path), name=name, base_config=base_config)


def load_dag_text(
    text: str,
    file: str = "<string>",
    *,
    name: str | None = None,
    base_config: str | os.PathLike | None = None,
) -> Dag:
    """Like `load_dag`, from text; `file` names the source in errors and gives the default name."""
    log = IssueLog()
    base = _load_base(base_config, log)
    try:
        documents = parse_documents(text, file)
    except NodeError as exc:
        log.add_issue(exc.issue)
        raise SpecError(log.issues) from exc
    if not documents:
        empty = Node("map", [], file, 1, 1)
        documents = [(empty, text)]
    default_name = Path(file).stem if file and not file.startswith("<") else ""
    dags = [_build_dag(node, source, base, log, name or None, default_name, index) for index, (node, source) in enumerate(documents)]
    _check_local_names(dags, documents, log)
    log.raise_if_any()
    first = dags[0]
    local = {d.name: d for d in dags[1:]}
    return replace(first, local_dags=MappingProxyType(local)) if local else first


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise NotFound(f"DAG file not found: {path}") from exc
    except OSError as exc:
        raise SpecError(SpecIssue(str(path), 0, 0, "", f"cannot read the file: {exc.strerror or exc}")) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(SpecIssue(str(path), 0, 0, "", f"the file is not UTF-8 text (byte {exc.start})")) from exc


def _load_base(base_config: str | os.PathLike | None, log: IssueLog) -> RootValues | None:
    if base_config is None:
        return None
    path = Path(base_config)
    if not path.is_file():
        return None
    text = _read_text(path)
    try:
        documents = parse_documents(text, os.fspath(path))
    except NodeError as exc:
        log.add_issue(exc.issue)
        return None
    return read_root(documents[0][0], log) if documents else None


def _build_dag(
    node: Node, source: str, base: RootValues | None, log: IssueLog, name: str | None, default_name: str, index: int
) -> Dag:
    values = read_root(node, log)
    if base is not None:
        values = merge_roots(base, values)
    fields = {k: freeze(v) for k, v in values.fields.items()}
    dag_name = _dag_name(values, node, log, name if index == 0 else None, default_name if index == 0 else "", index)
    ctx = StepContext(log, dag_container=fields.get("container") is not None, dag_ssh=bool(fields.get("ssh")))
    chain = fields.get("type", DagType.CHAIN) == DagType.CHAIN
    fields.update(
        name=dag_name,
        location=Location(node.file, node.line, node.column),
        steps=build_steps(values.steps, ctx, chain),
        handler_on=_handlers(values, ctx),
        source=source,
    )
    return Dag(**fields)


def _dag_name(values: RootValues, node: Node, log: IssueLog, override: str | None, default: str, index: int) -> str:
    written = values.fields.get("name")
    dag_name = override or (written or "").strip() or default
    where = values.name_node or node
    if index > 0 and not (written or "").strip():
        log.add(node, "name", f"DAG at index {index} must have a name in a multi-DAG file", "add `name: <unique name>` to this document")
        return f"dag-{index}"
    if not dag_name:
        return dag_name
    if len(dag_name) > _MAX_DAG_NAME:
        log.add(where, "name", f"DAG name must be at most {_MAX_DAG_NAME} characters, got {len(dag_name)}")
    elif not _DAG_NAME_RE.fullmatch(dag_name):
        log.add(where, "name", f"DAG name {dag_name!r} must only contain letters, digits, dashes, dots and underscores", "write e.g. `name: daily-etl`")
    return dag_name


def _handlers(values: RootValues, ctx: StepContext) -> HandlerOn:
    hooks: dict[str, Step] = {}
    for hook, (node, path) in values.handlers.items():
        draft = build_step(node, path, ctx)
        hooks[hook] = Step(name=HANDLER_NODE_NAMES[hook], **draft.fields)
    return HandlerOn(**hooks)


def _check_local_names(dags: list[Dag], documents: list[tuple[Node, str]], log: IssueLog) -> None:
    seen = {dags[0].name}
    for dag, (node, _) in zip(dags[1:], documents[1:]):
        if dag.name in seen:
            log.add(node, "name", f'duplicate DAG name "{dag.name}" found', "give every document in the file its own name")
        seen.add(dag.name)
