"""The archive step type on real files: every format, filters, strip_components, safe extraction."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from dagu.spec.model import Dag, Location, Step
from dagu.steps.archive import ArchiveExecutor
from dagu.steps.base import Attempt
from helpers import EXAMPLES, run_dagu


def _attempt(tmp_path: Path, operation: str, **config) -> Attempt:
    loc = Location(str(tmp_path / "dag.yaml"))
    step = Step(name="a", location=loc, type="archive", commands=(operation,))
    logs = tmp_path / "logs"
    return Attempt(
        dag=Dag(name="t", location=loc), step=step, commands=(operation,), script=None, shell=("sh",), env={},
        cwd=str(tmp_path), stdout_path=str(logs / "out.log"), stderr_path=str(logs / "err.log"), config=config,
    )  # fmt: skip


def _run(tmp_path: Path, operation: str, **config):
    result = ArchiveExecutor(_attempt(tmp_path, operation, **config)).run()
    out = (tmp_path / "logs" / "out.log").read_text()
    (tmp_path / "logs" / "out.log").unlink()
    return result, (json.loads(out) if out.strip() else None)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "data").mkdir(parents=True)
    (src / "logs").mkdir()
    (src / "data" / "a.txt").write_text("alpha")
    (src / "data" / "b.csv").write_text("1,2")
    (src / "logs" / "app.log").write_text("noise")
    return src


@pytest.mark.parametrize("name", ["out.tar", "out.tar.gz", "out.tgz", "out.tar.bz2", "out.tar.xz", "out.zip"])
def test_create_list_extract_round_trip_in_every_format(tmp_path, tree, name):
    result, summary = _run(tmp_path, "create", source="src", destination=name)
    assert result.exit_code == 0, result.error
    assert summary["files"] == 3 and summary["bytes"] == len("alpha") + len("1,2") + len("noise")
    result, listing = _run(tmp_path, "list", source=name)
    assert sorted(e["path"] for e in listing["entries"] if e["type"] == "file") == ["data/a.txt", "data/b.csv", "logs/app.log"]
    result, summary = _run(tmp_path, "extract", source=name, destination="x")
    assert result.exit_code == 0, result.error
    assert (tmp_path / "x" / "data" / "a.txt").read_text() == "alpha"
    assert (tmp_path / "x" / "logs" / "app.log").read_text() == "noise"


def test_include_and_exclude_globs_filter_files(tmp_path, tree):
    _run(tmp_path, "create", source="src", destination="f.tar.gz", include=["data/*"], exclude="*.csv")
    _, listing = _run(tmp_path, "list", source="f.tar.gz")
    assert [e["path"] for e in listing["entries"]] == ["data/a.txt"]


def test_strip_components_drops_leading_folders(tmp_path, tree):
    _run(tmp_path, "create", source="src", destination="s.zip")
    result, summary = _run(tmp_path, "extract", source="s.zip", destination="flat", strip_components=1)
    assert result.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "flat").iterdir()) == ["a.txt", "app.log", "b.csv"]


def test_existing_files_are_kept_unless_overwrite(tmp_path, tree):
    _run(tmp_path, "create", source="src", destination="o.tar")
    (tmp_path / "x" / "data").mkdir(parents=True)
    (tmp_path / "x" / "data" / "a.txt").write_text("mine")
    result, _ = _run(tmp_path, "extract", source="o.tar", destination="x")
    assert result.exit_code == 1 and "already exists; set `overwrite: true`" in result.error
    assert (tmp_path / "x" / "data" / "a.txt").read_text() == "mine"
    result, _ = _run(tmp_path, "extract", source="o.tar", destination="x", overwrite=True)
    assert result.exit_code == 0 and (tmp_path / "x" / "data" / "a.txt").read_text() == "alpha"


def test_create_refuses_to_replace_an_archive_unless_overwrite(tmp_path, tree):
    _run(tmp_path, "create", source="src", destination="r.tar")
    result, _ = _run(tmp_path, "create", source="src", destination="r.tar")
    assert result.exit_code == 1 and "r.tar already exists" in result.error


def _tar_with(tmp_path: Path, name: str, members: list[tarfile.TarInfo]) -> None:
    with tarfile.open(tmp_path / name, "w") as tf:
        for info in members:
            data = b"evil" if info.isfile() else None
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)


def test_path_traversal_is_refused(tmp_path):
    _tar_with(tmp_path, "bad.tar", [tarfile.TarInfo("../escaped.txt")])
    result, _ = _run(tmp_path, "extract", source="bad.tar", destination="dest")
    assert result.exit_code == 1 and "refusing unsafe path '../escaped.txt'" in result.error
    assert not (tmp_path / "escaped.txt").exists()


def test_absolute_member_paths_are_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "abs.zip", "w") as zf:
        zf.writestr("/tmp/abs-evil.txt", "x")
    result, _ = _run(tmp_path, "extract", source="abs.zip", destination="dest")
    assert result.exit_code == 1 and "unsafe path" in result.error


def test_links_pointing_outside_the_destination_are_refused(tmp_path):
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "../../outside"
    through = tarfile.TarInfo("link/file.txt")
    _tar_with(tmp_path, "link.tar", [link, through])
    result, _ = _run(tmp_path, "extract", source="link.tar", destination="dest")
    assert result.exit_code == 1 and "points outside the destination" in result.error
    assert not (tmp_path / "outside").exists()


def test_continue_on_error_extracts_the_safe_members_and_still_fails(tmp_path):
    _tar_with(tmp_path, "mixed.tar", [tarfile.TarInfo("../bad.txt"), tarfile.TarInfo("good.txt")])
    result, summary = _run(tmp_path, "extract", source="mixed.tar", destination="dest", continue_on_error=True)
    assert result.exit_code == 1 and result.error == "archive: 1 file(s) failed"
    assert summary["files"] == 1 and "unsafe path '../bad.txt'" in summary["errors"][0]
    assert (tmp_path / "dest" / "good.txt").read_text() == "evil" and not (tmp_path / "bad.txt").exists()


def test_unknown_format_and_operation_are_clear_errors(tmp_path, tree):
    result, _ = _run(tmp_path, "create", source="src", destination="out.rar")
    assert result.exit_code == 1 and "cannot tell the format of" in result.error
    result, _ = _run(tmp_path, "compress", source="src")
    assert result.exit_code == 1 and "unknown operation 'compress'" in result.error


def test_example_runs_through_the_cli(tmp_path):
    result = run_dagu("start", str(EXAMPLES / "steps" / "archive.yaml"), home=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
