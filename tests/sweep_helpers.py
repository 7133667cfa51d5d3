"""Shared helpers of the sweep tests: experiment dicts and MLflow read-back."""

from __future__ import annotations

from medxfer.tracking import schema

BASE = {
    "method": "finetune",
    "data": {"root": "data/synth", "flag": "synthpneumonia", "source": "scratch"},
    "model": {"backbone": "tiny_cnn"},
    "train": {"epochs": 2, "optimizer": "sgd", "batch_size": 32, "lr": 0.05, "momentum": 0.9},
}


def experiment(search: dict, **over) -> dict:
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(raw.get(k), dict):
            raw[k] = {**raw[k], **v}
        else:
            raw[k] = v
    raw["search"] = search
    return raw


def sweep_runs(uri: str, name: str):
    """(parent runs, child runs) of experiment sweep/<name>."""
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=uri)
    exp = c.get_experiment_by_name(schema.experiment_name("sweep", name))
    runs = c.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get(schema.KIND) == schema.KIND_SWEEP]
    children = [r for r in runs if r.data.tags.get(schema.KIND) == schema.KIND_TRIAL]
    return parents, children


def steps(uri: str, run_id: str, key: str) -> list[int]:
    from mlflow import MlflowClient

    return sorted(m.step for m in MlflowClient(tracking_uri=uri).get_metric_history(run_id, key))
