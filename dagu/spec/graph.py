"""The `steps` container -> ordered Steps: forms, names, ids, dependencies and cycles.

Owns what needs every step at once (dag-spec 1.3, 2.2, 3.2, 3.6): the list / group /
mapping forms, auto-generated names, unique names and ids, chain-mode edges, rewriting
ids in `depends` to names, unknown targets and dependency cycles.
"""

from __future__ import annotations

import difflib

from dagu.spec.issues import IssueLog, describe
from dagu.spec.model import Step
from dagu.spec.nodes import Node
from dagu.spec.routes import apply_routes
from dagu.spec.steps import StepContext, StepDraft, build_step

__all__ = ["build_steps"]


def build_steps(node: Node | None, ctx: StepContext, chain: bool) -> tuple[Step, ...]:
    """Read `steps` in any form into Steps in definition order, with chain edges injected."""
    if node is None:
        return ()
    entries, chained = _entries(node, ctx)
    drafts = [d for entry in entries for d in entry]
    _assign_names(entries, ctx.log)
    ids = _check_ids(drafts, ctx.log)
    apply_routes(drafts, ids, chain, ctx.log)
    if chain and chained:
        _inject_chain(entries)
    depends = _resolve_depends(drafts, ids, ctx.log)
    _check_cycles(drafts, depends, ctx.log)
    return tuple(
        Step(name=d.name or "", depends=depends[d.name or ""], explicit_no_depends=d.no_depends, **d.fields)
        for d in drafts
    )


def _entries(node: Node, ctx: StepContext) -> tuple[list[list[StepDraft]], bool]:
    """Steps grouped by entry (a group is one entry); and whether chain edges apply."""
    log = ctx.log
    if node.is_map:
        entries = []
        for key, value in node.value:
            name = key.text.strip() if key.is_scalar else ""
            draft = build_step(value, f"steps.{name}", ctx)
            if not name:
                log.add(key, "steps", f"step names must be non-empty strings, got {describe(key)}")
            draft.name = name or draft.name
            entries.append([draft])
        return entries, False  # the mapping form has no order, so no implicit edges
    if node.is_scalar:
        log.add(node, "steps", f"expected a list of steps, got {describe(node)}", "write `steps:` followed by `- command: ...` items")
        return [], False
    entries = []
    for i, item in enumerate(node.value):
        path = f"steps[{i}]"
        if item.is_seq:
            if not item.value:
                log.add(item, path, "a step group is empty")
            entries.append([build_step(member, f"{path}[{j}]", ctx) for j, member in enumerate(item.value)])
        elif item.is_scalar and item.value is None:
            log.add(item, path, "step is empty", "remove the `-` line or give the step a command")
        else:
            entries.append([build_step(item, path, ctx)])
    return entries, True


def _assign_names(entries: list[list[StepDraft]], log: IssueLog) -> None:
    taken: set[str] = set()
    for draft in (d for entry in entries for d in entry):
        if draft.name is None:
            continue
        if draft.name in taken:
            log.add(draft.node, f"{draft.path}.name", f'step name "{draft.name}" must be unique', "rename one of the steps")
        taken.add(draft.name)
    for position, entry in enumerate(entries, start=1):
        for draft in entry:
            if draft.name is not None:
                continue
            n = position
            while f"{draft.prefix}_{n}" in taken:
                n += 1
            draft.name = f"{draft.prefix}_{n}"
            taken.add(draft.name)


def _check_ids(drafts: list[StepDraft], log: IssueLog) -> dict[str, str]:
    """id -> step name; reports duplicate ids and ids that clash with another step's name."""
    names = {d.name for d in drafts}
    ids: dict[str, str] = {}
    for draft in drafts:
        if draft.id is None:
            continue
        if draft.id in ids:
            log.add(draft.node, f"{draft.path}.id", f'duplicate step id "{draft.id}"', "give every step its own id")
        elif draft.id != draft.name and draft.id in names:
            log.add(draft.node, f"{draft.path}.id", f'step id "{draft.id}" conflicts with the name of another step', "rename the id or the step")
        else:
            ids[draft.id] = draft.name or ""
    return ids


def _inject_chain(entries: list[list[StepDraft]]) -> None:
    """1.30 chain mode: every entry depends on the previous one; `depends: []` opts out."""
    previous: list[StepDraft] = []
    for entry in entries:
        for draft in entry:
            if draft.no_depends:
                continue
            written = {ref for ref, _ in draft.depends}
            draft.depends.extend((p.name, p.node) for p in previous if p.name not in written and p.name)
        previous = entry


def _resolve_depends(drafts: list[StepDraft], ids: dict[str, str], log: IssueLog) -> dict[str, tuple[str, ...]]:
    names = {d.name for d in drafts}
    result: dict[str, tuple[str, ...]] = {}
    for draft in drafts:
        resolved: list[str] = []
        for ref, node in draft.depends:
            target = ref if ref in names else ids.get(ref)
            if target is None:
                log.add(node, f"{draft.path}.depends", f'step "{draft.name}" depends on non-existent step "{ref}"', _closest(ref, names))
            elif target not in resolved:
                resolved.append(target)
        result[draft.name or ""] = tuple(resolved)
    return result


def _check_cycles(drafts: list[StepDraft], depends: dict[str, tuple[str, ...]], log: IssueLog) -> None:
    """Report each dependency cycle once, with its path, at the first step on it."""
    by_name = {d.name: d for d in drafts}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    reported: set[frozenset[str]] = set()
    for start in by_name:
        if state.get(start):
            continue
        # Iterative DFS: deep chains of hundreds of steps must not hit the recursion limit.
        path: list[str] = [start]
        stack = [iter(depends.get(start, ()))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    first = min((by_name[n] for n in cycle[:-1]), key=lambda d: (d.node.line, d.node.column))
                    text = " -> ".join(cycle)
                    log.add(first.node, f"{first.path}.depends", f"dependency cycle: {text}", "remove one of these dependencies")
            elif not state.get(nxt) and nxt in by_name:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(depends.get(nxt, ())))


def _closest(ref: str, names: set[str | None]) -> str | None:
    match = difflib.get_close_matches(ref, [n for n in names if n], n=1)
    return f'did you mean "{match[0]}"?' if match else None
