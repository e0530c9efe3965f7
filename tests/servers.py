"""The real servers that `ci/components.sh` starts, as the tests see them.

Each accessor returns the server's address from the environment, or skips the
calling test with the reason (pytest prints skip reasons: `-ra` is in addopts).
Locally: `. ci/components.sh; components_up; . "$SVC/env"` before pytest.
"""

from __future__ import annotations

import os

import pytest

__all__ = ["need", "pg_dsn", "redis_port", "ssh", "docker_host", "s3_endpoint", "smtp", "oidc_issuer", "chromium"]


def need(*names: str) -> tuple[str, ...]:
    """The values of the environment variables `names`, or skip naming the missing ones."""
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.skip(f"test server not running: {', '.join(missing)} unset (ci/components.sh components_up starts it)")
    return tuple(os.environ[n] for n in names)


def pg_dsn() -> str:
    return need("PG_DSN")[0]


def redis_port() -> int:
    return int(need("REDIS_PORT")[0])


def ssh() -> tuple[int, str]:
    """(port, client key path) of sshd on 127.0.0.1, user root."""
    port, key = need("SSH_PORT", "SSH_KEY")
    return int(port), key


def docker_host() -> tuple[str, str]:
    """(DOCKER_HOST, local test image)."""
    return need("DOCKER_HOST", "TEST_IMAGE")  # type: ignore[return-value]


def s3_endpoint() -> str:
    return need("S3_ENDPOINT")[0]


def smtp() -> tuple[int, str]:
    """(port, maildir) of the SMTP sink."""
    port, maildir = need("SMTP_PORT", "SMTP_MAILDIR")
    return int(port), maildir


def oidc_issuer() -> str:
    return need("OIDC_ISSUER")[0]


def chromium() -> str:
    return need("CHROMIUM")[0]
