"""What the browser tests share (conftest.py re-exports the fixtures): a temp DAGU_HOME with
builtin auth, the real app on uvicorn (127.0.0.1, a socket bound to port 0 first), real
`dagu` run processes started through the API, and headless Chromium driven by Playwright.

Screenshots go to `tests/e2e/artifacts/` (git-ignored) so a person can look at them.
"""

from __future__ import annotations

import os
import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from helpers import child_pids
from integration.apiserver import run_process_env, serve_app
from servers import chromium

ARTIFACTS = Path(__file__).parent / "artifacts"
SECRET = "e2e-secret-0123456789abcdef-0123456789"
ADMIN = ("admin", "adminpass123")
VIEWER = ("vera", "viewerpass123")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

DAGS = {
    "hello": """
        description: Greets someone, then two steps fan out and join
        type: graph
        tags: [demo, greeting]
        params: NAME=world
        steps:
          - name: greet
            command: echo "hello ${NAME}"
            output: GREETING
          - name: left
            depends: [greet]
            command: echo left
          - name: right
            depends: [greet]
            command: echo right
          - name: join
            depends: [left, right]
            command: echo "joined ${GREETING}"
    """,
    "slow": """
        description: Sleeps for a long time (for stop tests)
        steps:
          - name: wait
            command: sleep 60
    """,
    "flaky": """
        description: Fails until a marker file exists
        params: MARK=/tmp/none
        steps:
          - name: prepare
            command: echo preparing
          - name: check
            command: test -f ${MARK}
          - name: finish
            command: echo finished
    """,
    "nightly": """
        description: A scheduled report
        schedule: "30 2 * * *"
        tags: [reports]
        steps:
          - name: extract
            command: echo extract
          - name: report
            command: echo report
    """,
}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("dagu-e2e-home")
    config = {"auth": {"mode": "builtin", "builtin": {"admin": {"username": ADMIN[0], "password": ADMIN[1]},
                                                      "token": {"secret": SECRET, "ttl": "1h"}}}}
    (home / "config.yaml").write_text(yaml.safe_dump(config))
    (home / "dags").mkdir()
    for name, body in DAGS.items():
        (home / "dags" / f"{name}.yaml").write_text(textwrap.dedent(body).lstrip())
    return home


@pytest.fixture(scope="module")
def server(home) -> Iterator[str]:
    """The app on a real uvicorn; runs it starts are real `dagu` processes using this home."""
    from dagu.config import load_settings
    from web.app import create_app

    # The API spawns `dagu` run processes; they must see this home and this source tree.
    with run_process_env(home):
        settings = load_settings(dagu_home=str(home))
        settings.ensure_dirs()
        app = create_app(settings)
        try:
            with serve_app(app, name="uvicorn-e2e") as url:
                _create_viewer(url)
                try:
                    yield url
                finally:
                    _wait_event_clients_gone(app)
        finally:
            leftover = _wait_children_gone()
    assert not leftover, f"run processes still alive after the tests (killed): {leftover}"


@pytest.fixture(scope="module")
def browser():
    path = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, server):
    """A fresh browser context (no cookies), 1280x800, with `page.base` set to the server URL."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=server)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    try:
        yield pg
    finally:
        context.close()
    # A script error is a bug even when the test's assertions happened to pass.
    assert not [e for e in errors if "Failed to load resource" not in e], errors


def login(page, user: tuple[str, str] = ADMIN, next_path: str = "/") -> None:
    """Sign in through the login page as a person would."""
    page.goto(f"/login?next={next_path}")
    page.fill("#username", user[0])
    page.fill("#password", user[1])
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/login" not in u)


def shot(page, name: str, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def admin_client(url: str) -> httpx.Client:
    client = httpx.Client(base_url=f"{url}/api/v2", timeout=30)
    try:
        token = client.post("/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}).json()["token"]
    except BaseException:
        client.close()
        raise
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def _wait_children_gone(timeout_s: float = 30.0) -> list[int]:
    """Wait for the `dagu` run processes the API spawned to end; kill and return any that don't."""
    deadline = time.monotonic() + timeout_s
    while (pids := child_pids(zombies=False)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)  # each run leads its own session
        except ProcessLookupError:
            pass
    return pids


def _wait_event_clients_gone(app, timeout_s: float = 10.0) -> None:
    """Let closed browser pages' SSE streams end, so the hub closes its bus socket itself."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        hub = getattr(app.state, "event_hub", None)
        if hub is None or not hub.snapshot().subscribed:
            return
        time.sleep(0.05)


def _create_viewer(url: str) -> None:
    c = admin_client(url)
    try:
        resp = c.post("/users", json={"username": VIEWER[0], "password": VIEWER[1], "role": "viewer"})
        assert resp.status_code in (201, 409), resp.text
    finally:
        c.close()

