"""Shortcut studies without Ray: protocol.shortcut expands to one training cell per p_art, each
cell's parts carry the confounder at its share (o.o.d. part reversed), and a shortcut the data
cannot satisfy exits 2 before Ray starts, naming the YAML path."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from medxfer.config import CellConfig, DataConfig, ProtocolConfig
from medxfer.data.protocol import select_cell
from medxfer.data.sources import load_source
from medxfer.tune.study_config import cell_key, study_from_dict
from medxfer.tune.study_preflight import preflight


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from medxfer.data.synth import synthesize

    root = tmp_path_factory.mktemp("shortcut-data")
    synthesize(root, n_per_class=40, modalities=["synthpneumonia"], attributes=True)
    return root


def _raw(root, **shortcut):
    return {"name": "sc", "method": "finetune",
            "data": {"root": str(root), "flag": "synthpneumonia"},
            "protocol": {"cv": {"folds": 2},
                         "shortcut": {"confounder": "tag", "p_art": [1, 0, 0.5], **shortcut}}}


def test_one_training_cell_per_share(root):
    plan = preflight(study_from_dict(_raw(root)))
    assert [(c.fold, c.p_art) for c in plan.train] == [
        (f, p) for f in (0, 1) for p in (0.0, 0.5, 1.0)]
    assert cell_key(plan.train[1]) == \
        "finetune/train/fold=0/test=synthpneumonia/p_art=0.5/seed=0"


@pytest.mark.parametrize("confounder, extra", [("tag", {}), ("poisson_noise", {"n0": 1e3}),
                                               ("attribute", None)])
def test_parts_carry_the_confounder_at_the_cells_share(root, confounder, extra):
    d = DataConfig(root=str(root), flag="synthpneumonia")
    src = load_source(d)
    y = src.labels.reshape(-1)
    sc = ({"confounder": confounder, "params": extra} if extra is not None else
          {"confounder": "attribute", "attribute": "sex"})
    p = ProtocolConfig(cv={"folds": 2}, shortcut={**sc, "p_art": [0, 0.5, 1]})
    sizes = set()
    for p_art in (0.0, 0.5, 1.0):
        sel = select_cell(src, d, p, CellConfig(row="r", phase="train", fold=1, p_art=p_art))
        for part in ("train", "test"):
            rows, marks = getattr(sel, part), sel.applied[part]
            pos = y[rows] == 1
            assert marks[pos].sum() == round(p_art * pos.sum())  # the share, not a coin flip
            assert not marks[~pos].any()                          # only in class 1
        ood_pos = y[sel.ood] == 1
        assert not sel.applied["ood"][ood_pos].any() and sel.applied["ood"][~ood_pos].all()
        seen = set(sel.train) | set(sel.val)  # o.o.d. rows come from the fold's test part
        assert not (set(sel.ood) | set(sel.test)) & seen
        if confounder != "attribute":  # image confounders keep every row
            assert (sel.ood == sel.test).all()
        sizes.add((len(sel.train), len(sel.val), len(sel.test), len(sel.ood)))
        if confounder == "attribute":  # the value plays the artifact: marks are the values
            a = src.attribute("sex")
            assert (sel.applied["train"] == (a[sel.train] == 1)).all()
    assert len(sizes) == 1  # every share keeps the same set sizes: only the correlation moves


def test_confounded_images_differ_only_where_marked(root):
    from medxfer.data.shortcut_sets import part_dataset

    d = DataConfig(root=str(root), flag="synthpneumonia")
    src = load_source(d)
    p = ProtocolConfig(cv={"folds": 2}, shortcut={"confounder": "tag", "p_art": [0.5]})
    sel = select_cell(src, d, p, CellConfig(row="r", phase="train", fold=0, p_art=0.5))
    ds = part_dataset(src, sel, "ood", shortcut=p.shortcut)
    for i in range(len(ds)):
        x, _ = ds[i]
        changed = not np.allclose(x.numpy(), src.image(int(sel.ood[i])).numpy())
        assert changed == bool(sel.applied["ood"][i])


@pytest.mark.parametrize("shortcut, yaml_path, message", [
    ({"confounder": "sticker"}, "protocol.shortcut", "sticker"),
    ({"params": {"d": 3}}, "protocol.shortcut", "params {'d': 3} do not fit confounder 'tag'"),
    ({"target_class": 4}, "protocol.shortcut", "target_class 4 is not a class"),
    ({"confounder": "attribute", "attribute": "height"}, "protocol.shortcut", "height"),
    ({"p_art": [0, 1.5]}, "protocol.shortcut.p_art", "expected distinct shares in [0, 1]"),
    ({"confounder": "attribute"}, "protocol.shortcut", "needs attribute: <key>"),
])
def test_bad_shortcuts_exit_2_before_ray(root, tmp_path, capsys, monkeypatch, shortcut,
                                         yaml_path, message):
    from medxfer.cli import main

    def no_ray(*a, **k):
        raise AssertionError("Ray started")

    monkeypatch.setattr("medxfer.tune.study._start_ray", no_ray)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_raw(root, **shortcut)))
    store = tmp_path / "store.db"
    rc = main(["study", str(path), "--tracking-uri", f"sqlite:///{store}"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert str(path) in err and f"{yaml_path}" in err and message in err
    assert not store.exists()


def test_table_has_a_column_per_share():
    from medxfer.reports.study import summarize

    recs = [{"run_id": f"{p}-{k}", "row": "a", "phase": "train", "fold": k, "p_art": p,
             "status": "FINISHED", "fraction": None, "n_labelled": None, "test_set": "src",
             "metrics": {"test_auc": 0.8 + 0.1 * p + 0.02 * k, "ood_test_auc": 0.8 - 0.5 * p}}
            for p in (1.0, 0.0, 0.5) for k in (0, 1)]
    s = summarize(recs)
    assert list(s.table.columns) == ["ID p_art=0", "ID p_art=0.5", "ID p_art=1",
                                     "ood 0% (ID p_art=0)", "ood 0% (ID p_art=0.5)",
                                     "ood 0% (ID p_art=1)"]
    assert s.table.loc["a", "ID p_art=1"] == "0.91 ± 0.01"
    assert s.table.loc["a", "ood 0% (ID p_art=0.5)"] == "0.55 ± 0.00"
