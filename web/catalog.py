"""The DAG definitions the API serves: a cache of the DAGs folder keyed by path, mtime and size.

Listing scans the folder (one `scandir`, one `stat` per file) and re-parses only
files whose mtime or size changed, with the spec loader (libyaml's C parser). A
scan is reused for `scan_ttl_s` (the API's own writes invalidate it at once), so a
burst of list requests costs one scan; a single DAG is always re-checked. An
entry keeps the parsed `Dag` or the load errors, the file text (for search) and
small precomputed fields for filtering and sorting. Writing files is the API's
job (`web.api.dags`); this module only reads.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

from dagu.errors import DaguError, SpecError

if TYPE_CHECKING:
    from dagu.spec.model import Dag

__all__ = ["CatalogEntry", "DagCatalog", "DAG_FILE_SUFFIXES", "FILE_NAME_RE", "spec_errors"]

DAG_FILE_SUFFIXES = (".yaml", ".yml")
# A file stem the API accepts for a new or renamed DAG (the DAG-name rule, service.md 2.2).
FILE_NAME_RE = re.compile(r"^(?!\.\.?\Z)[a-zA-Z0-9_.-]{1,40}\Z")


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One DAG file as last read: its parsed DAG (None when invalid) and errors."""

    file_name: str  # the stem: `/dags/{fileName}`
    path: Path
    mtime_ns: int
    size: int
    text: str
    dag: Dag | None
    errors: tuple[str, ...] = ()
    tags: frozenset[str] = field(default_factory=frozenset)
    path_str: str = ""  # str(path), kept for the cheap comparison in `entries()`

    @property
    def name(self) -> str:
        """The DAG's name (its `name:`), or the file stem when the file does not load."""
        return self.dag.name if self.dag is not None else self.file_name


class DagCatalog:
    """Cached view of the DAGs folder; safe to share between request threads.

    Args:
        dags_dir: `Settings.dags_dir`.
        base_config: base.yaml merged under every DAG (when the file exists).
    """

    def __init__(
        self, dags_dir: str | os.PathLike[str], base_config: str | os.PathLike[str] | None = None,
        *, scan_ttl_s: float = 1.0,
    ):
        self.dags_dir = Path(dags_dir)
        self.base_config = Path(base_config) if base_config else None
        self.scan_ttl_s = scan_ttl_s
        self._lock = threading.Lock()
        self._entries: dict[str, CatalogEntry] = {}
        self._base_key: tuple[int, int] | None = None
        self._listed: list[CatalogEntry] | None = None
        self._listed_at = 0.0

    def invalidate(self) -> None:
        """Forget the last scan; the next `entries()` looks at the folder again."""
        with self._lock:
            self._listed = None

    def entries(self) -> list[CatalogEntry]:
        """Every DAG file in the folder, sorted by file name; changed files are re-read."""
        now = time.monotonic()
        with self._lock:
            if self._listed is not None and now - self._listed_at < self.scan_ttl_s:
                return list(self._listed)
        found = self._scan()
        base_key = self._base_stamp()
        with self._lock:
            if base_key != self._base_key:
                self._entries.clear()  # base.yaml changed: every DAG may have changed
                self._base_key = base_key
            cached = dict(self._entries)
        out: list[CatalogEntry] = []
        fresh: dict[str, CatalogEntry] = {}
        for stem, (path, mtime_ns, size) in sorted(found.items()):
            entry = cached.get(stem)
            if entry is None or entry.path_str != path or entry.mtime_ns != mtime_ns or entry.size != size:
                entry = self._read(stem, Path(path), mtime_ns, size)
                if entry is None:
                    continue  # removed between scan and read
            fresh[stem] = entry
            out.append(entry)
        with self._lock:
            self._entries = fresh
            self._listed = out
            self._listed_at = now
        return list(out)

    def get(self, file_name: str) -> CatalogEntry | None:
        """The entry of `<file_name>.yaml` (or `.yml`), re-read if it changed; None if absent."""
        path = self.path_of(file_name)
        if path is None:
            return None
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        with self._lock:
            entry = self._entries.get(file_name)
        base_key = self._base_stamp()
        if (
            entry is not None and entry.path == path and entry.mtime_ns == st.st_mtime_ns
            and entry.size == st.st_size and base_key == self._base_key
        ):
            return entry
        entry = self._read(file_name, path, st.st_mtime_ns, st.st_size)
        if entry is not None and base_key == self._base_key:
            with self._lock:
                self._entries[file_name] = entry
        return entry

    def path_of(self, file_name: str) -> Path | None:
        """The existing file for a stem (`.yaml` preferred), or None."""
        if not _is_plain_stem(file_name):
            return None
        for suffix in DAG_FILE_SUFFIXES:
            path = self.dags_dir / f"{file_name}{suffix}"
            if path.is_file():
                return path
        return None

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _scan(self) -> dict[str, tuple[str, int, int]]:
        found: dict[str, tuple[str, int, int]] = {}
        try:
            with os.scandir(self.dags_dir) as it:
                for e in it:
                    stem, suffix = os.path.splitext(e.name)
                    if suffix not in DAG_FILE_SUFFIXES or e.name.startswith("."):
                        continue
                    try:
                        if not e.is_file():
                            continue
                        st = e.stat()
                    except FileNotFoundError:
                        continue
                    if stem in found and suffix == ".yml":
                        continue  # `x.yaml` wins over `x.yml`
                    found[stem] = (e.path, st.st_mtime_ns, st.st_size)
        except (FileNotFoundError, NotADirectoryError):
            pass
        return found

    def _base_stamp(self) -> tuple[int, int] | None:
        if self.base_config is None:
            return None
        try:
            st = self.base_config.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _read(self, stem: str, path: Path, mtime_ns: int, size: int) -> CatalogEntry | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            return CatalogEntry(stem, path, mtime_ns, size, "", None, (f"cannot read {path}: {exc.strerror}",),
                                path_str=str(path))
        text = data.decode("utf-8-sig", errors="replace")
        from dagu.spec import load_dag_text  # the spec parser loads on first use: health answers sooner

        base = self.base_config if self.base_config is not None and self.base_config.is_file() else None
        try:
            dag = load_dag_text(text, str(path), base_config=base)
        except DaguError as exc:
            return CatalogEntry(stem, path, mtime_ns, size, text, None, spec_errors(exc), path_str=str(path))
        return CatalogEntry(stem, path, mtime_ns, size, text, dag, (), frozenset(t.lower() for t in dag.tags),
                            path_str=str(path))


def spec_errors(exc: DaguError) -> tuple[str, ...]:
    """One message per problem, each naming file, line and field when known."""
    if isinstance(exc, SpecError):
        return tuple(issue.format() for issue in exc.issues)
    return (str(exc),)


def _is_plain_stem(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name
