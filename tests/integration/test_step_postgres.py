"""postgres steps against a real PostgreSQL server: queries, scripts, params, formats, errors,
transactions, timeouts, stop, import."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from helpers import EXAMPLES, run_dagu, wait_for
from servers import pg_dsn
from step_runs import err, nodes, out, spawn_start, start, status, stop, wait_running, write

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def schema():
    """A fresh schema for one test, dropped afterwards; yields (dsn, schema)."""
    dsn = pg_dsn()
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    yield dsn, name
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {name} CASCADE")


def _dag(tmp_path, schema, body: str):
    dsn, name = schema
    dag = f"pg_{uuid.uuid4().hex[:8]}"
    header = f"""
        type: graph
        env:
          - DSN: "{dsn}"
          - S: {name}
    """
    return dag, write(tmp_path, dag, header + body)


def test_script_and_queries_with_params_in_every_output_format(tmp_path, schema):
    dag, path = _dag(tmp_path, schema, """
        steps:
          - name: setup
            type: postgres
            config: {dsn: "${DSN}"}
            script: |
              create table ${S}.items (id int primary key, name text, price numeric(6,2));
              insert into ${S}.items values (1, 'a;b', 1.50), (2, null, 2), (3, 'c', 3.25);
              -- a comment-only tail is not a statement
          - name: named
            depends: setup
            type: postgres
            config:
              dsn: "${DSN}"
              params: {min: 2}
            command: select id, name from ${S}.items where id >= :min and name is null order by id
            output: NAMED
          - name: positional_json
            depends: setup
            type: postgres
            config: {dsn: "${DSN}", params: [1, 3], output_format: json}
            command: select id, price, '100%' as pct from ${S}.items where id in ($1, $2) order by id
          - name: csv
            depends: setup
            type: postgres
            config: {dsn: "${DSN}", output_format: csv, null_string: "NULL", max_rows: 2}
            command: select id, name from ${S}.items order by id
          - name: csv_no_headers
            depends: setup
            type: postgres
            config: {dsn: "${DSN}", output_format: csv, headers: false}
            command: select count(*) from ${S}.items
    """)
    result = start(tmp_path, path)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = status(tmp_path, dag)
    n = nodes(doc)
    assert [json.loads(line) for line in out(n["named"]).splitlines()] == [{"id": 2, "name": None}]
    assert n["named"]["outputs"] == {"NAMED": '{"id":2,"name":null}'}
    assert json.loads(out(n["positional_json"])) == [{"id": 1, "price": 1.5, "pct": "100%"}, {"id": 3, "price": 3.25, "pct": "100%"}]
    assert out(n["csv"]).splitlines() == ["id,name", "1,a;b", "2,NULL"]
    assert "max_rows=2" in err(n["csv"])
    assert out(n["csv_no_headers"]).strip() == "3"


def test_sql_error_names_the_statement_and_the_dsn_and_a_transaction_rolls_back(tmp_path, schema):
    dag, path = _dag(tmp_path, schema, """
        steps:
          - name: setup
            type: postgres
            config: {dsn: "${DSN}"}
            command: create table ${S}.t (v int)
          - name: in_transaction
            depends: setup
            type: postgres
            continue_on: {failure: true}
            config: {dsn: "${DSN}", transaction: true}
            script: |
              insert into ${S}.t values (1);
              insert into ${S}.t values ('not a number');
          - name: autocommit
            depends: in_transaction
            continue_on: {failure: true}
            type: postgres
            config: {dsn: "${DSN}"}
            script: |
              insert into ${S}.t values (2);
              select * from ${S}.missing_table;
          - name: count
            depends: autocommit
            type: postgres
            config: {dsn: "${DSN}", output_format: csv, headers: false}
            command: select coalesce(sum(v), 0) from ${S}.t
          - name: missing_param
            type: postgres
            config: {dsn: "${DSN}", params: {a: 1}}
            command: select :b
    """)
    assert start(tmp_path, path).returncode == 1
    n = nodes(status(tmp_path, dag))
    error = n["in_transaction"]["error"]
    assert "statement 2 (insert into" in error and "invalid input syntax" in error
    assert pg_dsn().split("@")[1] in error
    assert "statement 2 (select * from" in n["autocommit"]["error"] and "does not exist" in n["autocommit"]["error"]
    assert out(n["count"]).strip() == "2"  # the rolled-back 1 is gone, the autocommitted 2 stays
    assert "uses :b but params has no 'b'" in n["missing_param"]["error"]


def test_connection_failure_hides_the_password(tmp_path, schema):
    dag, path = _dag(tmp_path, schema, """
        steps:
          - name: refused
            type: postgres
            config: {dsn: "postgresql://dagu:s3cret-pw@127.0.0.1:1/postgres"}
            command: select 1
    """)
    assert start(tmp_path, path).returncode == 1
    error = nodes(status(tmp_path, dag))["refused"]["error"]
    assert "cannot connect to postgresql://dagu:***@127.0.0.1:1/postgres" in error
    assert "s3cret-pw" not in error


def test_query_timeout_and_step_timeout_cancel_a_long_query(tmp_path, schema):
    dag, path = _dag(tmp_path, schema, """
        steps:
          - name: config_timeout
            type: postgres
            config: {dsn: "${DSN}", timeout: 1}
            command: select pg_sleep(30)
          - name: step_timeout
            type: postgres
            timeout_sec: 1
            config: {dsn: "${DSN}"}
            command: select pg_sleep(30)
    """)
    began = time.monotonic()
    assert start(tmp_path, path).returncode == 1
    assert time.monotonic() - began < 20
    n = nodes(status(tmp_path, dag))
    assert "timed out after 1s (config timeout)" in n["config_timeout"]["error"]
    assert n["step_timeout"]["exitCode"] == 124


def test_dagu_stop_cancels_the_running_query(tmp_path, schema):
    marker = f"dagu_stop_{uuid.uuid4().hex[:8]}"
    dag, path = _dag(tmp_path, schema, f"""
        steps:
          - name: sleepy
            type: postgres
            config: {{dsn: "${{DSN}}"}}
            command: select pg_sleep(30) as {marker}
    """)
    proc = spawn_start(tmp_path, path)
    wait_running(tmp_path, dag, "sleepy")
    wait_for(lambda: _active(marker), "the query to reach the server")
    began = time.monotonic()
    assert stop(tmp_path, dag, proc) == 0
    assert time.monotonic() - began < 15
    assert nodes(status(tmp_path, dag))["sleepy"]["statusLabel"] == "aborted"
    wait_for(lambda: not _active(marker), "the query to be cancelled", timeout=10)


def test_import_csv_into_a_table_and_write_results_to_a_file(tmp_path, schema):
    (tmp_path / "people.csv").write_text("id,name,age\n1,ann,30\n2,bob,\n3,cy,41\n")
    (tmp_path / "more.jsonl").write_text('{"id": 3, "name": "cyd", "age": 42}\n{"id": 4, "name": "dee", "age": 5}\n')
    dag, path = _dag(tmp_path, schema, """
        steps:
          - name: setup
            type: postgres
            config: {dsn: "${DSN}"}
            command: create table ${S}.people (id int primary key, name text, age int)
          - name: import_csv
            depends: setup
            type: postgres
            config:
              dsn: "${DSN}"
              import: {input_file: people.csv, table: "${S}.people"}
          - name: import_jsonl
            depends: import_csv
            action: postgres.import
            with:
              dsn: "${DSN}"
              import: {input_file: more.jsonl, table: "${S}.people", on_conflict: replace, conflict_target: [id]}
          - name: export
            depends: import_jsonl
            type: postgres
            config: {dsn: "${DSN}", output_format: csv, output_file: out/people.csv}
            command: select id, name, age from ${S}.people order by id
    """)
    result = start(tmp_path, path)
    assert result.returncode == 0, result.stdout + result.stderr
    n = nodes(status(tmp_path, dag))
    assert json.loads(out(n["import_csv"]))["rows"] == 3
    assert (tmp_path / "out" / "people.csv").read_text().splitlines() == [
        "id,name,age", "1,ann,30", "2,bob,null", "3,cyd,42", "4,dee,5",
    ]
    assert out(n["export"]) == ""


def test_postgres_example_runs(tmp_path, schema):
    result = run_dagu("start", str(EXAMPLES / "steps" / "postgres.yaml"), home=tmp_path,
                      env={"PG_DSN": schema[0], "PG_SCHEMA": schema[1]})
    assert result.returncode == 0, result.stdout + result.stderr


def _active(marker: str) -> bool:
    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "select 1 from pg_stat_activity where state = 'active' and query like %s and pid <> pg_backend_pid()",
            (f"%{marker}%",),
        ).fetchall()
    return bool(rows)
