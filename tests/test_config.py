"""Settings: config.yaml documents every default; environment and arguments override in order."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from search_engine.config import Settings, load_config
from search_engine.errors import ParameterError

REPO = Path(__file__).resolve().parents[1]


def test_config_yaml_lists_every_setting_with_its_default():
    listed = yaml.safe_load((REPO / "config.yaml").read_text())
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    assert listed == defaults


def test_precedence_file_env_arguments(tmp_path, monkeypatch):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("k: 7\nneighbours: 11\nmode: similar\n")
    monkeypatch.setenv("AUDIO2VEC_NEIGHBOURS", "13")
    s = load_config(cfg, mode="match")
    assert (s.k, s.neighbours, s.mode) == (7, 13, "match")
    monkeypatch.setenv("AUDIO2VEC_CONFIG", str(cfg))
    assert load_config().k == 7


def test_bad_settings_are_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("nope: 1\n")
    with pytest.raises(ParameterError, match="unknown settings"):
        load_config(bad)
    with pytest.raises(ParameterError, match="mode"):
        load_config(None, mode="loud")
    with pytest.raises(ParameterError, match="k"):
        load_config(None, k=0)
    with pytest.raises(ParameterError, match="cannot read"):
        load_config(None, k="many")
