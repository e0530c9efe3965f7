"""redis steps against a real Redis server: commands, hashes, lists, Lua, pipelines, errors, timeout, stop."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from helpers import EXAMPLES, run_dagu, wait_for
from servers import redis_port
from step_runs import nodes, out, spawn_start, start, status, stop, wait_running, write

redis = pytest.importorskip("redis")


@pytest.fixture
def prefix():
    """A unique key prefix; its keys are deleted afterwards. Yields (port, prefix)."""
    port = redis_port()
    pre = f"t{uuid.uuid4().hex[:8]}:"
    yield port, pre
    client = redis.Redis(port=port)
    keys = list(client.scan_iter(f"{pre}*"))
    if keys:
        client.delete(*keys)
    client.close()


def _dag(tmp_path, prefix, body: str):
    port, pre = prefix
    dag = f"rd_{uuid.uuid4().hex[:8]}"
    header = f"""
        type: graph
        env:
          - PORT: "{port}"
          - P: "{pre}"
    """
    return dag, write(tmp_path, dag, header + body)


def test_commands_hashes_lists_lua_and_pipeline_print_json(tmp_path, prefix):
    dag, path = _dag(tmp_path, prefix, """
        steps:
          - name: set
            type: redis
            config: {host: 127.0.0.1, port: "${PORT}", command: set, key: "${P}k", value: hello, ttl: 100}
          - name: get
            depends: set
            type: redis
            config: {url: "redis://127.0.0.1:${PORT}/0", command: get, key: "${P}k", output_format: raw}
            output: VALUE
          - name: ttl
            depends: set
            type: redis
            config: {url: "redis://127.0.0.1:${PORT}"}
            command: TTL ${P}k
          - name: hset
            action: redis.hset
            with: {url: "redis://127.0.0.1:${PORT}", key: "${P}h", fields: {a: 1, b: two}}
          - name: hgetall
            depends: hset
            type: redis
            config: {url: "redis://127.0.0.1:${PORT}", command: hgetall, key: "${P}h"}
          - name: push
            type: redis
            config: {url: "redis://127.0.0.1:${PORT}", command: rpush, key: "${P}l", values: [x, y, z]}
          - name: range
            depends: push
            type: redis
            config: {url: "redis://127.0.0.1:${PORT}", command: lrange, key: "${P}l", start: 0, stop: 1}
          - name: lua
            depends: set
            type: redis
            config: {url: "redis://127.0.0.1:${PORT}", keys: ["${P}k"], args: [world]}
            script: return redis.call('GET', KEYS[1]) .. ' ' .. ARGV[1]
          - name: pipeline
            type: redis
            config:
              url: "redis://127.0.0.1:${PORT}"
              pipeline:
                - [INCR, "${P}n"]
                - "INCRBY ${P}n 4"
                - {command: get, key: "${P}n"}
    """)
    result = start(tmp_path, path)
    assert result.returncode == 0, result.stdout + result.stderr
    n = nodes(status(tmp_path, dag))
    assert out(n["set"]).strip() == "true"
    assert n["get"]["outputs"] == {"VALUE": "hello"}
    assert 0 < json.loads(out(n["ttl"])) <= 100
    assert json.loads(out(n["hset"])) == 2
    assert json.loads(out(n["hgetall"])) == {"a": "1", "b": "two"}
    assert json.loads(out(n["range"])) == ["x", "y"]
    assert json.loads(out(n["lua"])) == "hello world"
    assert json.loads(out(n["pipeline"])) == [1, 5, "5"]


def test_wrong_command_wrong_type_and_unreachable_server_fail_clearly(tmp_path, prefix):
    dag, path = _dag(tmp_path, prefix, """
        steps:
          - name: unknown
            type: redis
            config: {url: "redis://127.0.0.1:${PORT}"}
            command: NOSUCHCMD a b
          - name: wrongtype
            type: redis
            config: {url: "redis://127.0.0.1:${PORT}"}
            script: redis.call('SET', KEYS[1], 'v'); return redis.call('LPUSH', KEYS[1], 'x')
          - name: unreachable
            type: redis
            config: {url: "redis://:hunter2@127.0.0.1:1/0", command: get, key: x}
    """)
    assert start(tmp_path, path).returncode == 1
    n = nodes(status(tmp_path, dag))
    assert "command 'NOSUCHCMD a b' failed" in n["unknown"]["error"] and "unknown command" in n["unknown"]["error"]
    assert "script failed" in n["wrongtype"]["error"]
    assert "cannot talk to redis://:***@127.0.0.1:1/0" in n["unreachable"]["error"]
    assert "hunter2" not in n["unreachable"]["error"]


def test_blocking_command_is_cut_by_timeout_and_by_stop(tmp_path, prefix):
    port, pre = prefix
    dag, path = _dag(tmp_path, prefix, """
        steps:
          - name: config_timeout
            type: redis
            config: {url: "redis://127.0.0.1:${PORT}", timeout: 1}
            command: BLPOP ${P}empty 0
          - name: step_timeout
            type: redis
            timeout_sec: 1
            config: {url: "redis://127.0.0.1:${PORT}"}
            command: BLPOP ${P}empty 0
    """)
    began = time.monotonic()
    assert start(tmp_path, path).returncode == 1
    assert time.monotonic() - began < 20
    n = nodes(status(tmp_path, dag))
    assert "timed out" in n["config_timeout"]["error"] and "config timeout 1s" in n["config_timeout"]["error"]
    assert n["step_timeout"]["exitCode"] == 124

    dag, path = _dag(tmp_path, prefix, """
        steps:
          - name: blocked
            type: redis
            config: {url: "redis://127.0.0.1:${PORT}", timeout: 60}
            command: BLPOP ${P}empty 0
    """)
    proc = spawn_start(tmp_path, path)
    wait_running(tmp_path, dag, "blocked")
    client = redis.Redis(port=port)
    wait_for(lambda: any(c.get("cmd") == "blpop" for c in client.client_list()), "BLPOP to block on the server")
    began = time.monotonic()
    assert stop(tmp_path, dag, proc) == 0
    assert time.monotonic() - began < 15
    assert nodes(status(tmp_path, dag))["blocked"]["statusLabel"] == "aborted"
    wait_for(lambda: not any(c.get("cmd") == "blpop" for c in client.client_list()), "the blocked client to go away", timeout=10)
    client.close()


def test_redis_example_runs(tmp_path, prefix):
    port, pre = prefix
    result = run_dagu("start", str(EXAMPLES / "steps" / "redis.yaml"), home=tmp_path,
                      env={"REDIS_PORT": str(port), "REDIS_PREFIX": pre})
    assert result.returncode == 0, result.stdout + result.stderr
