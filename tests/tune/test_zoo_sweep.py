"""``search.sources`` (issue 14, item 2): a sweep that scores a zoo, then searches (source,
configuration) with the joint searcher.

The real sweep runs ``medxfer sweep`` on the session's Ray runtime with a sqlite store: three of
the demo's sources as random-init ``tiny_cnn`` weight files (different seeds), the synthetic
target ``synthpneumonia``, the ``finetune`` method for one epoch. The checks are outcomes that
could be wrong: the logged scores equal ``score_zoo``'s in-process values, the trials follow
the joint searcher's order for those scores (the two best-scored sources round-robin, the
third never trained), every child is tagged with its zoo source and trained from that
source's weight file, and ``benchmark ground-truth`` reads the sweep like any other.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from toy_trainable import Toy
import torch
import yaml

from medxfer.errors import MedxferInputError
from medxfer.tracking import schema
from medxfer.tune.experiment import experiment_from_dict, load_experiment
from medxfer.tune.joint import JointSearcher
from medxfer.tune.joint_prior import normal_scores

from sweep_helpers import experiment, sweep_runs

pytestmark = pytest.mark.timeout(600)

TARGET = "synthpneumonia"
SOURCES = {"synthderm": (4, 1), "synthpath": (5, 2), "synthoct": (3, 3)}  # classes, seed
METRICS = ["logme", "leep"]
LRS = [0.05, 0.01, 0.002]


def _weights(directory) -> None:
    from medxfer.models import create_backbone

    directory.mkdir(parents=True, exist_ok=True)
    for name, (classes, seed) in SOURCES.items():
        torch.manual_seed(seed)
        model = create_backbone("tiny_cnn", in_chans=3, num_classes=classes)
        torch.save(model.state_dict(), directory / f"{name}.pt")


def _zoo_yaml(path, names=SOURCES, archs=None) -> str:
    entries = [{"name": n, "architecture": "tiny_cnn", "weights": f"weights/{n}.pt",
                "num_classes": SOURCES.get(n, (2, 0))[0], "normalization": "half",
                "in_chans": 3, "input_size": 28, **({"arch": archs[i]} if archs else {})}
               for i, n in enumerate(names)]
    path.write_text(yaml.safe_dump(entries, sort_keys=False))
    return str(path)


def _search(zoo: str, **over) -> dict:
    s = {"num_samples": 3, "max_concurrent": 1, "seed": 0,
         "sources": {"zoo": zoo, "metric": METRICS, "n_per_class": 20, "explore": 2},
         "space": {"train.lr": {"choice": LRS}}}
    s.update(over)
    return s


@pytest.fixture
def zoo_setup(tmp_path):
    from medxfer.data.synth import synthesize

    data = tmp_path / "data"
    synthesize(data, size=28, n_per_class=20, modalities=[TARGET])
    _weights(tmp_path / "weights")
    return tmp_path, data, _zoo_yaml(tmp_path / "zoo.yaml")


def _raw(data, zoo, **search_over) -> dict:
    search_over.setdefault("storage_path", str(data.parent / "ray_results"))
    return experiment(_search(zoo, **search_over),
                      data={"root": str(data), "flag": TARGET, "source": None,
                            "n_train_per_class": 20, "n_val_per_class": 10},
                      train={"epochs": 1, "batch_size": 16})


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("over, message", [
    ({"algorithm": "warmstart"},
     "search.algorithm: search.sources is searched by algorithm joint"),
    ({"space": {"model.weights": {"choice": ["a.pt", "b.pt"]}}},
     "search.space.model.weights: set per trial from the chosen entry of search.sources.zoo"),
    ({"sources": {"zoo": "z.yaml", "metric": []}},
     "search.sources.metric: expected at least one metric name"),
    ({"sources": {"zoo": "z.yaml", "zoos": 1}}, "search.sources.zoos: unknown key"),
    ({"sources": {"metric": "logme"}}, "search.sources.zoo: Field required"),
    ({"sources": {"zoo": "z.yaml", "explore": 0}}, "search.sources.explore:"),
])
def test_sources_errors_name_yaml_paths(over, message):
    with pytest.raises(MedxferInputError) as exc:
        experiment_from_dict(experiment({**_search("z.yaml"), **over}), source="exp.yaml")
    assert message in str(exc.value)
    assert str(exc.value).startswith("exp.yaml: ")


def test_sources_default_to_joint_without_a_prior():
    s = experiment_from_dict(experiment({"sources": {"zoo": "z.yaml", "metric": "logme,sfda"},
                                         "space": {}})).search
    assert s.algorithm == "joint" and s.warmstart is None
    assert s.sources.metric == ["logme", "sfda"] and s.sources.n_per_class == 100


@pytest.mark.parametrize("sources, message", [
    ({"zoo": "nosuch.yaml"}, "search.sources.zoo: "),
    ({"metric": ["logme", "bogus"]},
     "search.sources.metric: unknown metric(s) bogus; valid: "),
    ({"metric": ["logme"], "invert": ["leep"]},
     "search.sources.invert: leep not among search.sources.metric (logme)"),
])
def test_zoo_errors_name_the_experiment_and_field(zoo_setup, tmp_path, sources, message):
    from medxfer.transferability.zoo_sweep import zoo_sources

    _, data, zoo = zoo_setup
    raw = _raw(data, zoo)
    raw["search"]["sources"].update(sources)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(MedxferInputError) as exc:
        zoo_sources(load_experiment(path))
    assert str(exc.value).startswith(f"{path}: {message}")
    if "nosuch" in str(sources):
        assert "zoo file not found" in str(exc.value)
    if "bogus" in str(sources):
        from medxfer.transferability.registry import list_metrics

        assert all(name in str(exc.value) for name in list_metrics())


def test_sources_named_by_data_source_or_by_arch(zoo_setup):
    from medxfer.transferability.zoo import load_zoo
    from medxfer.transferability.zoo_sweep import overrides, source_key

    tmp, _, zoo = zoo_setup
    z = load_zoo(zoo)
    assert source_key(z) == "data.source"
    over = overrides(z, "data.source")
    assert list(over) == list(SOURCES)
    assert over["synthpath"] == {
        "data.source": "synthpath", "data.as_rgb": True,
        "model.weights": str((tmp / "weights" / "synthpath.pt").resolve()),
        "model.backbone": "tiny_cnn", "model.arch": "tiny_cnn", "model.in_chans": 3}
    # One source name in two architectures: the architecture names them.
    same = load_zoo(_zoo_yaml(tmp / "archs.yaml", ["synthderm", "synthderm"],
                              archs=["tiny_a", "tiny_b"]))
    assert source_key(same) == "model.arch"
    assert list(overrides(same, "model.arch")) == ["tiny_a", "tiny_b"]
    # Names and arch flags both repeat (each pair unique): nothing tells the sources apart.
    both = load_zoo(_zoo_yaml(tmp / "both.yaml", ["synthderm", "synthderm", "synthpath"],
                              archs=["tiny_a", "tiny_b", "tiny_a"]))
    with pytest.raises(MedxferInputError, match="repeat both a name and an arch"):
        source_key(both)


def test_joint_searcher_adds_each_sources_overrides():
    over = {"a": {"data.source": "a", "model.weights": "/w/a.pt"},
            "b": {"data.source": "b", "model.weights": "/w/b.pt"}}
    alg = JointSearcher({"data.source": ["a", "b"], "train.lr": [0.1, 0.01]}, "val_loss",
                        "min", source_key="data.source", source_overrides=over, explore=2)
    got = [alg.suggest(f"t{i}") for i in range(4)]
    assert got[0] == {"data.source": "a", "model.weights": "/w/a.pt", "train.lr": 0.1}
    assert got[1] == {"data.source": "b", "model.weights": "/w/b.pt", "train.lr": 0.1}
    assert {(g["data.source"], g["model.weights"], g["train.lr"]) for g in got} == {
        (s, f"/w/{s}.pt", lr) for s in "ab" for lr in (0.1, 0.01)}


def test_a_zoo_sweep_needs_its_scorer(tmp_path, tracking_uri):
    """run_sweep without the zoo's scorer fails before anything is recorded."""
    from mlflow import MlflowClient

    from medxfer.tune.sweep import run_sweep

    exp = experiment_from_dict(experiment(_search(str(tmp_path / "z.yaml"))))
    with pytest.raises(MedxferInputError, match="search.sources: this caller cannot score"):
        run_sweep(exp, name="noscorer", tracking_uri=tracking_uri, trainable=Toy(n=96),
                  storage_path=str(tmp_path / "ray_results"))
    assert MlflowClient(tracking_uri).get_experiment_by_name("sweep/noscorer") is None


