"""Which shell a command step runs under, and the argv for each form of invocation.

Pure functions only (dag-spec 3.4): choosing the shell, adding `-e`, and turning a
command text or a script file into an argv. Starting and supervising the process is
`dagu.steps.command`'s job.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence

__all__ = [
    "ERREXIT_SHELLS",
    "build_shell",
    "shell_kind",
    "command_argv",
    "script_argv",
    "script_suffix",
]

# Unix-like shells that get `-e` (errexit) unless the step chose its own shell.
ERREXIT_SHELLS = frozenset({"sh", "bash", "zsh", "ksh", "ash", "dash"})

_FALLBACK_SHELL = "sh"
_POWERSHELLS = frozenset({"powershell", "pwsh"})
_POWERSHELL_FLAGS = ("-NoProfile", "-NonInteractive")


def build_shell(
    step_shell: str | Sequence[str] | None,
    dag_shell: str | Sequence[str] | None,
    default_shell: str | None,
    env: Mapping[str, str],
    shell_args: Sequence[str] = (),
) -> tuple[str, ...]:
    """The shell argv prefix for a command step, e.g. ("bash", "-e").

    Choice order: step shell -> DAG shell -> `default_shell` (the value of
    DAGU_DEFAULT_SHELL) -> `env["SHELL"]` -> "sh". A string is split like a shell
    would (`"bash -o pipefail"`); a sequence is taken as already split; empty
    values count as unset. `-e` is appended for sh/bash/zsh/ksh/ash/dash (by
    basename) unless the *step* set its shell or the shell already has it.
    `shell_args` go last, as given.
    """
    step_argv = _split(step_shell)
    if step_argv:
        return (*step_argv, *shell_args)
    for candidate in (dag_shell, default_shell, env.get("SHELL")):
        argv = _split(candidate)
        if argv:
            break
    else:
        argv = (_FALLBACK_SHELL,)
    if shell_kind(argv) in ERREXIT_SHELLS and "-e" not in argv[1:]:
        argv = (*argv, "-e")
    return (*argv, *shell_args)


def shell_kind(shell: Sequence[str]) -> str:
    """The shell's family name: its basename, lower-cased, without `.exe` ("bash", "nix-shell")."""
    if not shell:
        return ""
    name = os.path.basename(shell[0]).lower()
    return name.removesuffix(".exe")


def command_argv(shell: Sequence[str], text: str, shell_packages: Sequence[str] = ()) -> list[str]:
    """The argv that runs one command text under `shell`.

    Unix shells get `-c text`; nix-shell gets `-p pkg` per package and `--pure --run
    text`; PowerShell gets `-NoProfile -NonInteractive -Command text`; cmd gets `/c text`.
    """
    kind = shell_kind(shell)
    if kind == "nix-shell":
        return [*shell, *_nix_packages(shell_packages), "--pure", "--run", text]
    if kind in _POWERSHELLS:
        return [*shell, *_POWERSHELL_FLAGS, "-Command", text]
    if kind == "cmd":
        return [*shell, "/c", text]
    return [*shell, "-c", text]


def script_argv(
    shell: Sequence[str],
    path: str,
    *,
    interpreter: str | None = None,
    has_shebang: bool = False,
    shell_packages: Sequence[str] = (),
) -> list[str]:
    """The argv that runs the script file at `path`.

    `interpreter` (a step's `command` next to its `script`) wins: its words, then
    the file (`python3 -u file`). Otherwise a script with a `#!` line runs directly,
    and any other script runs as `<shell> <file>`.
    """
    if interpreter is not None:
        return [*shlex.split(interpreter), path]
    kind = shell_kind(shell)
    if kind == "nix-shell":
        inner = shlex.quote(path) if has_shebang else shlex.join(["sh", "-e", path])
        return [*shell, *_nix_packages(shell_packages), "--pure", "--run", inner]
    if has_shebang:
        return [path]
    if kind in _POWERSHELLS:
        return [*shell, *_POWERSHELL_FLAGS, "-File", path]
    if kind == "cmd":
        return [*shell, "/c", path]
    return [*shell, path]


def script_suffix(shell: Sequence[str]) -> str:
    """File suffix a script needs for `shell` to accept it ("" for Unix shells)."""
    kind = shell_kind(shell)
    if kind in _POWERSHELLS:
        return ".ps1"
    if kind == "cmd":
        return ".cmd"
    return ""


def _split(shell: str | Sequence[str] | None) -> tuple[str, ...]:
    if shell is None:
        return ()
    if isinstance(shell, str):
        return tuple(shlex.split(shell))
    return tuple(s for s in shell if s)


def _nix_packages(packages: Sequence[str]) -> list[str]:
    argv: list[str] = []
    for pkg in packages:
        argv += ["-p", pkg]
    return argv
