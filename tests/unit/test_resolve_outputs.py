"""outputs.json keys and deterministic sub-DAG run IDs (dag-spec 3.7, 3.15)."""

from __future__ import annotations

import hashlib

import pytest

from dagu.resolve import base58_encode, output_key, sub_dag_run_id


@pytest.mark.parametrize(
    "name, key, expected",
    [
        ("RESULT_URL", None, "resultUrl"),
        ("RESULT", None, "result"),
        ("TOTAL_ROW_COUNT", None, "totalRowCount"),
        ("_LEADING__DOUBLE_", None, "leadingDouble"),
        ("myVar", None, "myvar"),
        ("$OUT", None, "out"),
        ("RESULT_URL", "customKey", "customKey"),
        ("RESULT_URL", "", "resultUrl"),
        ("A_B_C", None, "aBC"),
    ],
)
def test_output_key(name, key, expected):
    assert output_key(name, key) == expected


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"", ""),
        (b"\0", "1"),
        (b"\0\0\x01", "112"),
        (b"hello world", "StV1DL6CwTryKyV"),
        (bytes([0xFF] * 4), "7YXq9G"),
    ],
)
def test_base58_encode(data, expected):
    assert base58_encode(data) == expected


def test_sub_dag_run_id_is_base58_of_sha256_of_parent_step_params():
    digest = hashlib.sha256(b"run-1:fanout:ITEM=a").digest()
    assert sub_dag_run_id("run-1", "fanout", "ITEM=a") == base58_encode(digest)


def test_sub_dag_run_id_is_deterministic_and_sensitive_to_each_part():
    first = sub_dag_run_id("run-1", "step", "A=1")
    assert first == sub_dag_run_id("run-1", "step", "A=1")
    others = {sub_dag_run_id("run-2", "step", "A=1"), sub_dag_run_id("run-1", "other", "A=1"),
              sub_dag_run_id("run-1", "step", "A=2")}  # fmt: skip
    assert first not in others and len(others) == 3
    assert set(first) <= set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
