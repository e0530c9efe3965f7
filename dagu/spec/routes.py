"""Router steps at load time (dag-spec 4.12): turn `routes` into dependencies and preconditions.

Owns the load-time half of the `router` step type. For a router with `value` and
`routes: {pattern: [steps]}`, every target step gets a dependency on the router and a
precondition `value == pattern` (`re:` for a regex, searched as preconditions are), so a
target whose pattern does not match ends skipped and its dependents skip as usual. The
2.15 step-level form (`value:` and `routes:` on a step without `type`) is read too.

Load errors, each at its line: a router in a chain DAG, an unknown target, a step
targeted twice (by one or several routers), a router targeting itself, a bad `re:`
pattern. The run-time half (printing the value and the matches) is `dagu.steps.router`.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from dagu.spec.issues import IssueLog, describe
from dagu.spec.model import Precondition, freeze
from dagu.spec.nodes import Node, plain, scalar_text

__all__ = ["apply_routes"]

_REGEX_PREFIX = "re:"


def apply_routes(drafts: list[Any], ids: dict[str, str], chain: bool, log: IssueLog) -> None:
    """Wire every router's targets (`drafts` are `StepDraft`s with final names).

    Must run after names and ids are known and before dependencies are resolved.
    """
    by_name = {d.name: d for d in drafts if d.name}
    targeted: dict[str, str] = {}  # target step -> the router that claims it
    for router in drafts:
        _adopt_step_level_form(router, log)
        if router.fields.get("type") != "router":
            continue
        routes_node = _routes_node(router.node)
        if chain:
            log.add(router.node, router.path, "router steps need a graph DAG; this DAG runs as a chain", "add `type: graph` at the top of the file")
            continue
        config = router.fields.get("config") or {}
        value = config.get("value")
        routes = config.get("routes")
        if value is None or not hasattr(routes, "items"):
            continue  # the config check already reported the missing keys
        for pattern, targets, node in _entries(routes, routes_node, router, log):
            for target, target_node in targets:
                name = target if target in by_name else ids.get(target)
                where = f"{router.path}.config.routes[{pattern!r}]"
                if name is None:
                    match = difflib.get_close_matches(target, [n for n in by_name if n], n=1)
                    hint = f'did you mean "{match[0]}"?' if match else "route to the name (or id) of a step in this DAG"
                    log.add(target_node or node, where, f'router "{router.name}" routes to non-existent step "{target}"', hint)
                    continue
                if name == router.name:
                    log.add(target_node or node, where, f'router "{router.name}" cannot route to itself')
                    continue
                if name in targeted:
                    log.add(target_node or node, where, f'step "{name}" is already a target of router "{targeted[name]}"; a step may be the target of one route only', "route the step from a single pattern (use a `re:` pattern to cover several values)")
                    continue
                targeted[name] = router.name or ""
                _wire(by_name[name], router, str(value), pattern)


def _adopt_step_level_form(draft: Any, log: IssueLog) -> None:
    """2.15: `value` and `routes` written on the step itself make it a router."""
    extras = draft.fields.get("extras") or {}
    if "routes" not in extras or draft.fields.get("type") not in ("command", "router"):
        return
    if draft.fields.get("commands") or draft.fields.get("script") is not None:
        log.add(draft.node, draft.path, "a router step cannot also have `command` or `script`", "move the command into its own step")
        return
    if "value" not in extras and "value" not in (draft.fields.get("config") or {}):
        log.add(draft.node, draft.path, "router steps need `value` (the text to match against the routes)", 'add `value: "${STATUS}"`')
    config = dict(draft.fields.get("config") or {})
    config.setdefault("routes", extras["routes"])
    if "value" in extras:
        config.setdefault("value", extras["value"])
    draft.fields["config"] = freeze(config)
    draft.fields["type"] = "router"
    if draft.prefix in ("step", "cmd"):
        draft.prefix = "router"


def _entries(routes: Any, routes_node: Node | None, router: Any, log: IssueLog) -> list[tuple[str, list[tuple[str, Node | None]], Node]]:
    """(pattern, [(target, node)], pattern node) for each route, reporting malformed ones."""
    nodes: dict[str, tuple[Node, Node]] = {}
    if routes_node is not None and routes_node.is_map:
        nodes = {scalar_text(k): (k, v) for k, v in routes_node.value if k.is_scalar}
    out = []
    for pattern, targets in routes.items():
        key_node, value_node = nodes.get(str(pattern), (router.node, None))
        where = f"{router.path}.config.routes[{str(pattern)!r}]"
        if str(pattern).startswith(_REGEX_PREFIX):
            try:
                re.compile(str(pattern)[len(_REGEX_PREFIX) :])
            except re.error as exc:
                log.add(key_node, where, f"invalid regular expression {str(pattern)!r}: {exc}")
                continue
        items = _targets(targets, value_node)
        if items is None:
            log.add(value_node or key_node, where, f"expected a step name or a list of step names, got {describe(value_node) if value_node else repr(plain(targets) if isinstance(targets, Node) else targets)}")
            continue
        out.append((str(pattern), items, key_node))
    return out


def _targets(targets: Any, node: Node | None) -> list[tuple[str, Node | None]] | None:
    if isinstance(targets, str):
        return [(targets.strip(), node)]
    if not isinstance(targets, tuple) or not all(isinstance(t, str) for t in targets):
        return None
    item_nodes = list(node.value) if node is not None and node.is_seq else [None] * len(targets)
    return [(t.strip(), n) for t, n in zip(targets, item_nodes)]


def _wire(target: Any, router: Any, value: str, pattern: str) -> None:
    if not any(ref == router.name for ref, _ in target.depends):
        target.depends.append((router.name, router.node))
    pres = tuple(target.fields.get("preconditions") or ())
    target.fields["preconditions"] = pres + (Precondition(value, pattern),)


def _routes_node(step: Node) -> Node | None:
    """The YAML node of `routes` under `config`/`with`, or on the step itself."""
    if not step.is_map:
        return None
    for key, value in step.value:
        name = scalar_text(key).lower() if key.is_scalar else ""
        if name == "routes":
            return value
        if name in ("config", "with") and value.is_map:
            for k, v in value.value:
                if k.is_scalar and scalar_text(k).lower() == "routes":
                    return v
    return None
