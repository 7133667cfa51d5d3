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


#: Hand-counted cells of the shipped studies: (rows, folds, label columns (x shortcut shares
#: p_art), seeds, transfer cells). Folds 1: the source's own splits; transfer = train cells x
#: few-shot sets x fractions.
SHIPPED = {
    "study_example.yaml": (1, 3, 1, 1, 3 * 2 * 2),
    "study_seed000_ood.yaml": (9, 5, 1, 1, 45 * 2 * 4),
    "study_seed000_ood_smoke.yaml": (6, 2, 1, 1, 12 * 2 * 1),
    "study_seed001_fractions.yaml": (3, 1, 4, 3, 0),
    "study_seed001_fractions_smoke.yaml": (2, 1, 4, 1, 0),
    "study_seed002_cxr.yaml": (2, 1, 1, 3, 0),
    "study_seed002_cxr_smoke.yaml": (2, 1, 1, 1, 0),
    "study_seed003_labelled.yaml": (14, 5, 4, 1, 0),
    "study_seed003_labelled_smoke.yaml": (2, 2, 1, 1, 0),
    "study_thesis.yaml": (2, 1, 1, 3, 0),
    "study_thesis_smoke.yaml": (2, 1, 1, 2, 0),
    "thesis_ch4_shortcut.yaml": (2, 5, 6, 1, 0),
    "thesis_ch4_shortcut_smoke.yaml": (1, 2, 3, 1, 0),
}
SMOKES = [p for p in STUDIES if p.stem.endswith("_smoke")]


def _expand(study):
    from medxfer.tune.study_config import training_cells, transfer_cells

    p = study.protocol
    train = training_cells(study, p.cv.folds if p.cv else None, "source")
    return train, transfer_cells(study, train)


def test_five_paper_studies_ship_with_smoke_variants():
    names = {p.name for p in STUDIES}
    assert set(SHIPPED) <= names
    for stem in ("seed000_ood", "seed001_fractions", "seed002_cxr", "seed003_labelled",
                 "thesis"):
        assert {f"study_{stem}.yaml", f"study_{stem}_smoke.yaml"} <= names


@pytest.mark.parametrize("path", STUDIES, ids=[p.name for p in STUDIES])
def test_shipped_studies_validate_and_expand_to_their_cells(path):
    study = load_study(path)
    p = study.protocol
    train, transfer = _expand(study)
    if path.name in SHIPPED:
        n_rows, n_folds, n_labels, n_seeds, n_transfer = SHIPPED[path.name]
        assert len(study.rows) == n_rows
        assert len(train) == n_rows * n_folds * n_labels * n_seeds
        assert len(transfer) == n_transfer
    keys = [cell_key(c) for c in train + transfer]
    assert len(set(keys)) == len(keys)
    assert {c.row for c in train} == {r.name for r in study.rows}
    assert {c.seed for c in train} == set(p.seeds)
    assert {c.fold for c in train} == (set(range(p.cv.folds)) if p.cv else {None})
    assert {c.fraction for c in train} == set(p.label_fractions or [None])
    assert {c.n_labelled for c in train} == set(p.n_labelled or [None])
    assert {(c.test_set, c.fraction) for c in transfer} == {
        (t, f) for t in p.few_shot_sets() for f in (p.few_shot.fractions if p.few_shot else [])}
    if path.stem.endswith("_smoke"):  # runs on a fresh clone: declares the data it trains on
        assert study.synth is not None
        out = Path(study.synth.out)
        paths = [study.rows[0].config["data"][k] for k in ("root", "manifest")]
        paths += [getattr(t, k) for t in p.test_sets.values() for k in ("root", "manifest")]
        assert all(Path(x).is_relative_to(out) for x in paths if x), paths


