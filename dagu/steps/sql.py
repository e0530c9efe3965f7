"""The `postgres` and `sqlite` step types: run queries and scripts, or import a file into a table.

Owns one SQL attempt (dag-spec 4.6): the connection from `dsn`, statements from the step
command, script or `query`, bind parameters, a transaction or autocommit, the query
timeout, cancelling the running statement on stop, and writing result rows as jsonl,
json or csv to stdout or `output_file`. `import` loads CSV/TSV/JSONL rows into a table.
Splitting SQL text and binding placeholders is `dagu.steps.sqltext`.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import io
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson

from dagu.steps.base import Attempt
from dagu.steps.service import ServiceExecutor, StepFailure, StepLogs, config_bool, config_int, redact, require
from dagu.steps.sqltext import BindError, bind, split_statements

__all__ = ["PostgresExecutor", "SqliteExecutor", "RowWriter", "read_import_rows"]

logger = logging.getLogger(__name__)

_DEFAULT_TIMEOUT_S = 60
_FETCH_BATCH = 500
_SNIPPET = 200
_ISOLATION = {"read_uncommitted": "READ_UNCOMMITTED", "read_committed": "READ_COMMITTED",
              "repeatable_read": "REPEATABLE_READ", "serializable": "SERIALIZABLE"}  # fmt: skip


class RowWriter:
    """Result rows in the chosen format: jsonl (one object a line), json (one array) or csv."""

    def __init__(self, write, output_format: str = "jsonl", headers: bool = True, null_string: str = "null") -> None:
        if output_format not in ("jsonl", "json", "csv"):
            raise StepFailure(f"unknown output_format {output_format!r}; use jsonl, json or csv")
        self._write = write
        self._format = output_format
        self._headers = headers
        self._null = null_string
        self._json_rows: list[dict[str, Any]] = []
        self.count = 0

    def result_set(self, columns: Sequence[str]) -> None:
        """A new statement's rows begin (csv prints its header line here)."""
        self._columns = list(columns)
        if self._format == "csv" and self._headers:
            self._csv_line(self._columns)

    def row(self, values: Sequence[Any]) -> None:
        self.count += 1
        if self._format == "csv":
            self._csv_line([self._null if v is None else _text(v) for v in values])
            return
        obj = dict(zip(self._columns, values))
        if self._format == "jsonl":
            self._write(orjson.dumps(obj, default=_json_default, option=orjson.OPT_NON_STR_KEYS) + b"\n")
        else:
            self._json_rows.append(obj)

    def finish(self) -> None:
        if self._format == "json":
            self._write(orjson.dumps(self._json_rows, default=_json_default, option=orjson.OPT_NON_STR_KEYS) + b"\n")

    def _csv_line(self, values: Sequence[str]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(values)
        self._write(buf.getvalue().encode())


class _SqlExecutor(ServiceExecutor):
    """What postgres and sqlite share: reading the config, statements, output, import."""

    dialect = "sql"

    def __init__(self, attempt: Attempt) -> None:
        super().__init__(attempt)
        self._conn: Any = None
        self._conn_lock = threading.Lock()
        self.dsn = str(self.config.get("dsn") or "")
        self.timeout_s = config_int(self.config.get("timeout"), _DEFAULT_TIMEOUT_S, "timeout")

    def execute(self, logs: StepLogs) -> int:
        if not self.dsn:
            raise StepFailure(f"{self.type_name} steps need `dsn` in config")
        spec = self.config.get("import")
        action = str(self.attempt.step.extras.get("action") or "")
        if action.endswith(".import") and not spec:
            raise StepFailure(f"{action} needs an `import:` mapping (input_file, table, ...)")
        conn = self.connect()
        with self._conn_lock:
            self._conn = conn
        try:
            if self.is_ending:
                return 1
            if spec:
                return self._import(conn, spec, logs)
            return self._queries(conn, logs)
        finally:
            with self._conn_lock:
                self._conn = None
            self.close(conn)

    # -- driver specifics --------------------------------------------------------

    def connect(self) -> Any:
        raise NotImplementedError

    def close(self, conn: Any) -> None:
        conn.close()

    def begin(self, conn: Any) -> None:
        raise NotImplementedError

    def run_statement(self, conn: Any, sql: str, values: dict[str, Any] | None) -> Any:
        """Execute; return a cursor whose `description` says whether rows came back."""
        raise NotImplementedError

    def failure(self, exc: Exception, where: str) -> StepFailure:
        raise NotImplementedError

    def insert_sql(self, table: str, columns: Sequence[str], on_conflict: str, target: Sequence[str]) -> str:
        raise NotImplementedError

    # -- queries -----------------------------------------------------------------

    def _queries(self, conn: Any, logs: StepLogs) -> int:
        cfg = self.config
        statements = split_statements(self._sql_text(), self.dialect)
        if not statements:
            raise StepFailure(f"{self.type_name}: no SQL to run; give the step a `command`, `script` or config `query`")
        params = cfg.get("params")
        if params is not None and not isinstance(params, (Mapping, list)):
            raise StepFailure(f"{self.type_name}: params must be a mapping (for :name) or a list (for $1), got {params!r}")
        out_file = self._open_output_file()
        writer = RowWriter(out_file.write if out_file else logs.out, str(cfg.get("output_format") or "jsonl"),
                           config_bool(cfg.get("headers"), True), str(cfg.get("null_string", "null")))
        max_rows = config_int(cfg.get("max_rows"), 0, "max_rows")
        transaction = config_bool(cfg.get("transaction"))
        try:
            if transaction:
                self.begin(conn)
            counter = [0]
            for index, statement in enumerate(statements, 1):
                if self.is_ending:
                    break
                self._one(conn, index, statement, params, counter, writer, max_rows, logs)
            if transaction:
                conn.commit()
            writer.finish()
        except BaseException:
            if transaction:
                self._rollback(conn)
            raise
        finally:
            if out_file is not None:
                out_file.close()
        return 0

    def _one(self, conn, index, statement, params, counter, writer, max_rows, logs) -> None:
        where = f"statement {index} ({_snippet(statement)})"
        try:
            sql, values = bind(statement, params, self.dialect, counter)
        except BindError as exc:
            raise StepFailure(f"{self.type_name}: {where}: {exc}") from exc
        try:
            cur = self.run_statement(conn, sql, values)
            if cur.description is None:
                if cur.rowcount is not None and cur.rowcount >= 0:
                    logs.err(f"statement {index}: {cur.rowcount} row(s) affected\n")
                return
            writer.result_set([d[0] for d in cur.description])
            written = 0
            while rows := cur.fetchmany(_FETCH_BATCH):
                for row in rows:
                    if max_rows and written >= max_rows:
                        logs.err(f"statement {index}: output stopped at max_rows={max_rows}\n")
                        return
                    writer.row(row)
                    written += 1
        except StepFailure:
            raise
        except Exception as exc:
            raise self.failure(exc, where) from exc

    def _sql_text(self) -> str:
        parts = []
        if self.config.get("query"):
            parts.append(str(self.config["query"]))
        parts.extend(self.attempt.commands)
        if self.attempt.script:
            parts.append(self.attempt.script)
        return ";\n".join(parts)

    def _open_output_file(self):
        path = self.config.get("output_file")
        if not path:
            return None
        path = os.path.join(self.attempt.cwd, str(path))
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            return open(path, "wb")
        except OSError as exc:
            raise StepFailure(f"{self.type_name}: cannot write output_file {path}: {exc}") from exc

    def _rollback(self, conn: Any) -> None:
        try:
            conn.rollback()
        except Exception as exc:  # the connection may be broken already
            logger.debug("%s: rollback failed: %s", self.label, exc)

    # -- import ------------------------------------------------------------------

    def _import(self, conn: Any, spec: Mapping[str, Any], logs: StepLogs) -> int:
        table = str(spec.get("table") or "")
        source = str(spec.get("input_file") or "")
        if not table or not source:
            raise StepFailure(f"{self.type_name} import needs `table` and `input_file`")
        path = os.path.join(self.attempt.cwd, source)
        columns, rows = read_import_rows(path, spec)
        batch_size = config_int(spec.get("batch_size"), 1000, "import.batch_size")
        on_conflict = str(spec.get("on_conflict") or "error")
        if on_conflict not in ("error", "ignore", "replace"):
            raise StepFailure(f"import.on_conflict: expected error, ignore or replace, got {on_conflict!r}")
        target = [str(c) for c in _as_list(spec.get("conflict_target"))]
        if config_bool(spec.get("dry_run")):
            count = sum(1 for _ in rows)
            logs.out(orjson.dumps({"table": table, "rows": count, "dry_run": True}) + b"\n")
            return 0
        sql = self.insert_sql(table, columns, on_conflict, target)
        count = 0
        try:
            self.begin(conn)
            batch: list[Sequence[Any]] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= batch_size:
                    count += self._insert(conn, sql, batch, path)
                    batch = []
            if batch:
                count += self._insert(conn, sql, batch, path)
            conn.commit()
        except BaseException:
            self._rollback(conn)
            raise
        logs.out(orjson.dumps({"table": table, "rows": count, "input_file": source}) + b"\n")
        return 0

    def _insert(self, conn: Any, sql: str, batch: list[Sequence[Any]], path: str) -> int:
        if self.is_ending:
            raise StepFailure(f"{self.type_name}: import interrupted")
        try:
            cur = conn.cursor()
            cur.executemany(sql, batch)
        except Exception as exc:
            raise self.failure(exc, f"import of {path}") from exc
        return len(batch)

    def interrupt(self, signal_name: str, grace_s: float) -> None:
        with self._conn_lock:
            conn = self._conn
        if conn is not None:
            self.cancel(conn)

    def cancel(self, conn: Any) -> None:
        raise NotImplementedError


class PostgresExecutor(_SqlExecutor):
    """One attempt of a postgres step (psycopg 3)."""

    type_name = "postgres"
    dialect = "postgres"

    def connect(self) -> Any:
        psycopg = require("psycopg", "postgres", "psycopg")
        try:
            conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=min(self.timeout_s or 30, 30))
        except psycopg.Error as exc:
            raise StepFailure(f"postgres: cannot connect to {redact(self.dsn)}: {_first_line(exc)}") from exc
        level = str(self.config.get("isolation_level") or "").lower().replace(" ", "_")
        if level:
            if level not in _ISOLATION:
                conn.close()
                raise StepFailure(f"postgres: unknown isolation_level {level!r}; use {', '.join(_ISOLATION)}")
            conn.isolation_level = getattr(psycopg.IsolationLevel, _ISOLATION[level])
        if self.timeout_s > 0:
            conn.execute(f"SET statement_timeout = {int(self.timeout_s * 1000)}")
        lock = self.config.get("advisory_lock")
        if lock not in (None, "", False):
            logger.debug("%s: taking advisory lock %r", self.label, lock)
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (str(lock),))
        return conn

    def begin(self, conn: Any) -> None:
        conn.autocommit = False

    def run_statement(self, conn: Any, sql: str, values: dict[str, Any] | None) -> Any:
        cur = conn.cursor()
        cur.execute(sql, values)
        return cur

    def cancel(self, conn: Any) -> None:
        conn.cancel()

    def failure(self, exc: Exception, where: str) -> StepFailure:
        psycopg = require("psycopg", "postgres", "psycopg")
        if isinstance(exc, psycopg.errors.QueryCanceled) and "statement timeout" in str(exc):
            return StepFailure(f"postgres: {where} timed out after {self.timeout_s}s (config timeout) on {redact(self.dsn)}")
        return StepFailure(f"postgres: {where} failed on {redact(self.dsn)}: {_first_line(exc)}")

    def insert_sql(self, table: str, columns: Sequence[str], on_conflict: str, target: Sequence[str]) -> str:
        cols = ", ".join(_quote_ident(c) for c in columns)
        sql = f"INSERT INTO {_quote_table(table)} ({cols}) VALUES ({', '.join(['%s'] * len(columns))})"
        if on_conflict == "ignore":
            return sql + " ON CONFLICT DO NOTHING"
        if on_conflict == "replace":
            if not target:
                raise StepFailure("postgres import: on_conflict replace needs conflict_target (the unique columns)")
            updates = ", ".join(f"{_quote_ident(c)} = EXCLUDED.{_quote_ident(c)}" for c in columns if c not in target)
            action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
            return sql + f" ON CONFLICT ({', '.join(_quote_ident(c) for c in target)}) {action}"
        return sql

    def close(self, conn: Any) -> None:
        if self.config.get("advisory_lock") not in (None, "", False):
            try:
                if not conn.autocommit:
                    conn.rollback()
                    conn.autocommit = True
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (str(self.config["advisory_lock"]),))
            except Exception as exc:  # closing the session releases it anyway
                logger.debug("%s: advisory unlock failed: %s", self.label, exc)
        conn.close()


