"""Study YAMLs: the shipped example validates and expands to its cells; a protocol the data
cannot satisfy exits 2 before Ray starts, naming the YAML path, with nothing written; the
table's mean +- std by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from medxfer.config import CellConfig
from medxfer.errors import MedxferInputError
from medxfer.reports.study import metric_name, summarize
from medxfer.tune.study_config import cell_config, cell_key, load_study, study_from_dict
from medxfer.tune.study_preflight import preflight

from study_helpers import EXAMPLE


@pytest.fixture
def in_study_dir(study_data, monkeypatch):
    monkeypatch.chdir(study_data)
    return study_data


STUDIES = sorted(p for p in EXAMPLE.parent.glob("*.yaml")
                 if "protocol" in (yaml.safe_load(p.read_text()) or {}))


@pytest.mark.parametrize("path", STUDIES, ids=[p.name for p in STUDIES])
def test_shipped_studies_validate(path):
    study = load_study(path)
    assert study.rows and study.protocol.seeds


def test_example_study_validates_and_expands(in_study_dir):
    study = load_study(EXAMPLE)
    assert [r.name for r in study.rows] == ["finetune"]
    plan = preflight(study)
    assert [c.fold for c in plan.train] == [0, 1, 2]
    assert {c.test_set for c in plan.train} == {"synthpneumonia"}
    assert len(plan.transfer) == 3 * 2 * 2
    assert {(c.test_set, c.fraction) for c in plan.transfer} == \
        {("h1", 0.1), ("h1", 0.25), ("h2", 0.1), ("h2", 0.25)}
    assert len({cell_key(c) for c in plan.train + plan.transfer}) == 15
    cfg = cell_config(study, plan.train[1])
    assert cfg["cell"]["fold"] == 1 and cfg["train"]["seed"] == 0
    assert cfg["data"]["root"] == str(in_study_dir / "data" / "synth")  # absolute


def test_transfer_cell_fine_tunes_the_training_cells_model(in_study_dir, tmp_path):
    study = study_from_dict({**yaml.safe_load(EXAMPLE.read_text()),
                             "methods": [{"name": "linear", "method": "finetune",
                                          "method_config": {"freeze_backbone": True}}]})
    plan = preflight(study)
    cell = next(c for c in plan.transfer if c.test_set == "h2" and c.fold == 2)
    assert plan.trained_by(cell) == plan.train[2]
    (tmp_path / "model.pt").write_bytes(b"x")
    cfg = cell_config(study, cell, model_dir=tmp_path)
    assert cfg["method"] == "finetune" and cfg["method_config"]["freeze_backbone"] is True
    assert cfg["model"]["weights"] == str(tmp_path / "model.pt")
    assert cfg["data"]["flag"] == "synthpneumonia_h2" and cfg["data"]["source"] == \
        "synthpneumonia"
    assert cfg["train"]["epochs"] == 2  # few_shot.train on top of the row's
    with pytest.raises(MedxferInputError, match="saved no model.pt or encoder.pt"):
        cell_config(study, cell, model_dir=tmp_path / "empty")


def _bad(in_study_dir, tmp_path, edit) -> Path:
    raw = yaml.safe_load(EXAMPLE.read_text())
    edit(raw)
    path = tmp_path / "bad_study.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("edit, yaml_path, message", [
    (lambda r: r["protocol"].update(cv={"folds": 40}), "protocol.cv.folds",
     "40 folds, but in synthpneumonia the class(es)"),
    (lambda r: r["protocol"]["few_shot"].update(fractions=[0.0, 0.5]),
     "protocol.few_shot.fractions", "fractions must be in (0, 1]"),
    (lambda r: r["protocol"]["few_shot"].update(fractions=[0.5, 1.5]),
     "protocol.few_shot.fractions", "fractions must be in (0, 1]"),
    (lambda r: r["protocol"].update(label_fractions=[0.5, 2], few_shot=None),
     "protocol.label_fractions", "fractions must be in (0, 1]"),
    (lambda r: r["protocol"]["few_shot"].update(test_sets=["h3"]), "protocol.few_shot",
     "unknown test set(s) ['h3']"),
    (lambda r: r["protocol"]["test_sets"]["h1"].update(flag="nothere"),
     "protocol.test_sets.h1.flag", "no nothere.npz or nothere_28.npz in"),
    (lambda r: r.update(data={"manifest": "cxr.csv", "patient_column": "subject"}),
     "data.patient_column", "no patient column 'subject'"),
    (lambda r: r["protocol"].update(n_labelled=[5, 500], few_shot=None), "protocol.n_labelled",
     "n_labelled 500 exceeds"),
])
def test_unsatisfiable_protocols_exit_2_before_ray(in_study_dir, tmp_path, capsys,
                                                   monkeypatch, edit, yaml_path, message):
    from medxfer.cli import main
    from medxfer.data.synth_studies import synthesize_cxr_manifest

    synthesize_cxr_manifest(in_study_dir, "cxr", patients=4, size=32)

    def no_ray(*a, **k):
        raise AssertionError("Ray started")

    monkeypatch.setattr("medxfer.tune.study._start_ray", no_ray)
    path = _bad(in_study_dir, tmp_path, edit)
    store = tmp_path / "store.db"
    rc = main(["study", str(path), "--tracking-uri", f"sqlite:///{store}", "--name", "bad"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert str(path) in err and f"{yaml_path}:" in err and message in err
    assert not store.exists() and not (in_study_dir / "ray_results" / "bad").exists()


def test_study_needs_a_protocol(tmp_path):
    with pytest.raises(MedxferInputError, match="protocol: required for a study"):
        study_from_dict({"method": "finetune", "data": {"root": "d", "flag": "f"}})
    with pytest.raises(MedxferInputError, match=r"(?s)methods\[1\] \(b\).*train.lr: must be > 0"):
        study_from_dict({"method": "finetune", "data": {"root": "d", "flag": "f"},
                         "protocol": {"seeds": [0]},
                         "methods": ["finetune", {"name": "b", "train": {"lr": 0}}]})


def test_table_mean_and_sample_std_by_hand():
    def rec(row, phase, fold, value, **kw):
        metrics = {"test_auc": value}
        metrics.update(kw.pop("metrics", {}))
        return {"run_id": f"{row}-{phase}-{fold}-{kw.get('test_set')}-{kw.get('fraction')}",
                "row": row, "phase": phase, "fold": fold, "status": "FINISHED",
                "metrics": metrics, "fraction": kw.get("fraction"), "n_labelled": None,
                "test_set": kw.get("test_set", "src")}

    records = [rec("a", "train", k, v, metrics={"h1_test_auc": z})
               for k, (v, z) in enumerate([(0.8, 0.5), (0.9, 0.6), (1.0, 0.7)])]
    records += [rec("a", "transfer", k, v, test_set="h1", fraction=0.1)
                for k, v in enumerate([0.6, 0.7, 0.8])]
    records += [rec("b", "train", 0, 0.7), {**rec("b", "train", 1, 0.1), "status": "FAILED"}]
    s = summarize(records, rows=["a", "b"])
    assert list(s.table.columns) == ["ID", "h1 0%", "h1 10%"]
    assert s.table.loc["a", "ID"] == "0.90 ± 0.10"       # sample std of 0.8, 0.9, 1.0
    assert s.table.loc["a", "h1 0%"] == "0.60 ± 0.10"
    assert s.table.loc["a", "h1 10%"] == "0.70 ± 0.10"
    assert s.table.loc["b", "ID"] == "0.70 ± 0.00"       # one finished run; the failed one out
    cell = s.cells.set_index(["row", "column_key"]).loc[("a", "h1_0.1")]
    assert cell["n"] == 3 and cell["mean"] == pytest.approx(0.7)
    assert metric_name("a", "h1_0.1", "mean") == "a/h1_0.1/mean"
    labelled = summarize([rec("a", "train", 0, 0.5, fraction=0.1),
                          rec("a", "train", 0, 0.6, fraction=1.0)])
    assert list(labelled.table.columns) == ["ID 100%", "ID 10%"]


def test_cell_keys():
    c = CellConfig(row="r", phase="transfer", fold=2, fraction=0.25, test_set="h1", seed=3)
    assert cell_key(c) == "r/transfer/fold=2/fraction=0.25/test=h1/seed=3"
    assert cell_key(c.model_dump()) == cell_key(c)
