"""What every command shares: settings, logging set-up, DAG lookup, and turning errors into exit codes."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from types import ModuleType

from dagu.config import Settings, load_settings
from dagu.errors import DaguError, NotFound, SpecError

__all__ = ["run_command", "resolve_dag_path", "eprint", "EXIT_OK", "EXIT_FAIL", "EXIT_USAGE"]

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2

logger = logging.getLogger(__name__)


def eprint(*parts: object) -> None:
    print(*parts, file=sys.stderr)


def run_command(module: ModuleType, args) -> int:
    """Build settings, configure logging, run `module.run`, and map errors to exit codes."""
    try:
        settings = load_settings(dagu_home=args.dagu_home, config=args.config, quiet=bool(args.quiet))
        _configure_logging(settings)
        if args.dagu_home:
            # Children (sub-DAG runs, step processes) must see the same home.
            os.environ["DAGU_HOME"] = str(settings.home)
        return int(module.run(args, settings) or 0)
    except SpecError as exc:
        eprint(f"Error: {exc.issues[0].file}: invalid workflow")
        for issue in exc.issues:
            eprint(issue.format())
        return EXIT_FAIL
    except DaguError as exc:
        eprint(f"Error: {exc}")
        return EXIT_FAIL
    except KeyboardInterrupt:
        eprint("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_FAIL


def resolve_dag_path(arg: str, settings: Settings) -> Path:
    """A DAG argument: an existing path, else `<dags dir>/<arg>[.yaml]`.

    Raises:
        NotFound: neither exists; the message says where we looked.
    """
    p = Path(arg).expanduser()
    if p.is_file():
        return p.absolute()
    candidates = [settings.dags_dir / arg]
    if not arg.endswith((".yaml", ".yml")):
        candidates = [settings.dags_dir / f"{arg}.yaml", settings.dags_dir / f"{arg}.yml"]
    for c in candidates:
        if c.is_file():
            return c
    looked = ", ".join(str(c) for c in [p, *candidates])
    raise NotFound(f"workflow {arg!r} not found (looked at {looked})")


def _configure_logging(settings: Settings) -> None:
    level = logging.DEBUG if settings.debug else logging.WARNING if settings.quiet else logging.INFO
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(level)
