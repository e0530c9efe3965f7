"""The committed gRPC stubs are what the committed protos generate, and the routing rules hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.coordinator import matches
from transports.grpc.codegen import generate
from transports.grpc.options import parse_labels

STUBS = Path(__file__).resolve().parents[2] / "transports" / "grpc"


def test_committed_stubs_match_a_fresh_generation_from_the_protos(tmp_path):
    fresh = generate(tmp_path)
    assert {p.name for p in fresh} >= {"coordinator_pb2.py", "coordinator_pb2_grpc.py", "health_pb2.py", "health_pb2_grpc.py"}
    stale = [p.name for p in fresh if p.read_bytes() != (STUBS / p.name).read_bytes()]
    assert not stale, f"stale stubs {stale}: run `python -m transports.grpc.codegen`"


def test_labels_parse_from_the_flag_and_variable_form():
    assert parse_labels("zone=eu, gpu=true,") == (("gpu", "true"), ("zone", "eu"))
    assert parse_labels({"a": 1}) == (("a", "1"),)
    with pytest.raises(ValueError, match="expected key=value"):
        parse_labels("gpu")


def test_a_selector_matches_only_workers_with_every_label_equal():
    labels = (("gpu", "true"), ("zone", "eu"))
    assert matches((), labels)
    assert matches((("zone", "eu"),), labels)
    assert not matches((("zone", "us"),), labels)
    assert not matches((("pool", "a"),), labels)
