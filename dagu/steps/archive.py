"""The `archive` step type: create, extract and list tar, tar.gz, tar.bz2, tar.xz and zip files.

Owns dag-spec 4.11. The operation is the step `command` (`create`, `extract`, `list`; 2.15
`action: archive.<op>` arrives as config `operation` when the loader maps it). Relative
paths are relative to the step's working directory. Config: `source`, `destination`,
`format` (else from the file extension), `compression_level`, `password` (zip extract and
list; zip encryption is read-only here), `overwrite` (default false: an existing file is
an error), `preserve_paths` (default true), `strip_components`, `include`/`exclude` (globs
over the path inside the archive; `**/` also matches at the top), `dry_run`, `verbose`
(one line per file on stderr), `follow_symlinks`, `verify_integrity`, `continue_on_error`.

Extraction is safe: a member whose path is absolute, climbs out with `..`, or is a link
pointing outside the destination is refused, and device files are never created.

Stdout gets one JSON document: a summary for create/extract, the entries for list.
"""

from __future__ import annotations

import fnmatch
import json
import os
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dagu.steps.base import Attempt, AttemptResult
from dagu.steps.service import Cancel, Cancelled, StepExecutor, StepLogs, config_bool

__all__ = ["ArchiveExecutor", "ArchiveError", "detect_format"]

_FORMATS = {
    ".tar.gz": "tar.gz", ".tgz": "tar.gz", ".tar.bz2": "tar.bz2", ".tbz2": "tar.bz2", ".tbz": "tar.bz2",
    ".tar.xz": "tar.xz", ".txz": "tar.xz", ".tar": "tar", ".zip": "zip",
}  # fmt: skip
_TAR_MODES = {"tar": "", "tar.gz": "gz", "tar.bz2": "bz2", "tar.xz": "xz"}
_OPERATIONS = ("create", "extract", "list")


class ArchiveError(Exception):
    """An archive operation cannot go on; the text names the file and the reason."""


class ArchiveExecutor(StepExecutor):
    """One attempt of an archive step. Stop and timeout are checked between files."""

    def work(self, io: StepLogs) -> AttemptResult:
        try:
            job = _Job(self.attempt, io, self._cancel)
            summary = getattr(job, job.operation)()
        except Cancelled:
            return io.result(cancel=self._cancel)
        except (ArchiveError, ValueError) as exc:
            return io.fail(f"archive: {exc}")
        io.out(json.dumps(summary, indent=2) + "\n")
        return io.result(1, f"archive: {len(summary['errors'])} file(s) failed") if summary.get("errors") else io.result(0)


def detect_format(path: str, written: str | None = None) -> str:
    """The archive format named by `written`, else by the file extension."""
    if written:
        key = written.lower().lstrip(".")
        key = {"tgz": "tar.gz", "gzip": "tar.gz", "tbz2": "tar.bz2", "bzip2": "tar.bz2", "txz": "tar.xz"}.get(key, key)
        if key not in _TAR_MODES and key != "zip":
            raise ArchiveError(f"unknown format {written!r}; use tar, tar.gz, tar.bz2, tar.xz or zip")
        return key
    lower = path.lower()
    for ext, fmt in _FORMATS.items():
        if lower.endswith(ext):
            return fmt
    raise ArchiveError(f"cannot tell the format of {path!r} from its name; set `format:` (tar, tar.gz, tar.bz2, tar.xz, zip)")


@dataclass
class _Entry:
    path: str  # inside the archive, "/"-separated, no leading "./"
    kind: str  # "file" | "dir" | "symlink" | "other"
    size: int
    link: str = ""


