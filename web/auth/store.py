"""Users, API keys and webhooks on disk: one pretty JSON file per record, `<uuid>.json`,
under `data/users`, `data/apikeys` and `data/webhooks` (service.md 4.11).

Users and keys use snake_case fields, webhooks camelCase, as Dagu writes them. Files
are replaced with a temp-file rename, so readers never see half a record. This module
validates nothing about roles or passwords; the routes do.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson

from dagu.store import atomic_write, format_time, utc_now

__all__ = ["User", "ApiKey", "Webhook", "RecordStore", "Stores", "now_text", "is_record_id"]

T = TypeVar("T", "User", "ApiKey", "Webhook")


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    password_hash: str
    role: str
    created_at: str
    updated_at: str

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "role": self.role, "createdAt": self.created_at, "updatedAt": self.updated_at}


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    role: str
    key_hash: str
    key_prefix: str
    created_at: str
    updated_at: str
    created_by: str
    description: str = ""
    last_used_at: str = ""

    def to_api(self) -> dict[str, Any]:
        out = {
            "id": self.id, "name": self.name, "description": self.description, "role": self.role,
            "keyPrefix": self.key_prefix, "createdAt": self.created_at, "updatedAt": self.updated_at,
            "createdBy": self.created_by,
        }
        if self.last_used_at:
            out["lastUsedAt"] = self.last_used_at
        return out


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    dagName: str  # noqa: N815 (the file's field name)
    tokenHash: str  # noqa: N815
    tokenPrefix: str  # noqa: N815
    enabled: bool
    createdAt: str  # noqa: N815
    updatedAt: str  # noqa: N815
    createdBy: str = ""  # noqa: N815
    lastUsedAt: str = ""  # noqa: N815

    def to_api(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "tokenHash"}
        if not self.lastUsedAt:
            out.pop("lastUsedAt")
        return out


def now_text() -> str:
    """The current UTC time as stored and served (`2026-11-24T18:07:36.437Z`)."""
    return format_time(utc_now())


def is_record_id(text: str) -> bool:
    """True for a UUID in canonical form; anything else never names a record file."""
    try:
        return str(uuid.UUID(text)) == text
    except (ValueError, TypeError):
        return False


class RecordStore(Generic[T]):
    """One folder of `<id>.json` records of one type. Thread-safe within a process."""

    def __init__(self, folder: Path, kind: type[T]) -> None:
        self.folder = folder
        self.kind = kind
        self._names = {f.name for f in fields(kind)}
        self.lock = threading.RLock()  # held by callers across check-then-write sequences

    def get(self, record_id: str) -> T | None:
        if not is_record_id(record_id):
            return None
        return self._read(self.folder / f"{record_id}.json")

    def all(self) -> list[T]:
        return sorted(self._iter(), key=lambda r: (_created(r), r.id))

    def put(self, record: T) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = {k: v for k, v in asdict(record).items() if v != "" or k in ("description",)}
        atomic_write(self.folder / f"{record.id}.json", orjson.dumps(data, option=orjson.OPT_INDENT_2), mode=0o600)

    def delete(self, record_id: str) -> bool:
        if not is_record_id(record_id):
            return False
        try:
            os.unlink(self.folder / f"{record_id}.json")
        except FileNotFoundError:
            return False
        return True

    def update(self, record: T, **changes: Any) -> T:
        new = replace(record, **changes)
        self.put(new)
        return new

    def _iter(self) -> Iterator[T]:
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return
        for name in names:
            if name.endswith(".json") and not name.startswith("."):
                record = self._read(self.folder / name)
                if record is not None:
                    yield record

    def _read(self, path: Path) -> T | None:
        try:
            data = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except orjson.JSONDecodeError:
            return None  # a hand-edited broken file hides one record, not the whole list
        try:
            return self.kind(**{k: v for k, v in data.items() if k in self._names})
        except TypeError:
            return None


@dataclass(frozen=True)
class Stores:
    """The three record folders of one data dir."""

    users: RecordStore[User]
    api_keys: RecordStore[ApiKey]
    webhooks: RecordStore[Webhook]

    @classmethod
    def under(cls, data_dir: Path) -> Stores:
        return cls(
            RecordStore(data_dir / "users", User),
            RecordStore(data_dir / "apikeys", ApiKey),
            RecordStore(data_dir / "webhooks", Webhook),
        )

    def user_by_name(self, username: str) -> User | None:
        return next((u for u in self.users.all() if u.username == username), None)

    def webhook_for(self, dag_name: str) -> Webhook | None:
        return next((w for w in self.webhooks.all() if w.dagName == dag_name), None)


def _created(record: Any) -> str:
    return getattr(record, "created_at", None) or getattr(record, "createdAt", "")
