"""`dagu version`: print the version on stdout."""

from __future__ import annotations

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    """`version` takes no flags of its own."""


def run(args, settings) -> int:
    from dagu import __version__

    print(__version__)
    return 0
