"""Shell choice (`-e` included) and the argv of each invocation form, dag-spec 3.4."""

from __future__ import annotations

import pytest

from dagu.steps.shell import build_shell, command_argv, script_argv, script_suffix


@pytest.mark.parametrize(
    ("step_shell", "dag_shell", "default_shell", "env_shell", "expected"),
    [
        pytest.param("bash", "zsh", "ksh", "/bin/dash", ("bash",), id="step-shell-wins-without-e"),
        pytest.param(None, "zsh", "ksh", "/bin/dash", ("zsh", "-e"), id="dag-shell-keeps-e"),
        pytest.param(None, None, "ksh", "/bin/dash", ("ksh", "-e"), id="dagu-default-shell-next"),
        pytest.param(None, None, None, "/bin/dash", ("/bin/dash", "-e"), id="then-SHELL"),
        pytest.param(None, None, None, None, ("sh", "-e"), id="then-sh"),
        pytest.param("", "  ", "", "", ("sh", "-e"), id="blank-values-count-as-unset"),
        pytest.param(None, "bash -o pipefail", None, None, ("bash", "-o", "pipefail", "-e"), id="string-is-split"),
        pytest.param(None, ["bash", "-x"], None, None, ("bash", "-x", "-e"), id="list-taken-as-split"),
        pytest.param(None, "bash -e", None, None, ("bash", "-e"), id="e-not-doubled"),
        pytest.param(None, "/usr/local/bin/ash", None, None, ("/usr/local/bin/ash", "-e"), id="basename-decides"),
        pytest.param(None, "python3", None, None, ("python3",), id="non-posix-shell-no-e"),
        pytest.param(None, "nix-shell", None, None, ("nix-shell",), id="nix-shell-no-e"),
        pytest.param(None, "pwsh", None, None, ("pwsh",), id="powershell-no-e"),
    ],
)
def test_shell_choice_order_and_errexit(step_shell, dag_shell, default_shell, env_shell, expected):
    env = {} if env_shell is None else {"SHELL": env_shell}
    assert build_shell(step_shell, dag_shell, default_shell, env) == expected


def test_shell_args_come_after_the_errexit_flag():
    assert build_shell(None, "bash", None, {}, ["-o", "pipefail"]) == ("bash", "-e", "-o", "pipefail")


def test_shell_args_follow_a_step_shell_too():
    assert build_shell("zsh", None, None, {}, ["-f"]) == ("zsh", "-f")


def test_unix_shell_runs_command_text_with_dash_c():
    assert command_argv(("sh", "-e"), "echo a | wc -c") == ["sh", "-e", "-c", "echo a | wc -c"]


def test_nix_shell_gets_packages_and_pure_run():
    argv = command_argv(("nix-shell",), "jq --version", ["jq", "curl"])
    assert argv == ["nix-shell", "-p", "jq", "-p", "curl", "--pure", "--run", "jq --version"]


def test_powershell_and_cmd_get_their_own_command_flags():
    assert command_argv(("pwsh",), "Get-Date") == ["pwsh", "-NoProfile", "-NonInteractive", "-Command", "Get-Date"]
    assert command_argv(("cmd.exe",), "dir") == ["cmd.exe", "/c", "dir"]


def test_script_runs_under_the_shell_with_its_flags():
    assert script_argv(("bash", "-e"), "/tmp/s") == ["bash", "-e", "/tmp/s"]


def test_shebang_script_runs_directly():
    assert script_argv(("bash", "-e"), "/tmp/s", has_shebang=True) == ["/tmp/s"]


def test_interpreter_command_is_split_and_gets_the_file_last():
    argv = script_argv(("sh", "-e"), "/tmp/s", interpreter="python3 -u", has_shebang=True)
    assert argv == ["python3", "-u", "/tmp/s"]


def test_nix_shell_script_runs_inside_run():
    argv = script_argv(("nix-shell",), "/tmp/my s", shell_packages=["jq"])
    assert argv == ["nix-shell", "-p", "jq", "--pure", "--run", "sh -e '/tmp/my s'"]


def test_powershell_script_needs_a_ps1_file():
    assert script_suffix(("powershell",)) == ".ps1"
    assert script_argv(("powershell",), "/tmp/s.ps1")[-2:] == ["-File", "/tmp/s.ps1"]
    assert script_suffix(("cmd",)) == ".cmd"
    assert script_suffix(("sh", "-e")) == ""
