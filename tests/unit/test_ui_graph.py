"""The layered layout of the UI's step graph: layers, crossings, coordinates."""

from __future__ import annotations

import itertools
import random
import time

from web.ui.graph import count_crossings, layout


def _no_overlap(lay) -> bool:
    by_layer: dict[int, list] = {}
    for box in lay.nodes.values():
        by_layer.setdefault(box.layer, []).append(box)
    for boxes in by_layer.values():
        boxes.sort(key=lambda b: b.y)
        for a, b in zip(boxes, boxes[1:]):
            if a.y + a.h > b.y + 0.01:
                return False
    return True


def test_every_edge_points_to_a_later_layer_and_layers_are_longest_paths():
    deps = {"b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["a", "d"]}
    lay = layout(["a", "b", "c", "d", "e"], deps)
    layer = {n: box.layer for n, box in lay.nodes.items()}
    assert layer == {"a": 0, "b": 1, "c": 1, "d": 2, "e": 3}
    for edge in lay.edges:
        assert layer[edge.src] < layer[edge.dst]
        assert lay.nodes[edge.src].x < lay.nodes[edge.dst].x


def test_long_edges_bend_through_the_layers_they_cross():
    lay = layout(["a", "b", "c", "d"], {"b": ["a"], "c": ["b"], "d": ["a", "c"]})
    long_edge = next(e for e in lay.edges if (e.src, e.dst) == ("a", "d"))
    # start, end, and an entry and exit point in each of the two layers crossed
    assert len(long_edge.points) == 2 + 2 * 2
    assert long_edge.d.startswith("M") and long_edge.d.count("C") == len(long_edge.points) - 1


def test_count_crossings_matches_a_brute_force_count():
    rng = random.Random(7)
    for _ in range(50):
        upper = [f"u{i}" for i in range(rng.randint(1, 7))]
        lower = [f"l{i}" for i in range(rng.randint(1, 7))]
        edges = list({(rng.choice(upper), rng.choice(lower)) for _ in range(rng.randint(0, 12))})
        up, low = {n: i for i, n in enumerate(upper)}, {n: i for i, n in enumerate(lower)}
        brute = sum(
            1
            for (a, b), (c, d) in itertools.combinations(edges, 2)
            if (up[a] - up[c]) * (low[b] - low[d]) < 0
        )
        assert count_crossings(upper, lower, edges) == brute


def test_barycentre_ordering_removes_avoidable_crossings():
    # Written in an order that crosses: x1->y2, x2->y1. The layout untangles it.
    steps = ["x1", "x2", "y1", "y2"]
    lay = layout(steps, {"y2": ["x1"], "y1": ["x2"]})
    assert lay.crossings == 0
    assert (lay.nodes["x1"].y < lay.nodes["x2"].y) == (lay.nodes["y2"].y < lay.nodes["y1"].y)


def test_boxes_of_a_column_never_overlap_and_a_chain_is_straight():
    rng = random.Random(3)
    names = [f"s{i}" for i in range(60)]
    deps = {n: rng.sample(names[:i], k=min(i, rng.randint(0, 3))) for i, n in enumerate(names)}
    lay = layout(names, deps)
    assert _no_overlap(lay)
    assert all(b.x >= 0 and b.y >= 0 and b.x + b.w <= lay.width and b.y + b.h <= lay.height for b in lay.nodes.values())
    chain = layout(["a", "b", "c"], {"b": ["a"], "c": ["b"]})
    assert len({round(b.y, 3) for b in chain.nodes.values()}) == 1


def test_a_cycle_does_not_hang_and_is_drawn_with_a_reversed_edge():
    lay = layout(["a", "b", "c"], {"a": ["c"], "b": ["a"], "c": ["b"]})
    assert set(lay.nodes) == {"a", "b", "c"}
    assert sum(e.reversed for e in lay.edges) == 1


def test_unknown_and_self_dependencies_are_ignored_and_independent_steps_share_a_layer():
    lay = layout(["a", "b"], {"a": ["a", "ghost"]})
    assert lay.edges == ()
    assert lay.nodes["a"].layer == lay.nodes["b"].layer == 0
    assert layout([], {}).nodes == {}


def test_a_thousand_step_graph_lays_out_quickly():
    rng = random.Random(1)
    names = [f"step_{i}" for i in range(1000)]
    deps = {n: ([names[i - 1]] if i else []) + ([names[rng.randrange(i)]] if i > 5 and i % 3 == 0 else []) for i, n in enumerate(names)}
    started = time.perf_counter()
    lay = layout(names, deps)
    assert len(lay.nodes) == 1000
    # NOTE: a generous bound for a shared 2-core box; typical is well under 0.5 s.
    assert time.perf_counter() - started < 5.0
