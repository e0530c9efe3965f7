"""Where run history lives on disk: run and attempt folders, log paths, listing and retention.

Layout (service.md 4.3 and 4.5, all times UTC):

    <data>/dag-runs/<safe-name>/dag-runs/YYYY/MM/DD/dag-run_<YYYYMMDD_HHMMSS>Z_<runId>/
        attempt_<YYYYMMDD_HHMMSS>_<mmm>Z_<attemptId>/{dag.json,status.jsonl,outputs.json,CANCEL_REQUESTED}
        children/child_<subRunId>/attempt_.../          sub-runs, same shape
    <logs>/<safe-name>/dag-run_<YYYYMMDD_HHMMSS>Z_<runId>/
        dag-run_<YYYYMMDD.HHMMSS.mmm>.<runId[:8]>.log   run log, shared by all attempts
        run_<YYYYMMDD_HHMMSS>Z_<attemptId>/<safe-step>.<YYYYMMDD.HHMMSS.mmm>.<runId[:8]>.out|.err|.log
        children/child_<subRunId>/...                    sub-run logs, same shape

Sub-run logs sit under the parent's log folder (Dagu does not pin this down), so
deleting a run's logs takes its sub-runs' logs along. Step log names use UTC,
like every other name here. What a status file contains is `status_log`'s business.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from dagu.errors import Conflict, NotFound
from dagu.status import RunStatus
from dagu.store.fsutil import atomic_write, dir_lock
from dagu.store.naming import MAX_RUN_ID_LEN, dotted_ms, new_run_id, safe_component, safe_name, validate_run_id
from dagu.store.records import RunRecord, utc_now
from dagu.store.status_log import read_status

__all__ = [
    "RunHandle",
    "AttemptHandle",
    "RunStore",
    "safe_name",
    "validate_run_id",
    "new_run_id",
    "CANCEL_FLAG",
    "MAX_RUN_ID_LEN",
]

CANCEL_FLAG = "CANCEL_REQUESTED"
# A run that has no status yet may be in the middle of being created; leave it alone.
_FRESH_RUN_S = 60.0

_RUN_DIR_RE = re.compile(r"^dag-run_(\d{8}_\d{6})Z_(.+)$")
_ATTEMPT_DIR_RE = re.compile(r"^attempt_(\d{8}_\d{6}_\d{3})Z_([0-9a-f]{6})$")
_CHILD_PREFIX = "child_"


@dataclass(frozen=True, slots=True)
class RunHandle:
    """Where one DAG run lives: its record folder and its log folder."""

    dag_name: str
    run_id: str
    path: Path  # the run folder (dag-run_... or children/child_...)
    log_dir: Path  # the run's log folder
    created_at: datetime | None  # from the folder name; None for sub-runs
    parent: RunHandle | None = None


@dataclass(frozen=True, slots=True)
class AttemptHandle:
    """One execution (or queued record) of a run: the files it writes."""

    run: RunHandle
    attempt_id: str
    path: Path
    created_at: datetime
    run_log_path: Path  # shared by every attempt of the run

    @property
    def status_path(self) -> Path:
        return self.path / "status.jsonl"

    @property
    def dag_json_path(self) -> Path:
        return self.path / "dag.json"

    @property
    def outputs_path(self) -> Path:
        return self.path / "outputs.json"

    @property
    def cancel_path(self) -> Path:
        return self.path / CANCEL_FLAG

    @property
    def log_dir(self) -> Path:
        """This attempt's step-log folder, `run_<ts>Z_<attemptId>`."""
        return self.run.log_dir / f"run_{self.created_at:%Y%m%d_%H%M%S}Z_{self.attempt_id}"

    def step_log_paths(self, step_name: str, started_at: datetime, merged: bool = False) -> tuple[Path, Path]:
        """(stdout, stderr) log paths of a step that starts at `started_at`; one `.log` when merged."""
        base = f"{safe_component(step_name)}.{dotted_ms(started_at)}.{self.run.run_id[:8]}"
        if merged:
            path = self.log_dir / f"{base}.log"
            return path, path
        return self.log_dir / f"{base}.out", self.log_dir / f"{base}.err"


