"""Experiment YAML: typed models (config layer), the method-aware parse (methods layer):
defaults merge, overrides, absolute paths, errors by YAML path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from medxfer.config import ExperimentConfig, deep_merge, parse_overrides, read_yaml
from medxfer.errors import MedxferInputError
from medxfer.methods.experiment import load_config, method_options, parse_experiment

FIXTURE = Path(__file__).parent / "fixtures" / "train_tiny.yaml"


def test_fixture_loads_with_method_defaults_under_user_values(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(FIXTURE, ["data.root=synth", "train.lr=0.5"])
    assert cfg.train.lr == 0.5 and cfg.train.lambda_lr == 0.9
    assert cfg.train.early_stopping_metric == "val_auc"   # finetune's default
    assert cfg.data.root == str(tmp_path / "synth")        # absolute
    assert cfg.method_config == {"freeze_backbone": False}  # the schema's defaults filled in
    assert cfg.tracking.uri is None  # resolved above the tracking layer (tests/train)
    simclr = parse_experiment({"method": "simclr", "data": {"root": "/d", "flag": "x"},
                               "train": {"scheduler": "none"}})
    assert simclr.train.scheduler == "none" and simclr.train.select_by == "val_loss"
    assert simclr.method_config["temperature"] == 0.5
    assert method_options(simclr).temperature == 0.5


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
    bad.write_text("method: [unclosed\n")
    with pytest.raises(MedxferInputError, match="not valid YAML") as e:
        read_yaml(bad)
    assert str(bad) in str(e.value)


def test_typed_models_and_helpers_need_no_registry(tmp_path):
    cfg = ExperimentConfig.model_validate({"method": "any", "data": {"root": "d", "flag": "x"},
                                           "model": {"weights": "~/w.pt"}})
    moved = cfg.with_absolute_paths(tmp_path)
    assert moved.data.root == str(tmp_path / "d") and moved.model.weights == \
        str(Path.home() / "w.pt")
    assert deep_merge({"train": {"lr": 1, "epochs": 2}}, {"train": {"lr": 3}}) == \
        {"train": {"lr": 3, "epochs": 2}}
    assert parse_overrides(["train.lr=0.1", "data.as_rgb=true"]) == \
        {"train.lr": 0.1, "data.as_rgb": True}
    with pytest.raises(MedxferInputError, match="expected key=value"):
        parse_overrides(["train.lr"])


def test_config_layer_imports_neither_methods_nor_tracking():
    code = ("import sys, medxfer.config; "
            "print(sorted(m for m in sys.modules if m.startswith('medxfer')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['medxfer', 'medxfer.config', 'medxfer.errors']"
