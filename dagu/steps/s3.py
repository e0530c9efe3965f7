"""The `s3` step type: upload, download, list and delete objects (boto3).

Owns one s3 attempt (dag-spec 4.8): the connection from the step config over the DAG's
`s3:` block (endpoint, region, keys, path-style addressing, bucket), the operation (2.15
`action: s3.<op>`, config `operation`/`command`, or the step `command`), and a JSON
summary of what was done on stdout. Stop and timeout take effect between transfer chunks
and list pages.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

import orjson

from dagu.steps.base import Attempt
from dagu.steps.service import ServiceExecutor, StepFailure, StepLogs, config_bool, config_int, require

__all__ = ["S3Executor", "connection_settings"]

logger = logging.getLogger(__name__)

_OPERATIONS = ("upload", "download", "list", "delete")
_CONNECTION_KEYS = ("region", "endpoint", "access_key_id", "secret_access_key", "session_token", "profile",
                    "force_path_style", "disable_ssl", "bucket")  # fmt: skip


class _Interrupted(Exception):
    """Raised inside a transfer callback once the step is stopping."""


class S3Executor(ServiceExecutor):
    """One attempt of an s3 step."""

    type_name = "s3"

    def __init__(self, attempt: Attempt) -> None:
        super().__init__(attempt)
        self._cfg = connection_settings(attempt.dag.extras.get("s3"), attempt.config, attempt.env)
        self._stopping = threading.Event()

    def execute(self, logs: StepLogs) -> int:
        boto3 = require("boto3", "s3", "boto3")
        botocore = require("botocore.exceptions", "s3", "boto3")
        operation = self._operation()
        bucket = str(self._cfg.get("bucket") or "")
        if not bucket:
            raise StepFailure("s3: no bucket; set `bucket` in the step config or the DAG's `s3:` block")
        client = self._client(boto3)
        try:
            summary = getattr(self, f"_{operation}")(client, bucket, logs)
        except _Interrupted:
            return 1
        except botocore.ClientError as exc:
            raise StepFailure(f"s3: {operation} {self._target(bucket)} failed: {_client_error(exc)}") from exc
        except (botocore.BotoCoreError, OSError) as exc:
            if self.is_ending:
                return 1
            raise StepFailure(f"s3: {operation} {self._target(bucket)} failed: {exc}") from exc
        if summary is not None:
            logs.out(orjson.dumps(summary, default=str) + b"\n")
        return 0

    def interrupt(self, signal_name: str, grace_s: float) -> None:
        self._stopping.set()

    # -- setup ---------------------------------------------------------------------

    def _operation(self) -> str:
        action = str(self.attempt.step.extras.get("action") or "")
        op = action.split(".", 1)[1] if action.startswith("s3.") else ""
        op = op or str(self.config.get("operation") or "") or (self.attempt.commands[0] if self.attempt.commands else "")
        op = op.strip().lower()
        if op not in _OPERATIONS:
            raise StepFailure(f"s3: unknown operation {op!r}; use one of {', '.join(_OPERATIONS)} (e.g. `command: upload`)")
        return op

    def _client(self, boto3: Any) -> Any:
        from botocore.config import Config

        cfg = self._cfg
        endpoint = cfg.get("endpoint") or None
        if endpoint and "://" not in endpoint:
            endpoint = ("http://" if config_bool(cfg.get("disable_ssl")) else "https://") + endpoint
        addressing = "path" if config_bool(cfg.get("force_path_style")) else "auto"
        session = boto3.session.Session(profile_name=cfg.get("profile") or None)
        return session.client(
            "s3",
            endpoint_url=endpoint,
            region_name=cfg.get("region") or "us-east-1",
            aws_access_key_id=cfg.get("access_key_id") or None,
            aws_secret_access_key=cfg.get("secret_access_key") or None,
            aws_session_token=cfg.get("session_token") or None,
            use_ssl=not config_bool(cfg.get("disable_ssl")),
            config=Config(s3={"addressing_style": addressing}, retries={"max_attempts": 2}, connect_timeout=10, read_timeout=60),
        )

    def _target(self, bucket: str) -> str:
        key = self.config.get("key") or self.config.get("prefix") or ""
        where = f" at {self._cfg['endpoint']}" if self._cfg.get("endpoint") else ""
        return f"s3://{bucket}/{key}{where}"

    def _progress(self, _bytes: int) -> None:
        if self._stopping.is_set():
            raise _Interrupted()

    # -- operations ----------------------------------------------------------------

    def _upload(self, client: Any, bucket: str, logs: StepLogs) -> dict[str, Any]:
        cfg = self.config
        source = cfg.get("source")
        if not source:
            raise StepFailure("s3 upload needs `source` (a local file)")
        path = os.path.join(self.attempt.cwd, str(source))
        if not os.path.isfile(path):
            raise StepFailure(f"s3 upload: source {path} is not a file")
        key = str(cfg.get("key") or os.path.basename(path))
        extra: dict[str, Any] = {}
        for name, arg in (("content_type", "ContentType"), ("storage_class", "StorageClass"), ("sse", "ServerSideEncryption"), ("acl", "ACL")):
            if cfg.get(name):
                extra[arg] = str(cfg[name])
        if cfg.get("metadata"):
            extra["Metadata"] = {str(k): str(v) for k, v in dict(cfg["metadata"]).items()}
        if cfg.get("tags"):
            from urllib.parse import urlencode

            extra["Tagging"] = urlencode({str(k): str(v) for k, v in dict(cfg["tags"]).items()})
        client.upload_file(path, bucket, key, ExtraArgs=extra or None, Callback=self._progress, Config=self._transfer())
        return {"operation": "upload", "bucket": bucket, "key": key, "source": str(source), "size": os.path.getsize(path)}

    def _download(self, client: Any, bucket: str, logs: StepLogs) -> dict[str, Any]:
        cfg = self.config
        key = cfg.get("key")
        if not key:
            raise StepFailure("s3 download needs `key`")
        destination = str(cfg.get("destination") or os.path.basename(str(key)))
        path = os.path.join(self.attempt.cwd, destination)
        if os.path.isdir(path):
            path = os.path.join(path, os.path.basename(str(key)))
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        try:
            client.head_object(Bucket=bucket, Key=str(key))
        except Exception as exc:
            if _status(exc) == 404:
                raise StepFailure(f"s3 download: no object s3://{bucket}/{key}") from exc
            raise
        client.download_file(bucket, str(key), path, Callback=self._progress, Config=self._transfer())
        return {"operation": "download", "bucket": bucket, "key": str(key), "destination": path, "size": os.path.getsize(path)}

    def _list(self, client: Any, bucket: str, logs: StepLogs) -> dict[str, Any] | None:
        cfg = self.config
        prefix = str(cfg.get("prefix") or "")
        recursive = config_bool(cfg.get("recursive"), False)
        delimiter = str(cfg.get("delimiter") or ("" if recursive else "/"))
        max_keys = config_int(cfg.get("max_keys"), 0, "max_keys")
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if delimiter:
            params["Delimiter"] = delimiter
        objects: list[dict[str, Any]] = []
        prefixes: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(**params):
            self._progress(0)
            for obj in page.get("Contents", []):
                objects.append({"key": obj["Key"], "size": obj["Size"], "last_modified": obj["LastModified"].isoformat(),
                                "etag": obj.get("ETag", "").strip('"')})  # fmt: skip
            prefixes.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
            if max_keys and len(objects) >= max_keys:
                objects = objects[:max_keys]
                break
        fmt = str(cfg.get("output_format") or "json")
        if fmt in ("text", "keys"):
            for line in [*prefixes, *(o["key"] for o in objects)]:
                logs.out(line + "\n")
            return None
        if fmt == "jsonl":
            for o in objects:
                logs.out(orjson.dumps(o) + b"\n")
            return None
        return {"bucket": bucket, "prefix": prefix, "count": len(objects), "objects": objects, "prefixes": prefixes}

    def _delete(self, client: Any, bucket: str, logs: StepLogs) -> dict[str, Any] | None:
        cfg = self.config
        key, prefix = cfg.get("key"), cfg.get("prefix")
        if not key and not prefix:
            raise StepFailure("s3 delete needs `key` or `prefix`")
        if key:
            try:
                client.head_object(Bucket=bucket, Key=str(key))
            except Exception as exc:
                if _status(exc) == 404:
                    raise StepFailure(f"s3 delete: no object s3://{bucket}/{key}") from exc
                raise
            client.delete_object(Bucket=bucket, Key=str(key))
            deleted = [str(key)]
        else:
            deleted = []
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=str(prefix)):
                self._progress(0)
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    reply = client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                    errors = reply.get("Errors") or []
                    if errors:
                        raise StepFailure(f"s3 delete: {len(errors)} object(s) not deleted, first: {errors[0].get('Key')}: {errors[0].get('Message')}")
                    deleted.extend(k["Key"] for k in keys)
        if config_bool(cfg.get("quiet")):
            return None
        return {"operation": "delete", "bucket": bucket, "deleted": deleted, "count": len(deleted)}

    def _transfer(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        cfg = self.config
        options: dict[str, Any] = {"use_threads": False}
        if cfg.get("part_size"):
            size = config_int(cfg["part_size"], 8, "part_size") * 1024 * 1024
            options.update(multipart_chunksize=size, multipart_threshold=size)
        if cfg.get("concurrency"):
            options.update(use_threads=True, max_concurrency=config_int(cfg["concurrency"], 1, "concurrency"))
        return TransferConfig(**options)


def connection_settings(dag_block: Any, step_config: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Connection keys: the DAG's `s3:` block (variables expanded) under the step's config.

    Both spellings are accepted in the DAG block (`accessKeyId`, `access_key_id`).
    """
    merged: dict[str, Any] = {}
    if isinstance(dag_block, Mapping):
        from dagu.resolve import expand_config

        block = expand_config(dict(dag_block), env, backticks=False, process_env=env)
        for key, value in block.items():
            merged[_snake(str(key))] = value
    for key in _CONNECTION_KEYS:
        if step_config.get(key) not in (None, ""):
            merged[key] = step_config[key]
    return merged


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key).lstrip("_")


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None) or {}
    return response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _client_error(exc: Exception) -> str:
    error = (getattr(exc, "response", None) or {}).get("Error", {})
    code, message = error.get("Code"), error.get("Message")
    if code == "NoSuchBucket":
        return f"bucket does not exist ({message or code})"
    return f"{code}: {message}" if code else str(exc)
