"""An experiment ready to run: the tracking URI is resolved above the tracking layer, by
DESIGN.md's precedence, and made absolute."""

from __future__ import annotations

from pathlib import Path

import pytest

from medxfer.errors import MedxferInputError
from medxfer.train.experiment import load_run_config, parse_run_config

FIXTURE = Path(__file__).parents[1] / "fixtures" / "train_tiny.yaml"
RAW = {"method": "finetune", "data": {"root": "d", "flag": "x"}}


def test_tracking_uri_precedence_and_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = load_run_config(FIXTURE, ["data.root=synth"])
    assert cfg.tracking.uri == f"sqlite:///{tmp_path / 'mlruns.db'}"  # the embedded default
    assert cfg.data.root == str(tmp_path / "synth")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    assert parse_run_config(RAW).tracking.uri == f"sqlite:///{tmp_path / 'env.db'}"
    with_yaml = {**RAW, "tracking": {"uri": "sqlite:///yaml.db"}}
    assert parse_run_config(with_yaml).tracking.uri == f"sqlite:///{tmp_path / 'yaml.db'}"
    assert parse_run_config(with_yaml, cli_tracking_uri="http://127.0.0.1:5000").tracking.uri \
        == "http://127.0.0.1:5000"


def test_a_uri_that_cannot_be_shared_names_where_it_was_written(tmp_path):
    with pytest.raises(MedxferInputError, match=r"^--tracking-uri: 'sqlite:///:memory:': .*in-mem"):
        parse_run_config(RAW, source="exp.yaml", cli_tracking_uri="sqlite:///:memory:")
    in_yaml = {**RAW, "tracking": {"uri": "foo://bar"}}
    with pytest.raises(MedxferInputError, match=r"^exp.yaml: tracking.uri: 'foo://bar': unknown "
                                                r"scheme 'foo'"):
        parse_run_config(in_yaml, source="exp.yaml")