def test_a_zoo_that_cannot_be_scored_leaves_no_sweep(tmp_path, tracking_uri, ray_runtime):
    """Scoring runs once Ray is up, after the parent run exists: when it fails, the parent run
    is deleted, so the same name can be used again (and no trial ran)."""
    from medxfer.tune.sweep import run_sweep
    from medxfer.tune.zoo_sweep import ZooSources

    def fails(sweep, uri):
        raise MedxferInputError(f"cannot score for {sweep}")

    zoo = ZooSources("data.source", {"a": {"data.source": "a"}}, fails)
    exp = experiment_from_dict(experiment(_search(str(tmp_path / "z.yaml"))))
    for _ in range(2):  # the second time the name is free again: the same error, not a clash
        with pytest.raises(MedxferInputError, match="cannot score for again"):
            run_sweep(exp, name="again", tracking_uri=tracking_uri, sources=zoo,
                      trainable=Toy(n=96), storage_path=str(tmp_path / "ray_results"))
        parents, children = sweep_runs(tracking_uri, "again")
        assert parents == [] and children == []


# --------------------------------------------------------------------------- the real sweep


def _estimates(uri: str, name: str) -> list:
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=uri)
    exp = c.get_experiment_by_name(schema.experiment_name("transferability", name))
    return c.search_runs([exp.experiment_id], max_results=100)


