"""Step-type registry: type names (and aliases) to `"module:attribute"` strings, imported on use.

Nothing here imports a step module until `resolve()` is called, so loading a workflow
never pays for paramiko, docker or an HTTP client.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["STEP_TYPES", "ALIASES", "canonical_type", "is_known_type", "resolve", "UnknownStepType"]

# Canonical type name -> "module:attribute" of its executor factory.
STEP_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "command": "dagu.steps.command:CommandExecutor",
        "dag": "dagu.steps.subdag:SubDagExecutor",
        "parallel": "dagu.steps.subdag:ParallelExecutor",
        "http": "dagu.steps.http:HttpExecutor",
        "ssh": "dagu.steps.ssh:SshExecutor",
        "sftp": "dagu.steps.sftp:SftpExecutor",
        "docker": "dagu.steps.docker:DockerExecutor",
        "postgres": "dagu.steps.sql:PostgresExecutor",
        "sqlite": "dagu.steps.sql:SqliteExecutor",
        "redis": "dagu.steps.redis:RedisExecutor",
        "s3": "dagu.steps.s3:S3Executor",
        "jq": "dagu.steps.jq:JqExecutor",
        "mail": "dagu.steps.mail:MailExecutor",
        "archive": "dagu.steps.archive:ArchiveExecutor",
        "template": "dagu.steps.template:TemplateExecutor",
        "router": "dagu.steps.router:RouterExecutor",
        "chat": "dagu.steps.chat:ChatExecutor",
        "gha": "dagu.steps.gha:GhaExecutor",
        "hitl": "dagu.steps.hitl:HitlExecutor",
        "kubernetes": "dagu.steps.kubernetes:KubernetesExecutor",
    }
)

# Other spellings users write -> canonical name.
ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "shell": "command",
        "subworkflow": "dag",
        "container": "docker",
        "k8s": "kubernetes",
        "github_action": "gha",
        "github-action": "gha",
    }
)


class UnknownStepType(LookupError):
    """No executor is registered under this type name."""


def canonical_type(name: str) -> str:
    """The canonical name for `name` (aliases folded, lower-cased); unknown names pass through."""
    key = name.strip().lower()
    return ALIASES.get(key, key)


def is_known_type(name: str) -> bool:
    return canonical_type(name) in STEP_TYPES


def resolve(name: str) -> Any:
    """Import and return the executor factory for type `name`.

    Raises:
        UnknownStepType: the name is not registered, or its module does not exist yet.
    """
    key = canonical_type(name)
    target = STEP_TYPES.get(key)
    if target is None:
        raise UnknownStepType(f'executor type "{name}" is not registered')
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise UnknownStepType(f'executor type "{name}" is not available in this version') from exc
        raise
    return getattr(module, attr)