class RunStore:
    """File-backed run history under a data folder and a log folder.

    Args:
        data_dir: Dagu's data folder; runs go to `<data_dir>/dag-runs`.
        log_dir: Dagu's log folder.
        clock: returns the current UTC time; injected by tests.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        log_dir: str | os.PathLike[str],
        *,
        clock: Callable[[], datetime] = utc_now,
    ):
        self.runs_dir = Path(data_dir) / "dag-runs"
        self.log_dir = Path(log_dir)
        self._clock = clock

    def dag_dir(self, dag_name: str) -> Path:
        """`<data>/dag-runs/<safe-name>/dag-runs`, the root of one DAG's runs."""
        return self.runs_dir / safe_name(dag_name) / "dag-runs"

    # -- creating -----------------------------------------------------------------------

    def create_run(self, dag_name: str, run_id: str, *, parent: RunHandle | None = None) -> RunHandle:
        """Create the folders of a new run (a sub-run of `parent` when given).

        Raises:
            InvalidRequest: `run_id` is not 1-64 of `[-a-zA-Z0-9_]`.
            Conflict: the DAG (or `parent`) already has a run with that ID.
        """
        validate_run_id(run_id)
        now = self._clock().astimezone(UTC)
        if parent is not None:
            return self._create_sub_run(dag_name, run_id, parent, now)
        dag_dir = self.dag_dir(dag_name)
        dag_dir.mkdir(parents=True, exist_ok=True)
        # The ID check spans every day folder, so one mkdir can't make it atomic;
        # Dagu's per-DAG directory lock serialises creators instead.
        with dir_lock(dag_dir / ".dagu_lock"):
            if any(True for _ in self._run_dirs_with_id(dag_dir, run_id)):
                raise Conflict(f"dag-run ID {run_id} already exists for DAG {dag_name}")
            name = f"dag-run_{now:%Y%m%d_%H%M%S}Z_{run_id}"
            path = dag_dir / f"{now:%Y}" / f"{now:%m}" / f"{now:%d}" / name
            path.mkdir(parents=True)
        handle = RunHandle(dag_name, run_id, path, self.log_dir / safe_name(dag_name) / name, _parse_run_ts(name))
        handle.log_dir.mkdir(parents=True, exist_ok=True)
        return handle

    def new_attempt(self, run: RunHandle) -> AttemptHandle:
        """Create a new attempt folder (and its log folder) in `run`."""
        now = self._clock().astimezone(UTC)
        while True:
            attempt_id = os.urandom(3).hex()
            path = run.path / f"attempt_{now:%Y%m%d_%H%M%S}_{now.microsecond // 1000:03d}Z_{attempt_id}"
            try:
                path.mkdir(parents=True)
                break
            except FileExistsError:
                continue  # same millisecond and same 3 random bytes; draw again
        attempt = AttemptHandle(run, attempt_id, path, _parse_attempt_ts(path.name), self._run_log_path(run, now))
        attempt.log_dir.mkdir(parents=True, exist_ok=True)
        return attempt

    def hide_attempt(self, attempt: AttemptHandle) -> None:
        """Rename the attempt folder to a dot-name, so it no longer counts (dequeued/superseded)."""
        os.rename(attempt.path, attempt.path.with_name("." + attempt.path.name))

    # -- finding ------------------------------------------------------------------------

    def find_run(self, dag_name: str, run_id: str) -> RunHandle:
        """The run of `dag_name` with ID `run_id` (the newest, should there be several).

        Raises:
            InvalidRequest: malformed run ID.
            NotFound: no such run.
        """
        validate_run_id(run_id)
        dag_dir = self.dag_dir(dag_name)
        paths = sorted(self._run_dirs_with_id(dag_dir, run_id), key=lambda p: p.name)
        if not paths:
            raise NotFound(f"dag-run {run_id} of DAG {dag_name} not found")
        return self._handle(dag_name, paths[-1])

    def find_sub_run(self, parent: RunHandle, run_id: str) -> RunHandle:
        """The sub-run `run_id` of `parent`; its DAG name comes from its latest status.

        Raises:
            NotFound: no such sub-run.
        """
        validate_run_id(run_id)
        path = parent.path / "children" / f"{_CHILD_PREFIX}{run_id}"
        if not path.is_dir():
            raise NotFound(f"sub dag-run {run_id} of {parent.dag_name}/{parent.run_id} not found")
        handle = RunHandle("", run_id, path, parent.log_dir / "children" / path.name, None, parent)
        with contextlib.suppress(NotFound):
            handle = replace(handle, dag_name=self.read_latest(handle).name)
        return handle

    def list_attempts(self, run: RunHandle) -> list[AttemptHandle]:
        """Visible attempts of `run`, oldest first, with or without a status file."""
        names = sorted(e.name for e in _scandir(run.path) if _ATTEMPT_DIR_RE.match(e.name) and e.is_dir())
        return [self._attempt(run, run.path / n) for n in names]

    def latest_attempt(self, run: RunHandle) -> AttemptHandle:
        """The newest visible attempt that has a `status.jsonl`.

        Raises:
            NotFound: no attempt has written a status yet.
        """
        for attempt in reversed(self.list_attempts(run)):
            if attempt.status_path.exists():
                return attempt
        raise NotFound(f"dag-run {run.run_id} of DAG {run.dag_name} has no recorded attempt")

    def read_latest(self, run: RunHandle) -> RunRecord:
        """The status of the latest attempt.

        Raises:
            NotFound: no attempt has a readable status.
        """
        return read_status(self.latest_attempt(run).status_path)

    def latest_run(self, dag_name: str) -> RunHandle:
        """The most recently created run of `dag_name`.

        Raises:
            NotFound: the DAG has no runs.
        """
        for path in self._run_dirs_newest_first(self.dag_dir(dag_name)):
            return self._handle(dag_name, path)
        raise NotFound(f"DAG {dag_name} has no dag-runs")

    def list_runs(
        self,
        dag_name: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        statuses: Collection[RunStatus] | None = None,
        limit: int | None = 100,
    ) -> list[tuple[RunHandle, RunRecord]]:
        """Runs with their latest status, newest first.

        Args:
            dag_name: one DAG, or every DAG when None.
            since, until: bounds (inclusive) on the run's creation time (its folder name).
            statuses: keep only runs whose latest status is one of these.
            limit: at most this many results; None for all.

        Runs without a readable status are left out.
        """
        if dag_name is not None:
            roots = [(dag_name, self.dag_dir(dag_name))]
        else:
            roots = [(None, self.runs_dir / e.name / "dag-runs") for e in _scandir(self.runs_dir) if e.is_dir()]
        candidates = [(p.name, name, p) for name, root in roots for p in self._run_dirs(root, since, until)]
        candidates.sort(key=lambda c: _RUN_DIR_RE.match(c[0]).group(1, 2), reverse=True)
        results: list[tuple[RunHandle, RunRecord]] = []
        for dir_name, name, path in candidates:
            created = _parse_run_ts(dir_name)
            if (since and created < since) or (until and created > until):
                continue
            handle = self._handle(name or "", path)
            try:
                record = self.read_latest(handle)
            except NotFound:
                continue
            if statuses is not None and record.status not in statuses:
                continue
            if name is None:
                handle = replace(handle, dag_name=record.name or path.parents[4].name)
            results.append((handle, record))
            if limit is not None and len(results) >= limit:
                break
        return results

    # -- attempt files ------------------------------------------------------------------

    def write_dag_json(self, attempt: AttemptHandle, data: dict[str, Any]) -> None:
        """Store the DAG as executed (`dag.json`), atomically."""
        atomic_write(attempt.dag_json_path, orjson.dumps(data, option=orjson.OPT_INDENT_2))

    def read_dag_json(self, attempt: AttemptHandle) -> dict[str, Any]:
        """Raises: NotFound: the attempt has no `dag.json`."""
        return _read_json(attempt.dag_json_path)

    def write_outputs(self, attempt: AttemptHandle, metadata: dict[str, Any], outputs: dict[str, Any]) -> None:
        """Store `{metadata, outputs}` in `outputs.json` atomically; nothing is written without outputs."""
        if not outputs:
            return
        body = {"metadata": metadata, "outputs": outputs}
        atomic_write(attempt.outputs_path, orjson.dumps(body, option=orjson.OPT_INDENT_2))

    def read_outputs(self, attempt: AttemptHandle) -> dict[str, Any]:
        """Raises: NotFound: the attempt wrote no outputs."""
        return _read_json(attempt.outputs_path)

    def request_cancel(self, attempt: AttemptHandle) -> None:
        """Drop the `CANCEL_REQUESTED` flag that a running attempt polls for."""
        os.close(os.open(attempt.cancel_path, os.O_WRONLY | os.O_CREAT, 0o644))

    def is_cancel_requested(self, attempt: AttemptHandle) -> bool:
        return attempt.cancel_path.exists()

    # -- retention ----------------------------------------------------------------------

    def delete_runs(
        self, dag_name: str, older_than_days: float, *, skip_active: bool = True, dry_run: bool = False
    ) -> list[str]:
        """Delete runs of `dag_name` (records and logs) last touched more than `older_than_days` ago.

        A run's age counts from its latest status's finish (else start, else queue)
        time, falling back to its creation time; `older_than_days=0` deletes all.
        With `skip_active`, runs whose latest status is running/queued/waiting, and
        runs without a status created in the last minute, are kept.

        Returns:
            IDs of the deleted runs (or of those that would be, with `dry_run`), newest first.
        """
        now = self._clock().astimezone(UTC)
        cutoff = now - timedelta(days=older_than_days)
        deleted: list[str] = []
        dag_dir = self.dag_dir(dag_name)
        for path in list(self._run_dirs_newest_first(dag_dir)):
            handle = self._handle(dag_name, path)
            if not self._is_deletable(handle, now, cutoff, skip_active):
                continue
            deleted.append(handle.run_id)
            if not dry_run:
                shutil.rmtree(handle.path, ignore_errors=True)
                shutil.rmtree(handle.log_dir, ignore_errors=True)
                _remove_empty_parents(handle.path.parent, stop=dag_dir)
        return deleted

    # -- private ------------------------------------------------------------------------

    def _is_deletable(self, run: RunHandle, now: datetime, cutoff: datetime, skip_active: bool) -> bool:
        created = run.created_at or now
        try:
            record = self.read_latest(run)
        except NotFound:
            if skip_active and (now - created).total_seconds() < _FRESH_RUN_S:
                return False
            return created <= cutoff
        if skip_active and record.status.is_active:
            return False
        touched = record.finished_at or record.started_at or record.queued_at or created
        return touched <= cutoff

    def _create_sub_run(self, dag_name: str, run_id: str, parent: RunHandle, now: datetime) -> RunHandle:
        path = parent.path / "children" / f"{_CHILD_PREFIX}{run_id}"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir()  # atomic: the ID check and the creation are one step
        except FileExistsError:
            raise Conflict(
                f"sub dag-run ID {run_id} already exists under {parent.dag_name}/{parent.run_id}"
            ) from None
        handle = RunHandle(dag_name, run_id, path, parent.log_dir / "children" / path.name, None, parent)
        handle.log_dir.mkdir(parents=True, exist_ok=True)
        return handle

    def _handle(self, dag_name: str, path: Path) -> RunHandle:
        prefix = path.parents[4].name  # <prefix>/dag-runs/YYYY/MM/DD/dag-run_...
        match = _RUN_DIR_RE.match(path.name)
        return RunHandle(dag_name, match.group(2), path, self.log_dir / prefix / path.name, _parse_run_ts(path.name))

    def _attempt(self, run: RunHandle, path: Path) -> AttemptHandle:
        created = _parse_attempt_ts(path.name)
        return AttemptHandle(run, path.name[-6:], path, created, self._run_log_path(run, created))

    def _run_log_path(self, run: RunHandle, fallback: datetime) -> Path:
        # Every attempt appends to the run log the first attempt created (Dagu reuses it).
        suffix = f".{run.run_id[:8]}.log"
        existing = sorted(
            e.name for e in _scandir(run.log_dir) if e.name.startswith("dag-run_") and e.name.endswith(suffix)
        )
        if existing:
            return run.log_dir / existing[0]
        return run.log_dir / f"dag-run_{dotted_ms(fallback)}{suffix}"

    def _run_dirs_with_id(self, dag_dir: Path, run_id: str) -> Iterator[Path]:
        # run_id is validated, so it holds no glob metacharacters; the regex check
        # stops "x" from matching "..Z_aZ_x".
        for path in dag_dir.glob(f"2*/*/*/dag-run_*Z_{run_id}"):
            match = _RUN_DIR_RE.match(path.name)
            if match and match.group(2) == run_id and path.is_dir():
                yield path

    def _run_dirs(self, dag_dir: Path, since: datetime | None = None, until: datetime | None = None) -> Iterator[Path]:
        """Run folders of one DAG in no particular order, skipping day folders outside the bounds."""
        low = f"{since.astimezone(UTC):%Y%m%d}" if since else ""
        high = f"{until.astimezone(UTC):%Y%m%d}" if until else "99999999"
        for year in _digit_dirs(dag_dir, 4):
            for month in _digit_dirs(year, 2):
                for day in _digit_dirs(month, 2):
                    if not low <= f"{year.name}{month.name}{day.name}" <= high:
                        continue
                    for entry in _scandir(day):
                        if _RUN_DIR_RE.match(entry.name) and entry.is_dir():
                            yield day / entry.name

    def _run_dirs_newest_first(self, dag_dir: Path) -> list[Path]:
        return sorted(self._run_dirs(dag_dir), key=lambda p: _RUN_DIR_RE.match(p.name).group(1, 2), reverse=True)


def _parse_run_ts(dir_name: str) -> datetime:
    stamp = _RUN_DIR_RE.match(dir_name).group(1)
    return datetime.strptime(stamp, "%Y%m%d_%H%M%S").replace(tzinfo=UTC)


def _parse_attempt_ts(dir_name: str) -> datetime:
    stamp = _ATTEMPT_DIR_RE.match(dir_name).group(1)
    return datetime.strptime(stamp + "000", "%Y%m%d_%H%M%S_%f").replace(tzinfo=UTC)


def _scandir(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _digit_dirs(path: Path, width: int) -> list[Path]:
    return [
        path / e.name for e in _scandir(path) if len(e.name) == width and e.name.isdigit() and e.is_dir()
    ]


def _remove_empty_parents(path: Path, *, stop: Path) -> None:
    while path != stop and stop in path.parents:
        try:
            path.rmdir()
        except OSError:
            return  # not empty (or gone): stop climbing
        path = path.parent


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist") from None