def test_zoo_sweep_scores_the_zoo_then_trains_the_chosen_pairs(zoo_setup, tracking_uri,
                                                               ray_runtime, capsys):
    from medxfer.cli import main
    from medxfer.transferability.scoring import score_zoo

    tmp, data, zoo = zoo_setup
    path = tmp / "exp.yaml"
    path.write_text(yaml.safe_dump(_raw(data, zoo)))
    code = main(["sweep", str(path), "--name", "zoo", "--tracking-uri", tracking_uri])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert "scored synthoct (tiny_cnn) [" in out.err  # progress, one line per source

    # 1. The zoo scored into transferability/<sweep>: one run per source x metric, the values
    #    estimate score's own computation gives.
    runs = _estimates(tracking_uri, "zoo")
    assert sorted((r.data.tags[schema.SOURCE], r.data.tags[schema.METRIC]) for r in runs) == \
        sorted((s, m) for s in SOURCES for m in METRICS)
    assert {r.data.tags[schema.TARGET] for r in runs} == {TARGET}
    assert {r.data.tags[schema.KIND] for r in runs} == {schema.KIND_ESTIMATE}
    ref = score_zoo(zoo, data, TARGET, metrics=METRICS, size=28, n_per_class=20, log=False,
                    progress=False, random_state=0).table.droplevel("arch")
    for r in runs:
        want = ref.loc[r.data.tags[schema.SOURCE], r.data.tags[schema.METRIC]]
        assert r.data.metrics["score"] == pytest.approx(want, rel=1e-6)

    # 2. The belief: mean normal score of the two metrics' ranks (hand-combined here).
    belief = sum(normal_scores(ref[m].to_numpy()) for m in METRICS) / len(METRICS)
    order = [ref.index[i] for i in np.lexsort((np.arange(len(ref)), -belief))]
    parents, children = sweep_runs(tracking_uri, "zoo")
    (parent,) = parents
    logged = json.loads(_artifact(tracking_uri, parent.info.run_id, "source_scores.json"))
    assert logged["key"] == "data.source"
    assert [logged["scores"][s] for s in ref.index] == pytest.approx(list(belief))
    assert parent.data.params["search.sources.metric"] == "logme,leep"
    assert parent.data.params["search.algorithm"] == "joint"

    # 3. Only the chosen pairs trained: num_samples children, the two best-believed sources
    #    round-robin (explore 2), never the third; no pair twice; each child tagged with its
    #    source and trained from that source's weights.
    assert len(children) == 3
    children.sort(key=lambda c: c.info.start_time)
    got = [(c.data.tags[schema.SOURCE], float(c.data.params["lr"])) for c in children]
    assert [s for s, _ in got] == [order[0], order[1], order[0]]
    assert len(set(got)) == 3 and {lr for _, lr in got} <= set(LRS)
    for c in children:
        src = c.data.tags[schema.SOURCE]
        assert c.info.status == "FINISHED" and src in SOURCES
        assert c.data.tags[schema.ARCH] == "tiny_cnn"
        assert c.data.params["model.weights"] == str((tmp / "weights" / f"{src}.pt").resolve())
        assert 0.0 <= c.data.metrics["test_auc"] <= 1.0

    # 4. The ground truth reads the sweep as any sweep: one row per trained source.
    assert main(["benchmark", "ground-truth", "--name", "sweep/zoo", "--format", "csv",
                 "--tracking-uri", tracking_uri]) == 0
    gt = pd.read_csv(io.StringIO(capsys.readouterr().out), index_col="source")
    assert sorted(gt.index) == sorted(order[:2]) and list(gt.columns) == [TARGET]
    for src in order[:2]:
        mine = [c for c in children if c.data.tags[schema.SOURCE] == src]
        best = min(mine, key=lambda c: (c.data.metrics["val_loss"], c.info.run_id))
        assert abs(gt.loc[src, TARGET] - best.data.metrics["test_auc"]) <= 5e-5 + 1e-12


def _artifact(uri: str, run_id: str, name: str) -> str:
    import tempfile
    from pathlib import Path

    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        return Path(MlflowClient(uri).download_artifacts(run_id, name, tmp)).read_text()


def test_shipped_zoo_example_names_the_demos_sources():
    """search_spaces/finetune_zoo.yaml reads search_spaces/zoos/demo.yaml, whose entries are
    the demo's sources with the weight files ``medxfer demo --out medxfer-demo`` writes."""
    from pathlib import Path

    import medxfer.cli  # noqa: F401  (medxfer.demo is imported through the CLI's registry)
    from medxfer.demo import DEFAULT_SOURCES
    from medxfer.transferability.zoo import load_zoo

    repo = Path(__file__).resolve().parents[2]
    exp = load_experiment(repo / "search_spaces" / "finetune_zoo.yaml")
    assert exp.search.algorithm == "joint" and exp.search.sources.metric == ["logme", "sfda"]
    zoo = load_zoo(exp.search.sources.resolved_zoo(base=repo), check_files=False)
    assert [s.name for s in zoo.sources] == list(DEFAULT_SOURCES)
    assert [zoo.weight_path(s) for s in zoo.sources] == [
        (repo / "medxfer-demo" / "weights" / f"{s}.pt").resolve() for s in DEFAULT_SOURCES]
