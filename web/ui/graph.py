"""Layered (Sugiyama-style) layout of a DAG's steps for the SVG graph in the UI.

Pure functions, no I/O: steps and their `depends` in, coordinates out. The phases are
the classic ones: break cycles (defensively; the loader rejects them), assign layers
by longest path, insert dummy nodes so every edge spans one layer, reduce crossings
by barycentre sweeps (keeping the best order seen, counted exactly), then place nodes:
layers become columns (left to right) and each node moves towards the mean position
of its neighbours while keeping its order and a minimum gap. Drawing is the
template's business.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["NodeBox", "EdgePath", "Layout", "layout", "count_crossings"]

NODE_W = 180.0
NODE_H = 40.0
LAYER_GAP = 70.0  # horizontal space between columns
ROW_GAP = 18.0  # vertical space between boxes of a column
DUMMY_H = 6.0  # a dummy node (edge bend) takes little room
MARGIN = 16.0
_SWEEPS = 8
_PLACE_ITERATIONS = 6


@dataclass(frozen=True, slots=True)
class NodeBox:
    """Where one step's box goes: top-left corner, size, layer (column) and order in it."""

    name: str
    x: float
    y: float
    w: float
    h: float
    layer: int
    order: int

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass(frozen=True, slots=True)
class EdgePath:
    """One dependency edge, `src` -> `dst`, as the points it passes through (bends included)."""

    src: str
    dst: str
    points: tuple[tuple[float, float], ...]
    reversed: bool = False  # drawn against a cycle-breaking reversal

    @property
    def d(self) -> str:
        """An SVG path: a smooth horizontal S-curve between consecutive points."""
        (x0, y0), *rest = self.points
        parts = [f"M{x0:.1f},{y0:.1f}"]
        for x1, y1 in rest:
            mid = (x0 + x1) / 2
            parts.append(f"C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}")
            x0, y0 = x1, y1
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Layout:
    """A whole drawing: boxes by step name, edges, and the canvas size."""

    nodes: Mapping[str, NodeBox]
    edges: tuple[EdgePath, ...]
    width: float
    height: float
    crossings: int = 0
    layers: tuple[tuple[str, ...], ...] = field(default_factory=tuple)  # real nodes per layer, in order


def layout(
    steps: Sequence[str],
    depends: Mapping[str, Iterable[str]],
    *,
    node_w: float = NODE_W,
    node_h: float = NODE_H,
) -> Layout:
    """Lay out `steps` (in definition order) with `depends[step]` = the steps it waits for.

    Unknown dependency names are ignored (the loader reports them); self-edges are dropped.
    """
    names = list(dict.fromkeys(steps))
    known = set(names)
    edges = _edges(names, depends, known)
    edges, flipped = _break_cycles(names, edges)
    layer_of = _assign_layers(names, edges)
    layers, chains = _insert_dummies(names, edges, layer_of)
    preds, succs = _adjacency(layers, chains)
    layers, crossings = _reduce_crossings(layers, preds, succs)
    pos_y, heights = _place(layers, preds, succs, node_h)
    return _assemble(names, layers, chains, flipped, pos_y, heights, crossings, node_w, node_h)


def count_crossings(upper: Sequence[str], lower: Sequence[str], edges: Iterable[tuple[str, str]]) -> int:
    """Edge crossings between two adjacent layers, in O(E log V) (inversions of lower positions).

    Args:
        upper: the first layer's order. lower: the second's.
        edges: (node in upper, node in lower) pairs.
    """
    up = {n: i for i, n in enumerate(upper)}
    low = {n: i for i, n in enumerate(lower)}
    pairs = sorted((up[a], low[b]) for a, b in edges if a in up and b in low)
    tree = [0] * (len(lower) + 1)
    seen = crossings = 0
    for _, b in pairs:
        # Edges already seen whose lower end is right of b cross this one.
        i, not_right = b + 1, 0
        while i > 0:
            not_right += tree[i]
            i -= i & -i
        crossings += seen - not_right
        i = b + 1
        while i <= len(lower):
            tree[i] += 1
            i += i & -i
        seen += 1
    return crossings


# --- phases -------------------------------------------------------------------------