class _Job:
    def __init__(self, attempt: Attempt, io: StepLogs, cancel: Cancel) -> None:
        cfg = attempt.config
        self._cwd = attempt.cwd
        self._io = io
        self._cancel = cancel
        self.operation = self._operation(attempt)
        self.source = self._path(cfg.get("source"), "source")
        dest = cfg.get("destination")
        self.destination = self._abs(str(dest)) if dest not in (None, "") else None
        self.include = _globs(cfg.get("include"))
        self.exclude = _globs(cfg.get("exclude"))
        self.overwrite = config_bool(cfg.get("overwrite"))
        self.preserve_paths = config_bool(cfg.get("preserve_paths"), True)
        self.strip = int(cfg.get("strip_components") or 0)
        self.dry_run = config_bool(cfg.get("dry_run"))
        self.verbose = config_bool(cfg.get("verbose"))
        self.follow_symlinks = config_bool(cfg.get("follow_symlinks"))
        self.verify = config_bool(cfg.get("verify_integrity"))
        self.keep_going = config_bool(cfg.get("continue_on_error"))
        self.level = int(cfg.get("compression_level") if cfg.get("compression_level") not in (None, "") else -1)
        password = cfg.get("password")
        self.password = str(password).encode() if password not in (None, "") else None
        self.format_written = str(cfg.get("format") or "") or None
        self.errors: list[str] = []
        if self.strip < 0:
            raise ArchiveError(f"strip_components must be >= 0, got {self.strip}")

    # -- operations ------------------------------------------------------------------------

    def create(self) -> dict[str, Any]:
        if self.destination is None:
            raise ArchiveError("create needs `destination` (the archive file to write)")
        fmt = detect_format(self.destination, self.format_written)
        if not os.path.exists(self.source):
            raise ArchiveError(f"source {self.source} does not exist")
        if os.path.exists(self.destination) and not self.overwrite:
            raise ArchiveError(f"{self.destination} already exists; set `overwrite: true` to replace it")
        files = [(abs_path, rel) for abs_path, rel in self._walk(self.source) if self._wanted(rel)]
        total = sum(os.path.getsize(a) for a, _ in files if os.path.isfile(a))
        if not self.dry_run:
            tmp = self.destination + ".part"
            os.makedirs(os.path.dirname(self.destination) or ".", exist_ok=True)
            try:
                self._write(fmt, tmp, files)
                os.replace(tmp, self.destination)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            if self.verify:
                self._verify(fmt, self.destination)
        return {"operation": "create", "archive": self.destination, "format": fmt, "files": len(files), "bytes": total, "dry_run": self.dry_run}

    def extract(self) -> dict[str, Any]:
        fmt = detect_format(self.source, self.format_written)
        dest = self.destination or self._cwd
        root = os.path.realpath(dest)
        count = total = 0
        with _Reader(fmt, self.source, self.password) as reader:
            for entry in reader.entries():
                self._cancel.check()
                if not self._wanted(entry.path):
                    continue
                try:
                    target_rel = self._target(entry.path)
                    if target_rel is None:
                        continue
                    wrote = self._extract_one(reader, entry, root, target_rel)
                except ArchiveError as exc:
                    if not self.keep_going:
                        raise
                    self.errors.append(str(exc))
                    self._io.err(f"archive: {exc}\n")
                    continue
                if wrote:
                    count += 1
                    total += entry.size
        summary = {"operation": "extract", "archive": self.source, "format": fmt, "destination": dest, "files": count, "bytes": total, "dry_run": self.dry_run}
        if self.errors:
            summary["errors"] = self.errors
        return summary

    def list(self) -> dict[str, Any]:
        fmt = detect_format(self.source, self.format_written)
        with _Reader(fmt, self.source, self.password) as reader:
            entries = []
            for e in reader.entries():
                self._cancel.check()
                if self._wanted(e.path):
                    entries.append({"path": e.path, "type": e.kind, "size": e.size, **({"link": e.link} if e.link else {})})
        return {"operation": "list", "archive": self.source, "format": fmt, "files": sum(1 for e in entries if e["type"] == "file"), "entries": entries}

    # -- helpers -----------------------------------------------------------------------------

    def _operation(self, attempt: Attempt) -> str:
        op = (attempt.commands[0] if attempt.commands else str(attempt.config.get("operation") or "")).strip().lower()
        action = str(attempt.step.extras.get("action") or "") if attempt.step.extras else ""
        if not op and action.startswith("archive."):
            op = action.split(".", 1)[1]
        if op not in _OPERATIONS:
            raise ArchiveError(f"unknown operation {op!r}; write `command: create`, `extract` or `list`")
        return op

    def _abs(self, path: str) -> str:
        return os.path.normpath(os.path.join(self._cwd, os.path.expanduser(path)))

    def _path(self, value: Any, key: str) -> str:
        if value in (None, ""):
            raise ArchiveError(f"`{key}` is required")
        return self._abs(str(value))

    def _wanted(self, rel: str) -> bool:
        if self.include and not any(_glob(rel, p) for p in self.include):
            return False
        return not any(_glob(rel, p) for p in self.exclude)

    def _walk(self, source: str) -> Iterator[tuple[str, str]]:
        if not os.path.isdir(source) or (os.path.islink(source) and not self.follow_symlinks):
            yield source, os.path.basename(source)
            return
        for dirpath, dirnames, filenames in os.walk(source, followlinks=self.follow_symlinks):
            dirnames.sort()
            for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d)) and not self.follow_symlinks]:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, source).replace(os.sep, "/")
                yield full, rel if self.preserve_paths else name

    def _write(self, fmt: str, path: str, files: list[tuple[str, str]]) -> None:
        if fmt == "zip":
            level = None if self.level < 0 else min(self.level, 9)
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
                for abs_path, rel in files:
                    self._cancel.check()
                    self._log(f"adding {rel}")
                    zf.write(abs_path, rel)
            return
        mode = "w:" + _TAR_MODES[fmt]
        kwargs: dict[str, Any] = {}
        if fmt in ("tar.gz", "tar.bz2") and self.level >= 0:
            kwargs["compresslevel"] = max(1, min(self.level, 9))
        with tarfile.open(path, mode, dereference=self.follow_symlinks, **kwargs) as tf:
            for abs_path, rel in files:
                self._cancel.check()
                self._log(f"adding {rel}")
                tf.add(abs_path, rel, recursive=False)

    def _verify(self, fmt: str, path: str) -> None:
        with _Reader(fmt, path, self.password) as reader:
            for entry in reader.entries():
                if entry.kind == "file":
                    reader.read(entry)  # a CRC or stream error raises

    def _target(self, name: str) -> str | None:
        """The member's path under the destination after strip_components; None to skip it."""
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
        if name.startswith("/") or ".." in parts:
            raise ArchiveError(f"refusing unsafe path {name!r} in {self.source}: it would land outside the destination")
        parts = parts[self.strip :]
        if not parts:
            return None
        return "/".join(parts) if self.preserve_paths else parts[-1]

    def _extract_one(self, reader: _Reader, entry: _Entry, root: str, rel: str) -> bool:
        target = os.path.join(root, rel)
        parent_real = os.path.realpath(os.path.dirname(target))
        if not _inside(parent_real, root):
            raise ArchiveError(f"refusing {entry.path!r}: its folder resolves outside the destination")
        if entry.kind == "other":
            self._log(f"skipping special file {entry.path}")
            return False
        if entry.kind == "dir":
            if not self.dry_run:
                os.makedirs(target, exist_ok=True)
            return False
        if entry.kind == "symlink":
            dest = os.path.normpath(os.path.join(os.path.dirname(target), entry.link))
            if os.path.isabs(entry.link) or not _inside(dest, root):
                raise ArchiveError(f"refusing link {entry.path!r} -> {entry.link!r}: it points outside the destination")
        if os.path.lexists(target):
            if not self.overwrite:
                raise ArchiveError(f"{target} already exists; set `overwrite: true` to replace it")
            if os.path.isdir(target) and not os.path.islink(target):
                raise ArchiveError(f"{target} is a folder; cannot replace it with a file")
        self._log(f"extracting {entry.path} -> {rel}")
        if self.dry_run:
            return True
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.lexists(target):
            os.unlink(target)
        if entry.kind == "symlink":
            os.symlink(entry.link, target)
            return True
        with open(target, "wb") as out:
            reader.copy(entry, out, self._cancel)
        mode = reader.mode(entry)
        if mode:
            os.chmod(target, mode & 0o777)
        return True

    def _log(self, text: str) -> None:
        if self.verbose:
            self._io.err(text + "\n")


