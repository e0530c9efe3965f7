"""Settings: home resolution, config file keys in both spellings, env precedence."""

from __future__ import annotations

import pytest

from dagu.config import ConfigError, load_settings
from dagu.errors import SpecError


def test_dagu_home_puts_every_path_under_it(tmp_path):
    s = load_settings(environ={"DAGU_HOME": str(tmp_path)})
    assert s.dags_dir == tmp_path / "dags"
    assert s.data_dir == tmp_path / "data"
    assert s.log_dir == tmp_path / "logs"
    assert s.base_config == tmp_path / "base.yaml"
    assert s.dag_runs_dir == tmp_path / "data" / "dag-runs"


def test_flag_wins_over_environment(tmp_path):
    other = tmp_path / "other"
    s = load_settings(dagu_home=str(other), environ={"DAGU_HOME": str(tmp_path)})
    assert s.home == other


def test_xdg_layout_without_home(tmp_path):
    s = load_settings(environ={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert s.home is None
    assert s.dags_dir == tmp_path / "cfg" / "dagu" / "dags"
    assert s.data_dir == tmp_path / ".local/share/dagu/data"


def test_config_file_accepts_both_spellings_and_env_overrides_it(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "port: 9000\ndefaultShell: bash\npaths:\n  dagsDir: flows\nscheduler:\n  zombie_detection_interval: 2m\n"
        "queues:\n  config:\n    - name: batch\n      maxConcurrency: 3\n"
    )
    s = load_settings(environ={"DAGU_HOME": str(tmp_path), "DAGU_PORT": "9100"})
    assert s.port == 9100
    assert s.default_shell == "bash"
    assert s.dags_dir == tmp_path / "flows"
    assert s.zombie_detection_interval_s == 120.0
    assert s.queues[0].name == "batch" and s.queues[0].max_concurrency == 3


def test_bad_value_in_config_names_the_key(tmp_path):
    (tmp_path / "config.yaml").write_text("port: eighty\n")
    with pytest.raises(ConfigError, match="port"):
        load_settings(environ={"DAGU_HOME": str(tmp_path)})


def test_broken_config_yaml_names_the_line(tmp_path):
    (tmp_path / "config.yaml").write_text("port: 1\nhost: [unclosed\n")
    with pytest.raises(SpecError) as info:
        load_settings(environ={"DAGU_HOME": str(tmp_path)})
    assert info.value.line >= 2


def test_explicit_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(config=str(tmp_path / "nope.yaml"), environ={"DAGU_HOME": str(tmp_path)})