def _edges(names: list[str], depends: Mapping[str, Iterable[str]], known: set[str]) -> list[tuple[str, str]]:
    result: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for name in names:
        for dep in depends.get(name, ()):
            edge = (dep, name)
            if dep in known and dep != name and edge not in seen:
                seen.add(edge)
                result.append(edge)
    return result


def _break_cycles(names: list[str], edges: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], set[tuple[str, str]]]:
    """Reverse back edges found by an iterative DFS so the graph becomes acyclic."""
    out: dict[str, list[str]] = {n: [] for n in names}
    for a, b in edges:
        out[a].append(b)
    state: dict[str, int] = dict.fromkeys(names, 0)  # 0 new, 1 on stack, 2 done
    back: set[tuple[str, str]] = set()
    for root in names:
        if state[root]:
            continue
        stack = [(root, iter(out[root]))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            for child in children:
                if state[child] == 1:
                    back.add((node, child))
                elif state[child] == 0:
                    state[child] = 1
                    stack.append((child, iter(out[child])))
                    break
            else:
                state[node] = 2
                stack.pop()
    fixed = [(b, a) if (a, b) in back else (a, b) for a, b in edges]
    return list(dict.fromkeys(fixed)), {(b, a) for a, b in back}


def _assign_layers(names: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest path from the sources (Kahn's order), so every edge points to a later layer."""
    preds: dict[str, list[str]] = {n: [] for n in names}
    out: dict[str, list[str]] = {n: [] for n in names}
    indegree = dict.fromkeys(names, 0)
    for a, b in edges:
        preds[b].append(a)
        out[a].append(b)
        indegree[b] += 1
    ready = [n for n in names if indegree[n] == 0]
    layer: dict[str, int] = {}
    i = 0
    while i < len(ready):
        node = ready[i]
        i += 1
        layer[node] = max((layer[p] + 1 for p in preds[node]), default=0)
        for child in out[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return layer


def _insert_dummies(
    names: list[str], edges: list[tuple[str, str]], layer_of: dict[str, int]
) -> tuple[list[list[str]], list[tuple[str, str, list[str]]]]:
    """Layers as lists of node ids, and each edge as (src, dst, chain of ids src..dst)."""
    depth = max(layer_of.values(), default=-1) + 1
    layers: list[list[str]] = [[] for _ in range(depth)]
    for name in names:
        layers[layer_of[name]].append(name)
    chains = []
    for n, (a, b) in enumerate(edges):
        chain = [a]
        for k in range(layer_of[a] + 1, layer_of[b]):
            dummy = f"\x00{n}:{k}"  # NUL cannot occur in a step name
            layers[k].append(dummy)
            chain.append(dummy)
        chain.append(b)
        chains.append((a, b, chain))
    return layers, chains


def _adjacency(layers: list[list[str]], chains: list[tuple[str, str, list[str]]]) -> tuple[dict, dict]:
    preds: dict[str, list[str]] = {n: [] for layer in layers for n in layer}
    succs: dict[str, list[str]] = {n: [] for layer in layers for n in layer}
    for _, _, chain in chains:
        for u, v in zip(chain, chain[1:]):
            succs[u].append(v)
            preds[v].append(u)
    return preds, succs


def _total_crossings(layers: list[list[str]], succs: dict[str, list[str]]) -> int:
    total = 0
    for upper, lower in zip(layers, layers[1:]):
        total += count_crossings(upper, lower, ((u, v) for u in upper for v in succs[u]))
    return total


def _reduce_crossings(layers: list[list[str]], preds: dict, succs: dict) -> tuple[list[list[str]], int]:
    best = [list(layer) for layer in layers]
    best_count = _total_crossings(best, succs)
    current = [list(layer) for layer in layers]
    for sweep in range(_SWEEPS):
        if best_count == 0:
            break
        if sweep % 2 == 0:
            for i in range(1, len(current)):
                current[i] = _by_barycentre(current[i], current[i - 1], preds)
        else:
            for i in range(len(current) - 2, -1, -1):
                current[i] = _by_barycentre(current[i], current[i + 1], succs)
        count = _total_crossings(current, succs)
        if count < best_count:
            best, best_count = [list(layer) for layer in current], count
    return best, best_count


def _by_barycentre(layer: list[str], fixed: list[str], neighbours: dict[str, list[str]]) -> list[str]:
    index = {n: i for i, n in enumerate(fixed)}
    keyed = []
    for i, node in enumerate(layer):
        around = [index[m] for m in neighbours[node] if m in index]
        # Nodes without neighbours keep their place; ties keep the current order (stable).
        keyed.append((sum(around) / len(around) if around else float(i), i, node))
    keyed.sort()
    return [node for _, _, node in keyed]


def _place(layers: list[list[str]], preds: dict, succs: dict, node_h: float) -> tuple[dict[str, float], dict[str, float]]:
    """Vertical centre of every node: pulled towards its neighbours, order and gaps kept."""
    heights = {n: (DUMMY_H if n.startswith("\x00") else node_h) for layer in layers for n in layer}
    y: dict[str, float] = {}
    for layer in layers:
        top = 0.0
        for n in layer:
            y[n] = top + heights[n] / 2
            top += heights[n] + ROW_GAP
    for it in range(_PLACE_ITERATIONS):
        order = range(1, len(layers)) if it % 2 == 0 else range(len(layers) - 2, -1, -1)
        neighbours = preds if it % 2 == 0 else succs
        for i in order:
            layer = layers[i]
            wanted = []
            for n in layer:
                around = [y[m] for m in neighbours[n]]
                wanted.append(sum(around) / len(around) if around else y[n])
            for n, v in zip(layer, _separate(wanted, [heights[n] for n in layer])):
                y[n] = v
    low = min((y[n] - heights[n] / 2 for n in y), default=0.0)
    return {n: v - low for n, v in y.items()}, heights


def _separate(wanted: list[float], sizes: list[float]) -> list[float]:
    """Centres as close to `wanted` as possible (least squares) with boxes in order, not overlapping.

    Pool-adjacent-violators on the offsets: blocks of touching boxes sit at the mean
    of what their members want.
    """
    # Shift each wanted centre by its box's offset inside a tightly packed run.
    offsets, acc = [], 0.0
    for i, size in enumerate(sizes):
        if i:
            acc += sizes[i - 1] / 2 + ROW_GAP + size / 2
        offsets.append(acc)
    blocks: list[list[float]] = []  # [mean base, weight, count]
    for w, off in zip(wanted, offsets):
        blocks.append([w - off, 1.0, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            b = blocks.pop()
            a = blocks[-1]
            a[0] = (a[0] * a[1] + b[0] * b[1]) / (a[1] + b[1])
            a[1] += b[1]
            a[2] += b[2]
    result = []
    i = 0
    for base, _, count in blocks:
        for _ in range(count):
            result.append(base + offsets[i])
            i += 1
    return result


def _assemble(names, layers, chains, flipped, pos_y, heights, crossings, node_w, node_h) -> Layout:
    boxes: dict[str, NodeBox] = {}
    x_of = [MARGIN + i * (node_w + LAYER_GAP) for i in range(len(layers))]
    for i, layer in enumerate(layers):
        for order, n in enumerate(layer):
            if not n.startswith("\x00"):
                boxes[n] = NodeBox(n, x_of[i], MARGIN + pos_y[n] - node_h / 2, node_w, node_h, i, order)
    layer_index = {n: i for i, layer in enumerate(layers) for n in layer}
    edges = []
    for a, b, chain in chains:
        pts = [(boxes[a].x + node_w, boxes[a].cy)]
        for d in chain[1:-1]:
            xd = x_of[layer_index[d]]
            pts.append((xd, MARGIN + pos_y[d]))
            pts.append((xd + node_w, MARGIN + pos_y[d]))
        pts.append((boxes[b].x, boxes[b].cy))
        was_flipped = (a, b) in flipped
        if was_flipped:
            a, b, pts = b, a, pts[::-1]
        edges.append(EdgePath(a, b, tuple(pts), was_flipped))
    width = (x_of[-1] + node_w + MARGIN) if layers else 2 * MARGIN
    height = max((MARGIN + pos_y[n] + heights[n] / 2 for n in pos_y), default=0.0) + MARGIN
    real_layers = tuple(tuple(n for n in layer if not n.startswith("\x00")) for layer in layers)
    return Layout(boxes, tuple(edges), width, max(height, node_h + 2 * MARGIN), crossings, real_layers)
