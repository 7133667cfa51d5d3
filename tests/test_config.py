"""Experiment YAML: defaults merge, overrides, absolute paths, errors by YAML path."""

from __future__ import annotations

from pathlib import Path

import pytest

from medxfer.config import load_config, parse_experiment
from medxfer.errors import MedxferInputError

FIXTURE = Path(__file__).parent / "fixtures" / "train_tiny.yaml"


def test_fixture_loads_with_method_defaults_under_user_values(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(FIXTURE, ["data.root=synth", "train.lr=0.5"])
    assert cfg.train.lr == 0.5 and cfg.train.lambda_lr == 0.9
    assert cfg.train.early_stopping_metric == "val_auc"   # finetune's default
    assert cfg.data.root == str(tmp_path / "synth")        # absolute
    assert cfg.tracking.uri.startswith("sqlite:////")
    simclr = parse_experiment({"method": "simclr", "data": {"root": "/d", "flag": "x"},
                               "train": {"scheduler": "none"}})
    assert simclr.train.scheduler == "none" and simclr.train.select_by == "val_loss"
    assert simclr.method_config["temperature"] == 0.5 and simclr.options().temperature == 0.5


def test_errors_name_the_file_and_yaml_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: finetune\ndata: {root: /d, flag: x}\n"
                   "train: {lr: 0, optimizer: rmsprop, lrr: 1}\nmethod_config: {freez: true}\n")
    with pytest.raises(MedxferInputError) as e:
        load_config(bad)
    msg = str(e.value)
    assert msg.startswith(str(bad))
    for line in ("train.lr: must be > 0", "train.optimizer: must be one of 'sgd' or 'adam'",
                 "train.lrr: unknown field", "method_config.freez: unknown field"):
        assert line in msg
    bad.write_text("method: nope\ndata: {root: /d, flag: x}\n")
    with pytest.raises(MedxferInputError, match="method: unknown method 'nope'; valid: cltci"):
        load_config(bad)
    with pytest.raises(MedxferInputError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