class _Reader:
    """The entries of a tar or zip archive, one interface for both."""

    def __init__(self, fmt: str, path: str, password: bytes | None) -> None:
        if not os.path.isfile(path):
            raise ArchiveError(f"archive {path} does not exist")
        self._fmt = fmt
        self._path = path
        try:
            if fmt == "zip":
                self._zip: zipfile.ZipFile | None = zipfile.ZipFile(path)
                if password:
                    self._zip.setpassword(password)
                self._tar: tarfile.TarFile | None = None
            else:
                self._tar = tarfile.open(path, "r:" + _TAR_MODES[fmt])
                self._zip = None
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ArchiveError(f"cannot read {path} as {fmt}: {exc}") from exc
        self._members: dict[str, Any] = {}

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: Any) -> None:
        (self._zip or self._tar).close()  # type: ignore[union-attr]

    def entries(self) -> Iterator[_Entry]:
        try:
            if self._zip is not None:
                for info in self._zip.infolist():
                    mode = info.external_attr >> 16
                    kind = "dir" if info.is_dir() else "symlink" if stat.S_ISLNK(mode) else "file"
                    link = self._zip.read(info).decode() if kind == "symlink" else ""
                    self._members[info.filename] = info
                    yield _Entry(info.filename.rstrip("/"), kind, info.file_size, link)
                return
            assert self._tar is not None
            for member in self._tar:
                kind = "dir" if member.isdir() else "file" if member.isfile() else "symlink" if member.issym() else "other"
                if member.islnk():
                    kind, link = "other", ""  # hard links are skipped rather than resolved
                self._members[member.name] = member
                yield _Entry(member.name.lstrip("./") if member.name.startswith("./") else member.name, kind, member.size, member.linkname if member.issym() else "")
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, RuntimeError) as exc:
            raise ArchiveError(f"cannot read {self._path}: {exc}") from exc

    def _member(self, entry: _Entry) -> Any:
        for name in (entry.path, "./" + entry.path, entry.path + "/"):
            if name in self._members:
                return self._members[name]
        raise ArchiveError(f"{entry.path} vanished from {self._path}")

    def copy(self, entry: _Entry, out: Any, cancel: Cancel) -> None:
        member = self._member(entry)
        try:
            if self._zip is not None:
                src = self._zip.open(member)
            else:
                assert self._tar is not None
                src = self._tar.extractfile(member)
            with src:
                while chunk := src.read(1 << 20):
                    cancel.check()
                    out.write(chunk)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, RuntimeError) as exc:
            raise ArchiveError(f"cannot extract {entry.path} from {self._path}: {exc}") from exc

    def read(self, entry: _Entry) -> None:
        class _Null:
            def write(self, _data: bytes) -> None:
                pass

        self.copy(entry, _Null(), Cancel())

    def mode(self, entry: _Entry) -> int:
        member = self._member(entry)
        if self._zip is not None:
            return (member.external_attr >> 16) & 0o777
        return member.mode & 0o777


def _globs(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return [str(p) for p in value]


def _glob(rel: str, pattern: str) -> bool:
    if fnmatch.fnmatchcase(rel, pattern) or fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], pattern):
        return True
    return pattern.startswith("**/") and fnmatch.fnmatchcase(rel, pattern[3:])


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)

