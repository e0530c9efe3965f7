"""Test-session setup: import paths, and the real servers the step-type tests talk to.

When the environment does not already name them (`.ci/run` starts them and exports
`SVC`), the session starts the servers this machine has (PostgreSQL, Redis, sshd,
dockerd, moto S3, aiosmtpd, the OIDC provider) with `ci/components.sh` and stops them
at the end. Tests whose server is missing skip and say why. `DAGU_TEST_SERVERS=off`
turns the start off.
"""

import os
import subprocess
import sys
from pathlib import Path

# Make `tests.helpers` importable as `helpers` from every test folder.
sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parent.parent
_started: dict[str, str] = {}


def pytest_configure(config):
    if os.environ.get("SVC") or os.environ.get("DAGU_TEST_SERVERS", "auto") == "off" or _started:
        return
    if os.geteuid() != 0 or not (ROOT / "ci/components.sh").is_file():
        return  # the servers need root (initdb as postgres, dockerd); their tests skip
    script = '. ci/components.sh && components_up >&2 && echo "$SVC"'
    try:
        env = {**os.environ, "PYTHON": sys.executable}  # the Python servers (moto, aiosmtpd) run in this environment
        done = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"test servers not started: {exc}", file=sys.stderr)
        return
    svc = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not svc:
        print(f"test servers not started:\n{done.stderr[-2000:]}", file=sys.stderr)
        return
    _started["SVC"] = svc
    for line in Path(svc, "env").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        os.environ[key] = value.strip("'")


def pytest_unconfigure(config):
    svc = _started.pop("SVC", None)
    if svc:
        subprocess.run(["bash", "-c", f'. ci/components.sh && SVC="{svc}" components_down'], cwd=ROOT, timeout=120)
