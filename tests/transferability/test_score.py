"""``medxfer estimate score``: zoo YAML -> features -> metrics -> MLflow runs, end to end.

Two tiny source models are trained here (plain torch, a few epochs) on two synthetic
modalities, scored on a third, and the logged runs are checked against the metric functions
called directly on features from ``extraction.extract``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medxfer.cli import main
from medxfer.data import load_target, synthesize
from medxfer.models import create_backbone
from medxfer.tracking import schema
from medxfer.transferability import get_metric, list_metrics
from medxfer.transferability.extraction import extract
from medxfer.transferability.fu import fu, fu_loader
from medxfer.transferability.scoring import Prepare

SOURCES = {"synthderm": 4, "synthblood": 3}
TARGET = "synthorgan"  # grey: exercises grey -> RGB for the 3-channel sources
N = 30


def _train(root, flag, n_classes, path):
    ds = load_target(root, flag, 28, n_train_per_class=None, n_val_per_class=None,
                     as_rgb=True, transform=Prepare((0.5,) * 3, (0.5,) * 3, 3))["train"]
    g = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = create_backbone("tiny_cnn", in_chans=3, num_classes=n_classes)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True, generator=g)
        model.train()
        for _ in range(3):
            for x, y in loader:
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
    torch.save(model.state_dict(), path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("score")
    data = tmp / "data"
    synthesize(data, size=28, n_per_class=N, seed=1, modalities=[*SOURCES, TARGET])
    (tmp / "weights").mkdir()
    for flag, c in SOURCES.items():
        _train(data, flag, c, tmp / "weights" / f"{flag}.pt")
    zoo = tmp / "zoo.yaml"
    zoo.write_text("".join(
        f"- name: {flag}\n  architecture: tiny_cnn\n  weights: weights/{flag}.pt\n"
        f"  num_classes: {c}\n  normalization: half\n  in_chans: 3\n"
        for flag, c in SOURCES.items()))
    return tmp, data, zoo


def _runs(uri, name):
    from mlflow import MlflowClient

    c = MlflowClient(uri)
    exp = c.get_experiment_by_name(f"transferability/{name}")
    return c.search_runs([exp.experiment_id], max_results=1000)


def _direct(zoo_dir, data, flag, c):
    """Every metric called directly on features from extraction.extract."""
    model = create_backbone("tiny_cnn", in_chans=3, num_classes=c,
                            weights=zoo_dir / "weights" / f"{flag}.pt")
    ds = load_target(data, TARGET, 28, n_train_per_class=N, n_val_per_class=None, as_rgb=True,
                     transform=Prepare((0.5,) * 3, (0.5,) * 3, 3))["train"]
    ex = extract(model, torch.utils.data.DataLoader(ds, batch_size=32), progress=False)
    out = {}
    for m in list_metrics():
        if m == "fu":
            out[m] = {"score": fu(model, fu_loader(ds), progress=False)}
        elif m == "ncti":
            out[m] = dict(zip(("seli", "ncc", "vc"), get_metric(m)(ex.features, ex.labels)))
        else:
            rs = 0 if m == "nleep" else None
            out[m] = {"score": get_metric(m)(ex.features, ex.labels, source_logits=ex.logits,
                                             random_state=rs)}
    return out


def test_score_end_to_end(setup, tmp_path, capsys):
    tmp, data, zoo = setup
    uri = f"sqlite:///{(tmp_path / 'mlruns.db').resolve()}"
    args = ["estimate", "score", str(zoo), "--target", str(data), "--flag", TARGET,
            "--name", "synth", "--n-per-class", str(N), "--no-progress", "--tracking-uri", uri]
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    assert main(args) == 0
    assert torch.equal(torch.get_rng_state(), torch_state)  # global RNGs untouched
    assert np.random.get_state()[1].tolist() == np_state[1].tolist()
    table = capsys.readouterr().out
    assert all(s in table for s in SOURCES) and "logme" in table and "ncti.seli" in table

    runs = _runs(uri, "synth")
    metrics = list_metrics()
    assert len(runs) == len(SOURCES) * len(metrics)
    keys = {(r.data.tags[schema.SOURCE], r.data.tags[schema.TARGET], r.data.tags[schema.METRIC])
            for r in runs}
    assert keys == {(s, TARGET, m) for s in SOURCES for m in metrics}  # one run per key
    for r in runs:
        assert r.data.tags[schema.KIND] == schema.KIND_ESTIMATE
        assert r.data.tags[schema.ARCH] == "tiny_cnn"
        want = {"seli", "ncc", "vc"} if r.data.tags[schema.METRIC] == "ncti" else {"score"}
        assert set(r.data.metrics) == want
        assert all(math.isfinite(v) for v in r.data.metrics.values())

    # The plumbing is exact: same numbers as the metric functions on extract()'s features.
    for flag, c in SOURCES.items():
        direct = _direct(tmp, data, flag, c)
        for r in runs:
            if r.data.tags[schema.SOURCE] == flag:
                m = r.data.tags[schema.METRIC]
                assert r.data.metrics == pytest.approx(direct[m], rel=1e-9, abs=1e-12), m

    # Re-scoring updates the same runs (next step), no duplicates.
    assert main(args[:-2] + ["--metrics", "logme,fu", "--tracking-uri", uri]) == 0
    capsys.readouterr()
    again = _runs(uri, "synth")
    assert {r.info.run_id for r in again} == {r.info.run_id for r in runs}
    from mlflow import MlflowClient

    logme_run = next(r for r in again if r.data.tags[schema.METRIC] == "logme")
    assert [h.step for h in MlflowClient(uri).get_metric_history(logme_run.info.run_id,
                                                                  "score")] == [0, 1]

    # evaluate reads the logged scores back.
    gt = tmp_path / "gt.csv"
    gt.write_text(f"source,{TARGET}\nsynthderm,0.9\nsynthblood,0.7\n")
    assert main(["estimate", "evaluate", "--scores", "synth", "--ground-truth", str(gt),
                 "--format", "csv", "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("target,") and TARGET in out


def test_headless_source_skips_leep_with_reason(setup, tmp_path):
    tmp, data, _ = setup
    zoo = tmp / "headless.yaml"
    zoo.write_text("- name: synthderm\n  architecture: tiny_cnn\n  weights: weights/synthderm.pt\n"
                   "  normalization: {mean: [0.5], std: [0.5]}\n")
    uri = f"sqlite:///{(tmp_path / 'm.db').resolve()}"
    assert main(["estimate", "score", str(zoo), "--target", str(data), "--flag", TARGET,
                 "--name", "h", "--metrics", "leep,logme", "--n-per-class", str(N),
                 "--no-progress", "--tracking-uri", uri]) == 0
    runs = {r.data.tags[schema.METRIC]: r for r in _runs(uri, "h")}
    assert "source head" in runs["leep"].data.tags[schema.SKIP_REASON]
    assert not runs["leep"].data.metrics and "score" in runs["logme"].data.metrics
    from medxfer.transferability.scores_io import read_scores_mlflow

    assert set(read_scores_mlflow(uri, "h")) == {"logme"}  # the skipped run is left out


def _zoo(tmp, body, name="z.yaml"):
    p = tmp / name
    p.write_text(body)
    return p


def _score(zoo, data, uri, *extra):
    return main(["estimate", "score", str(zoo), "--target", str(data), "--flag", TARGET,
                 "--no-progress", "--tracking-uri", uri, *extra])


def test_bad_inputs(setup, tmp_path, capsys):
    tmp, data, _ = setup
    uri = f"sqlite:///{(tmp_path / 'bad.db').resolve()}"
    w = tmp / "weights" / "synthderm.pt"

    missing = tmp_path / "nowhere" / "w.pt"
    zoo = _zoo(tmp_path, f"- name: a\n  architecture: tiny_cnn\n  weights: {missing}\n"
                         "  normalization: half\n")
    assert _score(zoo, data, uri) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "[0].weights" in err and str(zoo) in err

    zoo = _zoo(tmp_path, f"- name: a\n  architecture: no_such_net\n  weights: {w}\n"
                         "  normalization: half\n")
    assert _score(zoo, data, uri) == 2
    err = capsys.readouterr().err
    assert "no_such_net" in err and "[0].architecture" in err

    zoo = _zoo(tmp_path, f"- name: a\n  architecture: tiny_cnn\n  weights: {w}\n"
                         "  normalization: half\n")
    assert _score(zoo, data, uri, "--metrics", "logme,nope") == 2
    err = capsys.readouterr().err
    assert "nope" in err and "logme" in err

    zoo = _zoo(tmp_path, f"- name: a\n  architecture: tiny_cnn\n   weights: [{w}\n")
    assert _score(zoo, data, uri) == 2
    err = capsys.readouterr().err
    assert "malformed YAML" in err and str(zoo) in err

    zoo = _zoo(tmp_path, f"- name: a\n  architecture: tiny_cnn\n  weights: {w}\n"
                         "  normalization: zscore\n")
    assert _score(zoo, data, uri) == 2
    err = capsys.readouterr().err
    assert "[0].normalization" in err and str(zoo) in err


def test_one_feature_pass_and_one_gradient_pass_per_source(setup, monkeypatch):
    """Every metric reads the features of one forward pass; FU adds one gradient pass.

    A forward hook on the real source model records the batches it sees: extraction runs
    under inference mode (grad off), FU with grad on. Asking for all nine metrics must not
    add forward passes.
    """
    from medxfer.transferability import scoring

    tmp, data, _ = setup
    zoo = _zoo(tmp, "- name: synthderm\n  architecture: tiny_cnn\n  weights: weights/synthderm.pt\n"
                    "  num_classes: 4\n  normalization: half\n", name="one.yaml")
    seen = []
    real_load = scoring.load_source_model

    def load_and_count(zoo_, source):
        model = real_load(zoo_, source)
        model.register_forward_hook(lambda _m, inputs, _out: seen.append(
            (torch.is_grad_enabled(), inputs[0].shape[0])))
        return model

    monkeypatch.setattr(scoring, "load_source_model", load_and_count)
    n = len(load_target(data, TARGET, 28, n_train_per_class=N, n_val_per_class=None)["train"])
    for metrics in (["logme", "leep"], list_metrics()):
        seen.clear()
        scoring.score_zoo(zoo, data, TARGET, metrics=metrics, n_per_class=N, log=False,
                          progress=False, random_state=0)
        feature_pass = [b for grad, b in seen if not grad]
        gradient_pass = [b for grad, b in seen if grad]
        assert len(feature_pass) == math.ceil(n / 32) and sum(feature_pass) == n
        if "fu" in metrics:  # fu_loader: batches of floor(n/6), the last partial one kept
            assert len(gradient_pass) == math.ceil(n / (n // 6)) and sum(gradient_pass) == n
        else:
            assert gradient_pass == []
