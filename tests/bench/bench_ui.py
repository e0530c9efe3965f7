"""UI benchmarks: the DAG list with 2,000 DAGs, and the run page of a 1,000-step run.

    python tests/bench/bench_ui.py

First our own figures: the real app on uvicorn (127.0.0.1) from a temp DAGU_HOME, the
1,000-step run's status written with the store's own StatusWriter (running it for real
would measure the engine, not the page). Server time is the request's wall time on
loopback (median of several); page figures come from headless Chromium (`CHROMIUM`,
default /usr/bin/chromium).

Then the same two pages side by side with the real Dagu binary, as the user sees them:
each engine gets its own DAGU_HOME with identical DAG files, runs the 1,000-step chain
with `start`, and serves it with `server`. Chromium opens each page, alternating the
engines (ours, Dagu, ours, ...), once in a fresh context (empty cache) and once in a
warm one; the figure is the time from navigation start to the first animation frame in
which the page's last row is laid out. Dagu is skipped when its binary or playwright is
missing. Not run by pytest.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import ROOT, reference_dagu

from dagu.config import load_settings  # noqa: E402
from dagu.status import NodeStatus, RunStatus  # noqa: E402
from dagu.store import NodeRecord, RunRecord, RunStore, StatusWriter, utc_now  # noqa: E402

DAG_COUNT = 2000
STEP_COUNT = 1000
LIST_BUDGET_MS = 300.0
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}
ROUNDS = 5  # per engine, page and cache state
REF_RUN_ID = "ui-bench"
LIST_PAGE_SIZE = 50  # both UIs show 50 DAGs a page, sorted by name: big, dag_0000 ... dag_0048
# path -> (XPath scope, text of the page's last row). Dagu's list renders a hidden table
# beside its cards at this width, hence "visible"; its run page keeps steps in <tr>s, as ours does.
SHOWN = {
    "/dags": ("", f"dag_{LIST_PAGE_SIZE - 2:04d}"),
    f"/dag-runs/big/{REF_RUN_ID}": ("//tr", f"s{STEP_COUNT - 1:04d}"),
}
# Runs from document start. The XPath walks the whole DOM (~30 ms on Dagu's 88,000-element
# run page), so it runs only in frames after a DOM change (or 100 ms without one), and the
# time is taken before it.
_PROBE_JS = """(() => {
  const target = %s[location.pathname];
  if (!target) return;
  const xpath = target[0] + "//*[text()='" + target[1] + "']";
  let dirty = true;
  new MutationObserver(() => { dirty = true; }).observe(document, {subtree: true, childList: true, attributes: true});
  let checkedAt = 0;
  const tick = () => {
    const now = performance.now();
    if (dirty || now - checkedAt > 100) {  // 100 ms: a late stylesheet changes no node
      dirty = false;
      checkedAt = now;
      const hits = document.evaluate(xpath, document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);
      for (let i = 0; i < hits.snapshotLength; i++) {
        if (hits.snapshotItem(i).checkVisibility()) { window.__shownAt = now; return; }
      }
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();"""


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="dagu-bench-ui-") as tmp:
        home = Path(tmp)
        _write_dags(home)
        settings = load_settings(dagu_home=str(home), environ={})
        settings.ensure_dirs()
        run_id = _write_big_run(settings)
        with _serve(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
            ok = _bench_list(client)
            ok &= _bench_run_page(client, url, run_id)
    _bench_against_dagu()
    return 0 if ok else 1


def _write_dags(home: Path) -> None:
    dags = home / "dags"
    dags.mkdir(parents=True)
    for i in range(DAG_COUNT):
        tag = ("etl", "reports", "ml", "ops")[i % 4]
        (dags / f"dag_{i:04d}.yaml").write_text(
            f"description: benchmark DAG {i}\ntags: [{tag}]\nschedule: \"{i % 60} * * * *\"\n"
            "steps:\n  - name: a\n    command: echo a\n  - name: b\n    command: echo b\n  - name: c\n    command: echo c\n"
        )
    steps = "".join(f"  - name: s{i:04d}\n    command: echo {i}\n" for i in range(STEP_COUNT))
    (dags / "big.yaml").write_text("steps:\n" + steps)


def _write_big_run(settings) -> str:
    store = RunStore(settings.data_dir, settings.log_dir)
    run_id = "bench-big-run"
    run = store.create_run("big", run_id)
    attempt = store.new_attempt(run)
    t0 = utc_now() - timedelta(minutes=20)
    nodes = []
    for i in range(STEP_COUNT):
        out, err = attempt.step_log_paths(f"s{i:04d}", t0)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(f"line of step {i}\n" * (20_000 if i == 0 else 3))
        err.write_text("")
        depends = [f"s{i - 1:04d}"] if i else []
        nodes.append(NodeRecord(
            step={"name": f"s{i:04d}", "commands": [f"echo {i}"], "depends": depends},
            stdout=str(out), stderr=str(err), status=NodeStatus.SUCCEEDED if i < STEP_COUNT - 1 else NodeStatus.RUNNING,
            started_at=t0 + timedelta(seconds=i), finished_at=(t0 + timedelta(seconds=i + 1)) if i < STEP_COUNT - 1 else None,
            done_count=1, exit_code=0 if i < STEP_COUNT - 1 else None,
        ))
    record = RunRecord(name="big", run_id=run_id, attempt_id=attempt.attempt_id, status=RunStatus.SUCCEEDED,
                       nodes=nodes, created_at=t0, started_at=t0, finished_at=t0 + timedelta(seconds=STEP_COUNT))
    writer = StatusWriter(attempt.status_path)
    writer.open(record)
    writer.close(record)
    return run_id


class _serve:
    def __init__(self, settings) -> None:
        import uvicorn

        from web.app import create_app

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def _timed(client: httpx.Client, path: str, n: int = 15) -> tuple[float, float, int]:
    """(median ms, max ms, body bytes) of GET `path`."""
    times, size = [], 0
    for _ in range(n):
        t = time.perf_counter()
        resp = client.get(path)
        times.append((time.perf_counter() - t) * 1000)
        assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])
        size = len(resp.content)
    return statistics.median(times), max(times), size


def _bench_list(client: httpx.Client) -> bool:
    t = time.perf_counter()
    client.get("/dags")
    cold = (time.perf_counter() - t) * 1000
    print(f"DAG list, {DAG_COUNT + 1} DAGs: first request (parses every file once) {cold:.0f} ms")
    ok = True
    for label, path in (("page 1", "/dags"), ("page 20", "/dags?page=20"), ("search 'dag_19'", "/dags?q=dag_19"),
                        ("tag filter", "/dags?tag=ml")):
        med, worst, size = _timed(client, path)
        verdict = "ok" if med < LIST_BUDGET_MS else f"OVER {LIST_BUDGET_MS:.0f} ms"
        ok &= med < LIST_BUDGET_MS
        print(f"  {label:<16} median {med:6.1f} ms, max {worst:6.1f} ms, {size / 1024:.0f} KiB  [{verdict}]")
    return ok


def _bench_run_page(client: httpx.Client, url: str, run_id: str) -> bool:
    path = f"/dag-runs/big/{run_id}"
    med, worst, size = _timed(client, path, n=7)
    print(f"Run page, {STEP_COUNT} steps: server median {med:.0f} ms, max {worst:.0f} ms, {size / 1024:.0f} KiB HTML")
    med_api, _, api_size = _timed(client, f"/api/v2{path}", n=7)
    print(f"  run JSON (live refresh): median {med_api:.0f} ms, {api_size / 1024:.0f} KiB")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("  (playwright not installed: no browser figures)")
        return True
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        loads = []
        for _ in range(3):
            t = time.perf_counter()
            page.goto(url + path, wait_until="load")
            loads.append((time.perf_counter() - t) * 1000)
        nav = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0].toJSON())")
        import json

        timing = json.loads(nav)
        print(f"  Chromium load: median {statistics.median(loads):.0f} ms (DOMContentLoaded {timing['domContentLoadedEventEnd']:.0f} ms,"
              f" load {timing['loadEventEnd']:.0f} ms after navigation start)")
        t = time.perf_counter()
        page.click("#steps a.log-link[data-step=s0000][data-stream=stdout]")
        page.wait_for_function("() => document.getElementById('log').textContent.length > 1000")
        print(f"  open a 20,000-line step log (last 1,000 lines shown): {(time.perf_counter() - t) * 1000:.0f} ms")
        # Responsiveness: how long the main thread is blocked by one live refresh of all 1,000 rows.
        blocked = page.evaluate("""async () => {
            const t = performance.now();
            const r = await fetch(location.pathname.replace('/dag-runs/', '/api/v2/dag-runs/'));
            const doc = await r.json();
            const t1 = performance.now();
            for (const n of doc.dagRunDetails.nodes) {
              const tr = document.querySelector(`#steps tr[data-step="${n.step.name}"]`);
              if (tr) tr.dataset.status = n.statusLabel;
            }
            return [t1 - t, performance.now() - t1];
        }""")
        print(f"  live refresh in the page: fetch {blocked[0]:.0f} ms, update 1,000 rows {blocked[1]:.0f} ms")
        browser.close()
    return True


def _bench_against_dagu() -> None:
    """Both UIs from the user's side, engines alternated; prints medians and our/Dagu ratios."""
    ref = reference_dagu()
    if ref is None:
        print("Dagu side by side: skipped, binary not found (npm install @dagu-org/dagu-linux-x64 or set DAGU_REF_BIN)")
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("Dagu side by side: skipped, playwright not installed")
        return
    engines = {"ours": [sys.executable, "-m", "dagu"], "dagu": [ref]}
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    with tempfile.TemporaryDirectory(prefix="dagu-bench-ui-ref-") as tmp:
        try:
            for who, argv in engines.items():
                home = Path(tmp) / who
                _write_dags(home)
                took = _start_run([*argv, "start", "--run-id", REF_RUN_ID, "big"], home)
                servers[who] = _spawn_server([*argv, "server", "-s", "127.0.0.1"], home)
                print(f"Side by side, {who}: {STEP_COUNT}-step chain via `start` took {took:.1f} s", flush=True)
            version = httpx.get(servers["dagu"][1] + "/api/v2/health", timeout=5).json().get("version", "?")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                            args=CHROMIUM_ARGS)
                try:
                    times = _alternate(browser, {who: base for who, (_, base) in servers.items()})
                finally:
                    browser.close()
        finally:
            for proc, _ in servers.values():
                _stop(proc)
    _report(times, version)


def _start_run(argv: list[str], home: Path) -> float:
    """Seconds `argv` (a `start`) took in `home`.

    Raises:
        RuntimeError: the run failed; carries the tail of its output.
    """
    began = time.perf_counter()
    proc = subprocess.run(argv, env=_env(home), cwd=home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}")
    return time.perf_counter() - began


def _spawn_server(argv: list[str], home: Path) -> tuple[subprocess.Popen, str]:
    """(process, base URL) of a `server` on a free loopback port, once its health check answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([*argv, "-p", str(port)], env=_env(home), cwd=home, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/v2/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    _stop(proc)
    raise RuntimeError(f"{' '.join(argv)} never answered {base}/api/v2/health (exit code {proc.returncode})")


def _stop(proc: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=grace)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    env.update({"DAGU_HOME": str(home), "PYTHONPATH": str(ROOT), "DISABLE_PROGRESS": "1"})
    return env


def _alternate(browser, bases: dict[str, str]) -> dict[tuple[str, str, str], list[float]]:
    """{(path, cache, who): [ms, ...]}: ROUNDS visits of each page, the engines taking turns."""
    warm = {}
    for who, base in bases.items():
        warm[who] = browser.new_context(viewport=VIEWPORT)
        warm[who].add_init_script(_PROBE_JS % json.dumps(SHOWN))
        page = warm[who].new_page()
        for path in SHOWN:  # fill the HTTP and code caches; not counted
            _time_shown(page, base + path)
    times: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(ROUNDS):
        for path in SHOWN:
            for who, base in bases.items():
                cold = browser.new_context(viewport=VIEWPORT)
                cold.add_init_script(_PROBE_JS % json.dumps(SHOWN))
                times.setdefault((path, "first visit", who), []).append(_time_shown(cold.new_page(), base + path))
                cold.close()
                times.setdefault((path, "repeat visit", who), []).append(_time_shown(warm[who].pages[0], base + path))
    for context in warm.values():
        context.close()
    return times


def _time_shown(page, url: str) -> float:
    """Milliseconds from navigation start until `url`'s last row (SHOWN) is laid out.

    Raises:
        RuntimeError: the row never became visible within 60 s.
    """
    page.goto(url, wait_until="commit")
    try:
        shown_ms = page.wait_for_function("() => window.__shownAt", timeout=60_000).json_value()
    except Exception as exc:
        scope, text = SHOWN[url[url.index("/", len("http://")):]]
        raise RuntimeError(f"{url}: no visible element {scope}//*[text()='{text}'] within 60 s") from exc
    # Leave the page so a live-refreshing UI does not use the CPU while the other engine is measured.
    page.goto("about:blank")
    return shown_ms


def _report(times: dict[tuple[str, str, str], list[float]], version: str) -> None:
    print(f"Side by side with Dagu {version}: headless Chromium {VIEWPORT['width']}x{VIEWPORT['height']}, "
          f"navigation start to last row laid out, median of {ROUNDS}, engines alternated")
    labels = {"/dags": f"DAG list, {DAG_COUNT + 1} DAGs, first page ({LIST_PAGE_SIZE} rows)",
              f"/dag-runs/big/{REF_RUN_ID}": f"run page, {STEP_COUNT} step rows"}
    for path, label in labels.items():
        for cache in ("first visit", "repeat visit"):
            ours = statistics.median(times[(path, cache, "ours")])
            dagu = statistics.median(times[(path, cache, "dagu")])
            print(f"  {label + ', ' + cache:<57} ours {ours:6.0f} ms, Dagu {dagu:6.0f} ms, ratio {ours / dagu:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
