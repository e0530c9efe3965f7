"""sqlite steps against real database files: scripts, params, formats, errors, timeout, stop, import."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid

from helpers import EXAMPLES, run_dagu
from step_runs import nodes, out, spawn_start, start, status, stop, wait_running, write

FOREVER = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def _dag(tmp_path, body: str):
    dag = f"lite_{uuid.uuid4().hex[:8]}"
    return dag, write(tmp_path, dag, "\n        type: graph" + body)


def test_script_params_formats_and_errors(tmp_path):
    dag, path = _dag(tmp_path, """
        steps:
          - name: setup
            type: sqlite
            config: {dsn: app.db}
            script: |
              create table items (id integer primary key, name text, note text);
              create trigger stamp after insert on items begin update items set note = 'new'; end;
              insert into items (id, name) values (1, 'x;y'), (2, null);
          - name: positional
            depends: setup
            type: sqlite
            config: {dsn: app.db, params: [1]}
            command: select id, name, note from items where id = ?
          - name: named_csv
            depends: setup
            type: sqlite
            config: {dsn: "sqlite:app.db", params: {id: 2}, output_format: csv, null_string: "-"}
            command: select id, name from items where id >= :id
          - name: json
            depends: setup
            type: sqlite
            config: {dsn: app.db, output_format: json}
            command: select count(*) as n from items
          - name: broken
            depends: setup
            type: sqlite
            config: {dsn: app.db}
            command: select * from nope
    """)
    assert start(tmp_path, path).returncode == 1
    n = nodes(status(tmp_path, dag))
    assert json.loads(out(n["positional"])) == {"id": 1, "name": "x;y", "note": "new"}
    assert out(n["named_csv"]).splitlines() == ["id,name", "2,-"]
    assert json.loads(out(n["json"])) == [{"n": 2}]
    assert "statement 1 (select * from nope) failed on app.db: no such table: nope" in n["broken"]["error"]


def test_config_timeout_interrupts_and_step_timeout_reports_124(tmp_path):
    dag, path = _dag(tmp_path, f"""
        steps:
          - name: config_timeout
            type: sqlite
            config: {{dsn: t.db, timeout: 1}}
            command: "{FOREVER}"
          - name: step_timeout
            type: sqlite
            timeout_sec: 1
            config: {{dsn: t.db}}
            command: "{FOREVER}"
    """)
    began = time.monotonic()
    assert start(tmp_path, path).returncode == 1
    assert time.monotonic() - began < 20
    n = nodes(status(tmp_path, dag))
    assert "timed out after 1s (config timeout)" in n["config_timeout"]["error"]
    assert n["step_timeout"]["exitCode"] == 124


def test_dagu_stop_interrupts_the_running_query(tmp_path):
    dag, path = _dag(tmp_path, f"""
        steps:
          - name: forever
            type: sqlite
            config: {{dsn: t.db, timeout: 0}}
            command: "{FOREVER}"
    """)
    proc = spawn_start(tmp_path, path)
    wait_running(tmp_path, dag, "forever")
    began = time.monotonic()
    assert stop(tmp_path, dag, proc) == 0
    assert time.monotonic() - began < 15
    assert nodes(status(tmp_path, dag))["forever"]["statusLabel"] == "aborted"


def test_import_tsv_with_ignore_on_conflict(tmp_path):
    (tmp_path / "rows.tsv").write_text("id\tname\n1\ta\n2\tb\n2\tdup\n")
    db = tmp_path / "imp.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table t (id integer primary key, name text)")
    dag, path = _dag(tmp_path, """
        steps:
          - name: load
            type: sqlite
            config:
              dsn: imp.db
              import: {input_file: rows.tsv, table: t, on_conflict: ignore}
          - name: strict
            depends: load
            type: sqlite
            config:
              dsn: imp.db
              import: {input_file: rows.tsv, table: t}
    """)
    assert start(tmp_path, path).returncode == 1
    n = nodes(status(tmp_path, dag))
    assert json.loads(out(n["load"]))["rows"] == 3
    assert "UNIQUE constraint failed" in n["strict"]["error"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("select id, name from t order by id").fetchall() == [(1, "a"), (2, "b")]


def test_sqlite_example_runs(tmp_path):
    result = run_dagu("start", str(EXAMPLES / "steps" / "sqlite.yaml"), home=tmp_path, env={"SQLITE_DB": str(tmp_path / "ex.db")})
    assert result.returncode == 0, result.stdout + result.stderr
