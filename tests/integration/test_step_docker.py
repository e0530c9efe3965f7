"""docker / container steps and DAG-level `container:` against a real Docker daemon (no registry)."""

from __future__ import annotations

import time
import uuid

import pytest

from helpers import EXAMPLES, run_dagu, wait_for
from servers import docker_host
from step_runs import err, nodes, out, spawn_start, start, status, statuses, stop, wait_running, write

docker = pytest.importorskip("docker")


@pytest.fixture
def image():
    host, test_image = docker_host()
    return test_image


@pytest.fixture
def api(image):
    client = docker.from_env()
    yield client.api
    client.close()


def _containers(api, dag: str) -> list[dict]:
    return api.containers(all=True, filters={"label": f"dagu.dag={dag}"})


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_image_step_streams_both_logs_and_reports_the_container_exit_code(tmp_path, image, api):
    dag = _name("dk_exit")
    path = write(tmp_path, dag, f"""
        steps:
          - name: run
            type: docker
            config: {{image: "{image}", pull: never, auto_remove: true}}
            command: sh -c 'echo to-out; echo to-err >&2; exit 3'
    """)
    result = start(tmp_path, path)
    assert result.returncode == 1
    node = nodes(status(tmp_path, dag))["run"]
    assert node["statusLabel"] == "failed"
    assert node["exitCode"] == 3
    assert out(node).strip() == "to-out"
    assert "to-err" in err(node)
    assert _containers(api, dag) == []  # auto_remove


def test_command_is_an_argv_without_a_shell_and_env_volumes_working_dir_apply(tmp_path, image, api):
    dag = _name("dk_argv")
    data = tmp_path / "data"
    data.mkdir()
    path = write(tmp_path, dag, f"""
        steps:
          - name: argv
            type: docker
            config: {{image: "{image}", auto_remove: true}}
            command: echo a && echo b
          - name: mounted
            type: container
            config:
              image: "{image}"
              auto_remove: true
              env: {{GREETING: hi}}
              volumes: ["./data:/work:rw"]
              working_dir: /work
              host: {{binds: ["{data}:/raw:ro"]}}
            command: sh -c 'echo "$GREETING" > made.txt; pwd; ls /raw'
    """)
    assert start(tmp_path, path).returncode == 0
    doc = status(tmp_path, dag)
    assert out(nodes(doc)["argv"]).strip() == "a && echo b"
    assert out(nodes(doc)["mounted"]).split() == ["/work", "made.txt"]
    assert (data / "made.txt").read_text().strip() == "hi"


def test_several_commands_run_in_one_background_container(tmp_path, image, api):
    dag = _name("dk_multi")
    path = write(tmp_path, dag, f"""
        steps:
          - name: multi
            type: docker
            config: {{image: "{image}", auto_remove: true}}
            command:
              - sh -c 'echo shared > /tmp/f'
              - cat /tmp/f
              - sh -c 'exit 4'
              - echo never
    """)
    assert start(tmp_path, path).returncode == 1
    node = nodes(status(tmp_path, dag))["multi"]
    assert out(node).split() == ["shared"]
    assert node["exitCode"] == 4
    assert _containers(api, dag) == []


def test_pull_policies_without_a_registry(tmp_path, image):
    dag = _name("dk_pull")
    path = write(tmp_path, dag, f"""
        type: graph
        steps:
          - name: missing_local
            type: docker
            config: {{image: "{image}", pull: missing, auto_remove: true}}
            command: echo ok
          - name: always
            type: docker
            config: {{image: "{image}", pull: always, auto_remove: true}}
            command: echo never
          - name: never_absent
            type: docker
            config: {{image: "local/absent:{uuid.uuid4().hex[:6]}", pull: false}}
            command: echo never
          - name: bad_name
            type: docker
            config: {{image: "Bad Image Name"}}
            command: echo never
    """)
    assert start(tmp_path, path).returncode == 1
    doc = nodes(status(tmp_path, dag))
    assert doc["missing_local"]["statusLabel"] == "succeeded"
    assert f"cannot pull image '{image}' (pull policy always)" in doc["always"]["error"]
    assert "not present locally and the pull policy is never" in doc["never_absent"]["error"]
    assert doc["bad_name"]["statusLabel"] == "failed" and "Bad Image Name" in doc["bad_name"]["error"]


