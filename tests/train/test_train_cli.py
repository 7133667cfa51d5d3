"""``medxfer train`` end to end into a temporary sqlite store (fast path)."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from medxfer.cli import main

FIXTURE = Path(__file__).parents[1] / "fixtures" / "train_tiny.yaml"


def test_train_records_the_run_schema(synth_root, tracking_uri, capsys):
    rc = main(["train", str(FIXTURE), "--tracking-uri", tracking_uri, "--name", "t",
               "--set", f"data.root={synth_root}", "--set", "train.epochs=2"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "epoch 1/2:" in out and "selected epoch" in out
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name("sweep/t")
    (run,) = client.search_runs([exp.experiment_id])
    tags, params = run.data.tags, run.data.params
    assert run.info.status == "FINISHED"
    assert {k: tags[k] for k in ("medxfer.kind", "medxfer.source", "medxfer.target",
                                 "medxfer.arch", "medxfer.method", "medxfer.benchmark",
                                 "medxfer.sweep")} == {
        "medxfer.kind": "trial", "medxfer.source": "imagenet", "medxfer.target": "synthpneumonia",
        "medxfer.arch": "resnet", "medxfer.method": "finetune", "medxfer.benchmark": "dataset",
        "medxfer.sweep": "t"}
    assert {k: params[k] for k in ("lr", "batch_size", "lambda_lr", "epochs", "momentum",
                                   "weight_decay", "freeze_backbone")} == {
        "lr": "0.05", "batch_size": "16", "lambda_lr": "0.9", "epochs": "2", "momentum": "0.9",
        "weight_decay": "0.0001", "freeze_backbone": "False"}
    hist = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in hist] == [1, 2, 3]
    best = min(hist[:2], key=lambda m: m.value)
    assert hist[-1].value == best.value  # the last step is the selected model
    assert "test_auc" in run.data.metrics and "selected_epoch" in run.data.metrics
    arts = [a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")]
    assert arts == ["checkpoint/model.pt"]


def test_config_errors_exit_2_naming_the_yaml_path(tmp_path, tracking_uri, capsys):
    rc = main(["train", str(FIXTURE), "--tracking-uri", tracking_uri,
               "--set", "train.lr=-1", "--set", "train.batch_size=0"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "train_tiny.yaml" in err and "train.lr: must be > 0" in err
    assert "train.batch_size: must be >= 1" in err
