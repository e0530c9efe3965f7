"""Pure parts of the docker, sql, redis and s3 step types: SQL splitting and binding, argv and
volume handling, redis argv, row formats, password hiding, the missing-library error."""

from __future__ import annotations

import re

import pytest

from dagu.steps.docker import RunSpec, command_argv, container_body, env_list, parse_pull_policy, volume_binds
from dagu.steps.redis import command_args, to_json
from dagu.steps.s3 import connection_settings
from dagu.steps.service import StepFailure, redact, require
from dagu.steps.sql import RowWriter
from dagu.steps.sqltext import BindError, bind, split_statements


def test_statements_split_outside_quotes_comments_and_dollar_quotes():
    text = "select 'a;b'; -- x;\nselect \"c;d\" /* ; */; do $fn$ begin; end $fn$;\n-- only a comment"
    assert split_statements(text, "postgres") == ["select 'a;b'", '-- x;\nselect "c;d" /* ; */', "do $fn$ begin; end $fn$"]


def test_sqlite_trigger_bodies_stay_one_statement():
    text = "create trigger t after insert on x begin update x set a = 1; update x set b = 2; end; select 1"
    assert split_statements(text, "sqlite") == [
        "create trigger t after insert on x begin update x set a = 1; update x set b = 2; end", "select 1",
    ]


def test_named_and_positional_params_become_driver_placeholders():
    assert bind("select :a, :a::text, ':a', 5 % 2", {"a": 1}, "postgres") == (
        "select %(a)s, %(a)s::text, ':a', 5 %% 2", {"a": 1},
    )
    assert bind("select $2, $1", ["x", "y"], "postgres") == ("select %(p2)s, %(p1)s", {"p2": "y", "p1": "x"})
    counter = [0]
    assert bind("insert into t values (?, ?)", [1, 2, 3], "sqlite", counter) == ("insert into t values (:q1, :q2)", {"q1": 1, "q2": 2})
    assert bind("select ?", [1, 2, 3], "sqlite", counter) == ("select :q3", {"q3": 3})


def test_statements_without_params_are_left_untouched():
    assert bind("select '100%', :x", None, "postgres") == ("select '100%', :x", None)


@pytest.mark.parametrize(("sql", "params", "message"), [
    ("select :b", {"a": 1}, "uses :b but params has no 'b'"),
    ("select $3", [1], "uses $3 but params has 1 value(s)"),
])
def test_a_placeholder_without_a_value_is_an_error(sql, params, message):
    with pytest.raises(BindError, match=re.escape(message)):
        bind(sql, params, "postgres")


def test_rows_as_jsonl_json_and_csv():
    chunks: list[bytes] = []
    for fmt in ("jsonl", "json", "csv"):
        writer = RowWriter(chunks.append, fmt, headers=True, null_string="NA")
        writer.result_set(["a", "b"])
        writer.row([1, None])
        writer.row(["x,y", True])
        writer.finish()
    assert b"".join(chunks).decode().splitlines() == [
        '{"a":1,"b":null}', '{"a":"x,y","b":true}',
        '[{"a":1,"b":null},{"a":"x,y","b":true}]',
        "a,b", "1,NA", '"x,y",true',
    ]


def test_passwords_are_hidden_in_urls_and_key_value_dsns():
    assert redact("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("host=h password=secret user=u") == "host=h password=*** user=u"
    assert redact("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


def test_a_missing_client_library_names_the_extra_to_install():
    with pytest.raises(StepFailure, match=r"pip install 'dagu\[steps\]'"):
        require("dagu_no_such_module", "postgres", "psycopg")


def test_docker_commands_are_argvs_and_volumes_resolve_relative_paths():
    assert command_argv("echo 'a b' && c") == ["echo", "a b", "&&", "c"]
    assert command_argv("echo $X", ("sh", "-c")) == ["sh", "-c", "echo $X"]
    assert volume_binds(["./d:/w", "/abs:/a:ro", "named:/n", "sub/dir:/s:rw"], "/base") == [
        "/base/d:/w", "/abs:/a:ro", "named:/n", "/base/sub/dir:/s:rw",
    ]
    with pytest.raises(StepFailure, match="bad volume"):
        volume_binds(["/only-host"], "/base")


@pytest.mark.parametrize(("value", "policy"), [(None, "missing"), (True, "always"), (False, "never"), ("Never", "never"), ("fallback", "missing")])
def test_pull_policy_spellings(value, policy):
    assert parse_pull_policy(value, "missing") == policy


def test_raw_container_and_host_objects_merge_over_our_settings():
    spec = RunSpec(image="img", env=("A=1",), volumes=("/h:/c",), network="host",
                   raw_container={"env": ["B=2"], "workingDir": "/w"}, raw_host={"binds": ["/x:/y"], "auto_remove": True})
    body = container_body(spec, cmd=["true"], entrypoint=None, cwd="/")
    assert body["Env"] == ["A=1", "B=2"] and body["WorkingDir"] == "/w" and body["Cmd"] == ["true"]
    assert body["HostConfig"] == {"Binds": ["/h:/c", "/x:/y"], "NetworkMode": "host"}  # AutoRemove is ours to do
    assert env_list({"K": True}) == ("K=true",)


def test_redis_argv_from_config_keys():
    assert command_args("set", {"key": "k", "value": 5, "ttl": 10, "nx": True}) == ["SET", "k", 5, "EX", 10, "NX"]
    assert command_args("hset", {"key": "h", "fields": {"a": 1}}) == ["HSET", "h", "a", 1]
    assert command_args("zadd", {"key": "z", "members": {"m": 2}}) == ["ZADD", "z", 2, "m"]
    assert command_args("lrange", {"key": "l"}) == ["LRANGE", "l", 0, -1]
    assert command_args("del", {"keys": ["a", "b"]}) == ["DEL", "a", "b"]
    assert to_json({"a": "1"}) == '{"a":"1"}' and to_json("x", "raw") == "x" and to_json(None) == "null"


def test_s3_step_config_overrides_the_dag_block():
    merged = connection_settings({"endpoint": "${E}", "accessKeyId": "k", "bucket": "dag"}, {"bucket": "step"}, {"E": "http://h"})
    assert merged == {"endpoint": "http://h", "access_key_id": "k", "bucket": "step"}