class SqliteExecutor(_SqlExecutor):
    """One attempt of a sqlite step (stdlib sqlite3)."""

    type_name = "sqlite"
    dialect = "sqlite"

    def __init__(self, attempt: Attempt) -> None:
        super().__init__(attempt)
        self._timer: threading.Timer | None = None
        self._lock_file: Any = None

    def connect(self) -> Any:
        import sqlite3

        target, uri = _sqlite_target(self.dsn, self.attempt.cwd)
        if config_bool(self.config.get("file_lock")) and not uri and target != ":memory:":
            self._take_file_lock(target)
        try:
            conn = sqlite3.connect(target, timeout=float(self.timeout_s or 5), uri=uri, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StepFailure(f"sqlite: cannot open {self.dsn}: {exc}") from exc
        if self.timeout_s > 0:
            # sqlite has no statement timeout: interrupt whatever runs when the time is up.
            self._timer = threading.Timer(self.timeout_s, self._on_query_timeout, args=(conn,))
            self._timer.daemon = True
            self._timer.start()
        return conn

    def close(self, conn: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
        conn.close()
        if self._lock_file is not None:
            self._lock_file.close()

    def begin(self, conn: Any) -> None:
        conn.execute("BEGIN")

    def run_statement(self, conn: Any, sql: str, values: dict[str, Any] | None) -> Any:
        return conn.execute(sql, values) if values is not None else conn.execute(sql)

    def cancel(self, conn: Any) -> None:
        conn.interrupt()

    def failure(self, exc: Exception, where: str) -> StepFailure:
        if "interrupted" in str(exc) and self._timed_out:
            return StepFailure(f"sqlite: {where} timed out after {self.timeout_s}s (config timeout) on {self.dsn}")
        return StepFailure(f"sqlite: {where} failed on {self.dsn}: {exc}")

    def insert_sql(self, table: str, columns: Sequence[str], on_conflict: str, target: Sequence[str]) -> str:
        verb = {"ignore": "INSERT OR IGNORE", "replace": "INSERT OR REPLACE"}.get(on_conflict, "INSERT")
        cols = ", ".join(_quote_ident(c) for c in columns)
        return f"{verb} INTO {_quote_table(table)} ({cols}) VALUES ({', '.join(['?'] * len(columns))})"

    _timed_out = False

    def _on_query_timeout(self, conn: Any) -> None:
        self._timed_out = True
        conn.interrupt()

    def _take_file_lock(self, path: str) -> None:
        import fcntl

        self._lock_file = open(path + ".lock", "a")
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)


def read_import_rows(path: str, spec: Mapping[str, Any]) -> tuple[list[str], Iterator[list[Any]]]:
    """The columns and rows of an import file (csv, tsv or jsonl).

    Raises:
        StepFailure: the file cannot be read or has no columns.
    """
    fmt = str(spec.get("format") or _format_from_name(path))
    if fmt not in ("csv", "tsv", "jsonl"):
        raise StepFailure(f"import.format: expected csv, tsv or jsonl, got {fmt!r}")
    skip = config_int(spec.get("skip_rows"), 0, "import.skip_rows")
    limit = config_int(spec.get("max_rows"), 0, "import.max_rows")
    nulls = {str(v) for v in _as_list(spec.get("null_values"))} if spec.get("null_values") is not None else {"", "NULL"}
    columns = [str(c) for c in _as_list(spec.get("columns"))]
    try:
        f = open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise StepFailure(f"import: cannot read input_file {path}: {exc}") from exc
    with f:
        text = f.read()
    if fmt == "jsonl":
        objs = [orjson.loads(line) for line in text.splitlines() if line.strip()]
        columns = columns or (list(objs[0]) if objs else [])
        records: list[list[Any]] = [[_json_cell(o.get(c)) for c in columns] for o in objs]
    else:
        delimiter = str(spec.get("delimiter") or ("\t" if fmt == "tsv" else ","))
        lines = list(csv.reader(io.StringIO(text), delimiter=delimiter))
        if config_bool(spec.get("has_header"), True) and lines:
            header = lines.pop(0)
            columns = columns or header
        records = [[None if cell in nulls else cell for cell in line] for line in lines if line]
    if not columns:
        raise StepFailure(f"import: no columns in {path}; set import.columns or has_header: true")
    records = records[skip:]
    if limit:
        records = records[:limit]
    for i, rec in enumerate(records, 1):
        if len(rec) != len(columns):
            raise StepFailure(f"import: row {i + skip} of {path} has {len(rec)} value(s), expected {len(columns)} ({', '.join(columns)})")
    return columns, iter(records)


def _sqlite_target(dsn: str, cwd: str) -> tuple[str, bool]:
    for prefix in ("sqlite3://", "sqlite://", "sqlite:"):
        if dsn.startswith(prefix):
            dsn = dsn[len(prefix):]
            break
    if dsn.startswith("file:"):
        return dsn, True
    if dsn == ":memory:":
        return dsn, False
    return os.path.join(cwd, os.path.expanduser(dsn)), False


def _format_from_name(path: str) -> str:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    return {"tsv": "tsv", "jsonl": "jsonl", "ndjson": "jsonl"}.get(ext, "csv")


def _json_cell(value: Any) -> Any:
    return orjson.dumps(value).decode() if isinstance(value, (dict, list)) else value


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",")]
    return list(value)


def _quote_ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _quote_table(name: str) -> str:
    return ".".join(_quote_ident(part) for part in name.split("."))


def _snippet(statement: str) -> str:
    text = re.sub(r"\s+", " ", statement).strip()
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 3] + "..."


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value.as_tuple().exponent >= 0 else float(value)  # type: ignore[operator]
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode()
    if isinstance(value, (dt.timedelta, uuid.UUID)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _json_default(value)
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, default=_json_default).decode()
    return str(value)
