"""Real sweeps on the session's local Ray runtime with a sqlite MLflow store, running the toy
trainable (``tests/toy_trainable.py``: a real tiny torch loop on synthetic tensors with the
launcher's contract). The child runs are checked against what the toy logs when run in-process
on the same configuration."""

from __future__ import annotations

import json
import math

import pytest

from medxfer.methods.session import LocalSession
from medxfer.tracking import schema
from medxfer.tracking.query import ground_truth
from medxfer.tune.experiment import experiment_from_dict
from medxfer.tune.trainables import merge_sampled
from medxfer.tune.sweep import run_sweep

from sweep_helpers import experiment, steps, sweep_runs
from toy_trainable import Toy

pytestmark = pytest.mark.timeout(300)

METRICS = ("train_loss", "val_loss", "val_auc", "test_auc")


# One default trainable for every sweep (a call in the default would be built once anyway).
_TOY = Toy(n=192)


def _sweep(tmp_path, uri, name, search, toy=_TOY, **over):
    exp = experiment_from_dict(experiment(search, **over))
    return run_sweep(exp, name=name, tracking_uri=uri, trainable=toy, verbose=0,
                     storage_path=str(tmp_path / "ray_results"))


def _history(uri, run_id, key) -> dict[int, float]:
    from mlflow import MlflowClient

    return {m.step: m.value for m in
            MlflowClient(tracking_uri=uri).get_metric_history(run_id, key)}


def _check_logged_as_toy(tmp_path, uri, child, base, sampled_keys, epochs):
    """The child run's metrics are the toy's own, epoch by epoch: the toy run in-process (a
    LocalSession) on the child's sampled configuration reports the same values."""
    sampled = {k: float(child.data.params[k.split(".")[-1]]) for k in sampled_keys}
    session = LocalSession(tmp_path / f"local-{child.info.run_id}")
    Toy(n=192).run(merge_sampled(base, sampled), session)
    assert [h["epoch"] for h in session.history] == list(range(1, epochs + 1))
    best = min(session.history, key=lambda h: (h["val_loss"], h["epoch"]))
    for key in METRICS:
        logged = _history(uri, child.info.run_id, key)
        want = {h["epoch"]: h[key] for h in session.history} | {epochs + 1: best[key]}
        assert logged == pytest.approx(want, rel=1e-5, abs=1e-7), key


def _check_children(uri, name, n, epochs):
    parents, children = sweep_runs(uri, name)
    assert len(parents) == 1
    assert len(children) == n
    assert len({c.data.tags[schema.TRIAL_ID] for c in children}) == n
    for c in children:
        t = c.data.tags
        assert t[schema.PARENT_RUN_ID] == parents[0].info.run_id
        assert t[schema.SWEEP] == name and t[schema.KIND] == schema.KIND_TRIAL
        assert c.info.status == "FINISHED"
        # every epoch once, then the selected epoch repeated at the final step
        for key in METRICS:
            assert steps(uri, c.info.run_id, key) == list(range(1, epochs + 2)), key
        sel = int(t[schema.SELECTED_STEP])
        assert 1 <= sel <= epochs
        # hardware telemetry of the trial's process (added by TuneSession.report), per epoch,
        # and the trial's Ray node
        assert steps(uri, c.info.run_id, "system/cpu_percent") == list(range(1, epochs + 1))
        assert c.data.metrics["system/memory_rss_mb"] > 10
        assert c.data.metrics["system/cpu_percent"] >= 0
        assert len(t[schema.NODE_ID]) == 56 and int(t[schema.NODE_ID], 16) >= 0
    return parents[0], children