@pytest.mark.parametrize("path", SMOKES, ids=[p.name for p in SMOKES])
def test_smoke_studies_write_their_data_and_pass_preflight(path, tmp_path):
    """The declared data, written into an empty folder, satisfies the protocol (the cells the
    preflight finds are the expansion above)."""
    from medxfer.config import read_yaml
    from medxfer.data.synth_studies import ensure_synthetic

    study = study_from_dict(read_yaml(path), source=str(path), path=path, base_dir=tmp_path)
    folder, written = ensure_synthetic(study.synth, source=study.source)
    assert written and folder.is_relative_to(tmp_path)
    plan = preflight(study)
    train, transfer = _expand(study)
    assert [cell_key(c) for c in plan.train + plan.transfer] == \
        [cell_key(c.model_copy(update={"test_set": plan.id_name})) if c.phase == "train"
         else cell_key(c) for c in train + transfer]


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
    (lambda r: r["protocol"].update(metric="dice"), "protocol.metric", "unknown metric 'dice'"),
    (lambda r: r["protocol"].update(metric="mean_dice"), "protocol.metric",
     "'mean_dice' is not reported by rows ['finetune']"),
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


def test_synthesize_writes_once_and_never_over_other_data(tmp_path):
    from medxfer.data.synth_studies import SYNTH_MARKER, SynthSpec, ensure_synthetic

    spec = SynthSpec(out="d/s", modalities=["synthpneumonia"], n_per_class=4, hospitals=1,
                     manifests=[{"name": "cxr", "patients": 3, "size": 32}])
    folder, written = ensure_synthetic(spec, base_dir=tmp_path)
    assert written and folder == tmp_path / "d" / "s"
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted(["synthpneumonia.npz", "synthpneumonia.json", "synthpneumonia_h1.npz",
                            "synthpneumonia_h1.json", "manifest.json", "cxr.csv", "cxr",
                            SYNTH_MARKER])
    assert [p.name for p in folder.parent.iterdir()] == ["s"]  # no temporary folder left
    stamp = (folder / "synthpneumonia.npz").stat().st_mtime_ns
    assert ensure_synthetic(spec, base_dir=tmp_path) == (folder, False)
    assert (folder / "synthpneumonia.npz").stat().st_mtime_ns == stamp
    with pytest.raises(MedxferInputError, match="written by another synthesize"):
        ensure_synthetic(spec.model_copy(update={"n_per_class": 5}), base_dir=tmp_path)
    (tmp_path / "mine").mkdir()
    with pytest.raises(MedxferInputError, match=f"mine exists and holds no {SYNTH_MARKER}"):
        ensure_synthetic(spec.model_copy(update={"out": "mine"}), base_dir=tmp_path)


def test_bad_synthesize_section_names_the_field(tmp_path):
    raw = {**yaml.safe_load(EXAMPLE.read_text()), "synthesize": {"out": "x", "hospitals": -1,
                                                                 "modalities": ["nope"]}}
    with pytest.raises(MedxferInputError, match=r"synthesize.modalities: unknown modalities "
                                                r"\['nope'\].*synthesize.hospitals"):
        study_from_dict(raw, source="s.yaml")


def test_a_missing_path_without_a_declaration_is_still_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = load_study(EXAMPLE)
    assert study.synth is None
    with pytest.raises(MedxferInputError, match=r"study_example.yaml.*data: .*"
                                                 r"data/synth/synthpneumonia"):
        preflight(study)
    assert not (tmp_path / "data").exists()


def test_data_synth_writes_several_cxr_corpora(tmp_path, capsys):
    import json

    from medxfer.cli import main

    out = tmp_path / "d"
    assert main(["data", "synth", "--out", str(out), "--modalities", "none", "--cxr-patients",
                 "3", "--cxr-name", "src,tgt", "--cxr-shifts", "0,0.5"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["src", "src.csv", "tgt", "tgt.csv"]
    shifts = {n: json.loads((out / n / "README.json").read_text())["shift"]
              for n in ("src", "tgt")}
    assert shifts == {"src": 0.0, "tgt": 0.5}
    assert main(["data", "synth", "--out", str(out), "--cxr-patients", "3", "--cxr-name",
                 "a,b", "--cxr-shifts", "0.5"]) == 2
    assert "--cxr-shifts '0.5': expected 2" in capsys.readouterr().err