def test_exec_into_a_running_container_by_name(tmp_path, image, api):
    dag = _name("dk_exec")
    target = _name("dagu-test-target")
    cid = api.create_container(image, ["sh", "-c", "echo marker > /tmp/m; sleep 3600"], name=target)["Id"]
    try:
        api.start(cid)
        wait_for(lambda: api.exec_inspect(api.exec_create(cid, ["cat", "/tmp/m"])["Id"]) or True, "target up")
        path = write(tmp_path, dag, f"""
            type: graph
            steps:
              - name: exec
                type: docker
                config: {{container_name: {target}}}
                command: cat /tmp/m
              - name: wrong_command
                type: docker
                config: {{container_name: {target}}}
                command: no-such-binary
              - name: gone
                type: docker
                config: {{container_name: {target}-gone}}
                command: echo never
        """)
        start(tmp_path, path)
        doc = nodes(status(tmp_path, dag))
        assert out(doc["exec"]).strip() == "marker"
        assert doc["wrong_command"]["statusLabel"] == "failed" and doc["wrong_command"]["exitCode"] in (126, 127)
        assert f"container '{target}-gone' not found" in doc["gone"]["error"]
    finally:
        api.remove_container(cid, force=True)


def test_step_timeout_stops_the_container(tmp_path, image, api):
    dag = _name("dk_timeout")
    path = write(tmp_path, dag, f"""
        steps:
          - name: slow
            type: docker
            timeout_sec: 2
            config: {{image: "{image}", auto_remove: true}}
            command: sleep 30
    """)
    began = time.monotonic()
    assert start(tmp_path, path).returncode == 1
    assert time.monotonic() - began < 20  # SIGTERM is ignored by pid 1 `sleep`: the grace SIGKILL ends it
    node = nodes(status(tmp_path, dag))["slow"]
    assert node["statusLabel"] == "failed"
    assert node["exitCode"] == 124
    assert "timed out" in node["error"]
    assert _containers(api, dag) == []


def test_dagu_stop_stops_a_running_container(tmp_path, image, api):
    dag = _name("dk_stop")
    path = write(tmp_path, dag, f"""
        max_clean_up_time_sec: 2
        steps:
          - name: slow
            type: docker
            config: {{image: "{image}", auto_remove: true}}
            command: sleep 30
          - name: after
            command: echo never
    """)
    proc = spawn_start(tmp_path, path)
    wait_running(tmp_path, dag, "slow")
    wait_for(lambda: [c for c in _containers(api, dag) if c["State"] == "running"], "the step container to run")
    began = time.monotonic()
    assert stop(tmp_path, dag, proc) == 0
    assert time.monotonic() - began < 20
    doc = status(tmp_path, dag)
    assert doc["statusLabel"] == "aborted"
    assert statuses(doc) == {"slow": "aborted", "after": "not_started"}
    assert _containers(api, dag) == []


def test_dag_container_runs_command_steps_in_one_shared_container_removed_at_the_end(tmp_path, image, api):
    dag = _name("dk_dagctr")
    path = write(tmp_path, dag, f"""
        env:
          - IMG: {image}
        container:
          image: ${{IMG}}
          pull_policy: missing
          env: [WHO=dag-container]
          working_dir: /tmp
        steps:
          - name: write
            command: sh -c 'echo $WHO > shared.txt; cat /etc/hostname'
          - name: read
            command: cat /tmp/shared.txt
            output: SHARED
          - name: again
            command: cat /etc/hostname
          - name: fail
            command: sh -c 'exit 5'
    """)
    assert start(tmp_path, path).returncode == 1
    doc = nodes(status(tmp_path, dag))
    assert out(doc["read"]).strip() == "dag-container"
    assert out(doc["write"]).strip() == out(doc["again"]).strip()  # one container for the whole run
    assert doc["fail"]["exitCode"] == 5
    assert _containers(api, dag) == []


def test_dag_container_step_timeout_and_a_container_that_cannot_start(tmp_path, image, api):
    dag = _name("dk_dagto")
    path = write(tmp_path, dag, f"""
        container:
          image: {image}
        steps:
          - name: slow
            timeout_sec: 2
            command: sleep 30
    """)
    began = time.monotonic()
    assert start(tmp_path, path).returncode == 1
    assert time.monotonic() - began < 20
    node = nodes(status(tmp_path, dag))["slow"]
    assert node["exitCode"] == 124
    assert _containers(api, dag) == []

    bad = _name("dk_dagbad")
    path = write(tmp_path, bad, """
        container:
          image: local/never-built:1
          pull_policy: always
        steps:
          - command: echo never
    """)
    assert start(tmp_path, path).returncode == 1
    (node,) = nodes(status(tmp_path, bad)).values()
    assert "DAG container from 'local/never-built:1' did not start" in node["error"]
    assert "cannot pull image" in node["error"]


def test_docker_example_runs(tmp_path, image, api):
    result = run_dagu("start", str(EXAMPLES / "steps" / "docker.yaml"), home=tmp_path, env={"TEST_IMAGE": image})
    assert result.returncode == 0, result.stdout + result.stderr
    doc = run_dagu("status", "--json", "docker", home=tmp_path)
    assert '"statusLabel":"succeeded"' in doc.stdout.replace(" ", "")