def test_grid_concurrent_sweep_logs_completely(ray_runtime, tmp_path, tracking_uri):
    """Grid 2 x 2 with two concurrent trials: 4 children, every epoch, no duplicates; the sweep's
    ground-truth row is what medxfer.tracking.query.ground_truth answers for sweep/<name>."""
    res = _sweep(tmp_path, tracking_uri, "grid", {
        "algorithm": "grid", "max_concurrent": 2, "space": {
            "train.lr": {"grid": [0.1, 0.01]}, "train.momentum": {"choice": [0.9, 0.0]}}})
    assert res.n_trials == 4 and res.n_errored == 0
    parent, children = _check_children(tracking_uri, "grid", 4, 2)
    combos = {(c.data.params["lr"], c.data.params["momentum"]) for c in children}
    assert combos == {("0.1", "0.9"), ("0.1", "0.0"), ("0.01", "0.9"), ("0.01", "0.0")}
    # MLflow names say what a trial is (pair and sampled values), not Ray's trial id
    assert {c.info.run_name: (c.data.params["lr"], c.data.params["momentum"])
            for c in children} == {
        "scratch -> synthpneumonia lr=0.1 mom=0.9": ("0.1", "0.9"),
        "scratch -> synthpneumonia lr=0.1 mom=0": ("0.1", "0.0"),
        "scratch -> synthpneumonia lr=0.01 mom=0.9": ("0.01", "0.9"),
        "scratch -> synthpneumonia lr=0.01 mom=0": ("0.01", "0.0")}
    base = experiment_from_dict(experiment({})).config
    for c in children:
        _check_logged_as_toy(tmp_path, tracking_uri, c, base, ("train.lr", "train.momentum"), 2)

    gt = ground_truth(tracking_uri, "sweep/grid")
    assert list(gt.index) == ["scratch"] and list(gt.columns) == ["synthpneumonia"]
    best = min(children, key=lambda c: (c.data.metrics["val_loss"], c.info.run_id))
    assert math.isclose(gt.loc["scratch", "synthpneumonia"], best.data.metrics["test_auc"])
    assert res.best["run_id"] == best.info.run_id
    assert res.best["value"] == pytest.approx(best.data.metrics["test_auc"])
    # the parent's row names the selected child's run-schema tags
    assert {k: res.best[k] for k in ("source", "target", "arch", "method")} == {
        "source": best.data.tags[schema.SOURCE], "target": best.data.tags[schema.TARGET],
        "arch": best.data.tags[schema.ARCH], "method": best.data.tags[schema.METHOD]}
    assert set(res.best_config) == {"train.lr", "train.momentum"}

    from mlflow import MlflowClient

    p = MlflowClient(tracking_uri=tracking_uri).get_run(parent.info.run_id)
    assert p.info.status == "FINISHED"
    assert p.data.tags[schema.BEST_RUN_ID] == best.info.run_id
    assert p.data.metrics["best_test_auc"] == pytest.approx(best.data.metrics["test_auc"])
    assert p.data.params["search.algorithm"] == "grid"
    # the MLflow UI's training view and chart order (tracking/store.experiment_tags)
    exp = MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name("sweep/grid")
    assert exp.tags[schema.EXPERIMENT_KIND] == "custom_model_development"
    assert exp.tags[schema.PRIMARY_METRIC] == "test_auc"


def test_hyperopt_sweep_params_in_range(ray_runtime, tmp_path, tracking_uri):
    res = _sweep(tmp_path, tracking_uri, "hyper", {
        "algorithm": "hyperopt", "num_samples": 3, "max_concurrent": 1, "seed": 1,
        "space": {"train.lr": {"loguniform": [1e-3, 1e-1]},
                  "train.batch_size": {"choice": [16, 64]}},
        "points_to_evaluate": [{"train.lr": 0.02, "train.batch_size": 16}]},
        train={"epochs": 1})
    assert res.n_trials == 3 and res.n_errored == 0
    _, children = _check_children(tracking_uri, "hyper", 3, 1)
    lrs = [float(c.data.params["lr"]) for c in children]
    assert all(1e-3 <= lr <= 1e-1 for lr in lrs)
    assert {c.data.params["batch_size"] for c in children} <= {"16", "64"}
    assert 0.02 in lrs  # points_to_evaluate ran first


def test_random_sweep_params_in_range(ray_runtime, tmp_path, tracking_uri):
    res = _sweep(tmp_path, tracking_uri, "rand", {
        "algorithm": "random", "num_samples": 3, "max_concurrent": 2, "seed": 3,
        "scheduler": {"type": "asha", "max_t": 1, "grace_period": 1},  # plugs in, stops none
        "space": {"train.lr": {"uniform": [0.01, 0.2]},
                  "train.weight_decay": {"choice": [0.0, 1e-4]}}},
        train={"epochs": 1})
    assert res.n_trials == 3
    _, children = _check_children(tracking_uri, "rand", 3, 1)
    assert all(0.01 <= float(c.data.params["lr"]) <= 0.2 for c in children)
    assert {c.data.params["weight_decay"] for c in children} <= {"0.0", "0.0001"}


def test_failed_trial_retried_from_checkpoint(ray_runtime, tmp_path, tracking_uri):
    """The trial raises on its first attempt at epoch 2; the retry resumes after epoch 1."""
    log = tmp_path / "attempts.jsonl"
    res = _sweep(tmp_path, tracking_uri, "retry", {
        "algorithm": "grid", "max_failures": 1, "space": {"train.lr": {"grid": [0.05]}}},
        toy=Toy(n=192, fail_at_epoch=2, fail_marker=str(tmp_path / "failed"), log=str(log)),
        train={"epochs": 3})
    assert res.n_errored == 0
    attempts = [json.loads(line) for line in log.read_text().splitlines()]
    assert [a["start_epoch"] for a in attempts] == [0, 1]
    _, children = _check_children(tracking_uri, "retry", 1, 3)
    rid = children[0].info.run_id
    from mlflow import MlflowClient

    hist = {m.step: m.value for m in
            MlflowClient(tracking_uri=tracking_uri).get_metric_history(rid, "start_epoch")}
    assert hist[1] == 0 and hist[2] == 1 and hist[3] == 1


def test_patience_stopper():
    from medxfer.tune.search import PatienceStopper

    stop = PatienceStopper("val_auc", "max", patience=2)
    seq = [0.6, 0.7, 0.65, 0.7, 0.71, 0.5, 0.5]
    assert [stop("t", {"val_auc": v}) for v in seq] == [False, False, False, True, False,
                                                         False, True]
    assert stop("u", {"other": 1.0}) is False
