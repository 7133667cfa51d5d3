"""scc's seed-000 recipe: the searched LambdaLR factor shows in the logged per-epoch lr, text
removal runs in every stage, App. B augmentation in SimCLR and fine-tuning."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from train_helpers import make_config

from medxfer.methods.dce import DCEOptions, remove_text_tensor, save_dce
from medxfer.methods.experiment import parse_experiment, method_options
from medxfer.methods.scc import app_b_transforms, stage_config
from medxfer.models import ShallowUNet

REPO = Path(__file__).resolve().parents[2]


def test_scc_hyperopt_lambda_is_the_logged_lr_factor(synth_root, tmp_path):
    """`medxfer train` on search_spaces/scc_hyperopt.yaml (its own lr and lambda), shrunk to
    the synthetic data: in the SimCLR and fine-tuning stages the MLflow metric ``lr`` of the
    stage's epoch e (from 0) is lr * lambda ** e."""
    from mlflow import MlflowClient

    from medxfer.cli import main

    raw = yaml.safe_load((REPO / "search_spaces" / "scc_hyperopt.yaml").read_text())
    raw.pop("name")
    raw.pop("search")
    lr, lam = raw["train"]["lr"], raw["train"]["lambda_lr"]
    exp = tmp_path / "scc.yaml"
    exp.write_text(yaml.safe_dump(raw))
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    sets = ["data.root=" + str(synth_root), "data.flag=synthpneumonia", "data.size=28",
            "data.n_train_per_class=null", "data.n_val_per_class=null",
            "model.backbone=tiny_cnn", "model.weights=null", "scaling.use_gpu=false",
            "method_config.dce_epochs=1", "method_config.simclr_epochs=2", "train.epochs=6",
            "train.batch_size=16"]
    assert main(["train", str(exp), "--tracking-uri", uri, "--name", "lam",
                 *[a for s in sets for a in ("--set", s)]]) == 0
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("sweep/lam").experiment_id])
    logged = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "lr")}
    stage = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "stage")}
    assert [stage[s] for s in range(1, 7)] == [0, 1, 1, 2, 2, 2]
    assert logged[1] == pytest.approx(1e-3)  # the DCE stage: Adam at dce_lr, no schedule
    for step, e in ((2, 0), (3, 1), (4, 0), (5, 1), (6, 2)):
        assert logged[step] == pytest.approx(lr * lam ** e, rel=1e-6), step


def test_text_removal_runs_before_dce_in_every_stage(tmp_path, synth_root):
    from medxfer.data import build_transform
    from medxfer.data.synth import synthesize
    from medxfer.data.text_removal import ClassicalDetector
    from medxfer.data.medmnist import MedMNISTDataset

    torch.manual_seed(0)
    opts = DCEOptions(text_removal="classical")
    path = tmp_path / "dce.pt"
    torch.save(save_dce(ShallowUNet(1, 1, opts.base_channels, opts.depth), opts), path)
    dce = build_transform([{"name": "dce", "weights": str(path)}])
    plain = build_transform([{"name": "dce", "weights": str(path), "text_removal": "none"}])
    synthesize(tmp_path / "text", size=64, n_per_class=4, text=True, text_prob=1.0,
               modalities=["synthchest"])
    x = MedMNISTDataset(tmp_path / "text", "synthchest", "train", 64).image(0)
    cleaned = remove_text_tensor(x, ClassicalDetector())
    assert not torch.equal(cleaned, x)  # the image carries text the detector finds
    assert torch.equal(dce(x), plain(cleaned))
    assert not torch.equal(dce(x), plain(x))

    # scc: the DCE stage trains after text removal; the later stages' dce transform reads it.
    cfg = parse_experiment(make_config(synth_root, "scc", epochs=6, method_config={
        "dce_epochs": 1, "simclr_epochs": 2, "text_removal": "classical"}))
    opts = method_options(cfg)
    dce_stage = stage_config(cfg, opts, "dce", tmp_path, 3)
    assert dce_stage["method_config"]["text_removal"] == "classical"
    for stage in ("simclr", "finetune"):
        c = stage_config(cfg, opts, stage, tmp_path, 3)
        assert c["data"]["transforms"][0] == {"name": "dce", "weights": str(tmp_path / "dce.pt")}
        assert c["data"]["transforms"][1:] == app_b_transforms(28, xrv=False)  # App. B
        assert c["data"]["eval_transforms"] == c["data"]["transforms"][:1]
