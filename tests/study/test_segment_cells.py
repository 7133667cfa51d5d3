"""segment in a study (seed 003 Table I: M labelled lung masks of each training fold, Dice):
a cell's rows are the fold's (as for every method), its masks the rows' own, the table's
metric a declared choice, and a pretraining stage hands its encoder to the segmentation net."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import one_torch_thread

from medxfer.errors import MedxferInputError
from medxfer.methods.experiment import method_options, parse_experiment
from medxfer.tune.study_config import study_from_dict

BACKBONE = "regnetx_002"  # small; timm and smp (tu-) both take it


def _raw(root: str, **over) -> dict:
    raw = {"method": "segment", "model": {"backbone": BACKBONE},
           "method_config": {"arch": "unet"},
           "data": {"root": root, "flag": "synthpneumonia"},
           "train": {"epochs": 1, "batch_size": 4, "optimizer": "adam", "lr": 1e-3,
                     "scheduler": "none"},
           "protocol": {"cv": {"folds": 3}, "n_labelled": [10],
                        "test_sets": {"h1": {"root": root, "flag": "synthpneumonia_h1"}}},
           "cell": {"row": "segment", "fold": 1, "n_labelled": 10}}
    raw.update(over)
    return raw


def test_cell_rows_and_masks_are_the_folds(study_data):
    from medxfer.data.medmnist import MedMNISTDataset
    from medxfer.data.protocol import select_cell
    from medxfer.data.segmentation import NpzSegmentation
    from medxfer.data.sources import load_source
    from medxfer.methods.segment import cell_rows, load_segmentation_sets

    root = str(study_data / "data" / "synth")
    cfg = parse_experiment(_raw(root))
    opts = method_options(cfg)
    source, sel, labelled, _ = cell_rows(cfg, opts)
    other = load_source(cfg.protocol.test_sets["h1"].resolve(cfg.data))
    want = select_cell(source, cfg.data, cfg.protocol, cfg.cell, {"h1": other})
    assert np.array_equal(labelled, want.labelled) and len(labelled) == 10
    assert set(labelled) <= set(sel.train)
    assert not set(sel.test) & (set(sel.train) | set(sel.val))
    assert not set(source.patients[sel.test]) & set(source.patients[sel.train])
    sets = load_segmentation_sets(cfg, opts)
    assert {k for k in sets if k != "params"} == {"train", "val", "test", "h1_test"}
    assert len(sets["train"]) == 10 and sets["params"]["n_labelled"] == 10
    assert len(sets["test"]) == len(sel.test) and len(sets["h1_test"]) == len(want.test_sets["h1"])
    # every test item is its source row's own image and mask (rows pool the file's splits)
    n_train = int(np.sum(source.splits == "train"))
    n_val = int(np.sum(source.splits == "val"))
    starts = {"train": 0, "val": n_train, "test": n_train + n_val}
    for i, row in enumerate(sel.test):
        split = source.splits[row]
        local = int(row - starts[split])
        x, mask = sets["test"][i]
        ref = NpzSegmentation(root, "synthpneumonia", split, classes="left_right",
                              indices=[local])
        rx, rmask = ref[0]
        assert torch.equal(x, rx) and torch.equal(mask, rmask), row
        assert torch.equal(x, MedMNISTDataset(root, "synthpneumonia", split).image(local))
    assert int(mask.max()) == 2  # left and right lung


def test_n_labelled_from_the_cell_or_the_method_not_both(study_data):
    from medxfer.methods.segment import cell_rows

    root = str(study_data / "data" / "synth")
    cfg = parse_experiment(_raw(root, method_config={"n_labelled": 5}))
    with pytest.raises(MedxferInputError, match="method_config.n_labelled"):
        cell_rows(cfg, method_options(cfg))
    plain = parse_experiment(_raw(root, method_config={"n_labelled": 5}, protocol=None,
                                  cell=None))
    _, sel, labelled, _ = cell_rows(plain, method_options(plain))
    assert len(labelled) == 5 and set(labelled) <= set(sel.train)


def test_the_tables_metric_is_declared_and_checked():
    base = {"data": {"root": "d", "flag": "f"}, "model": {"backbone": BACKBONE},
            "protocol": {"cv": {"folds": 2}}}
    seg = study_from_dict({**base, "method": "segment"})
    assert seg.protocol.metric == "mean_dice"
    assert seg.rows[0].config["protocol"]["metric"] == "mean_dice"
    assert study_from_dict({**base, "method": "finetune"}).protocol.metric == "auc"
    both = {**base, "method": "finetune", "methods": ["finetune", "segment"]}
    with pytest.raises(MedxferInputError, match="protocol.metric: rows .'segment'. run "):
        study_from_dict(both)
    with pytest.raises(MedxferInputError, match="'auc' is not reported by rows .'segment'."):
        study_from_dict({**base, "method": "segment",
                         "protocol": {"cv": {"folds": 2}, "metric": "auc"}})
    assert study_from_dict({**base, "method": "segment", "protocol": {
        "cv": {"folds": 2}, "metric": "dice_2"}}).protocol.metric == "dice_2"
    with pytest.raises(MedxferInputError, match="protocol.metric: .*unknown metric 'dsc'"):
        study_from_dict({**base, "method": "segment",
                         "protocol": {"cv": {"folds": 2}, "metric": "dsc"}})


@pytest.fixture
def one_thread():
    with one_torch_thread():
        yield


def test_pretraining_stage_hands_its_encoder_to_the_segmentation_net(study_data, tmp_path,
                                                                     one_thread):
    """cltci pretrains on the fold's training rows; segment then starts from its encoder. At a
    learning rate of 1e-12 the fine-tuned encoder's parameters are still the pretrained ones
    (and far from a random encoder's)."""
    from medxfer.models import create_segmentation_model
    from medxfer.train.launcher import run_local

    root = str(study_data / "data" / "synth")
    raw = _raw(root, method_config={"arch": "unet", "pretrain": {
        "method": "cltci", "epochs": 1, "train": {"batch_size": 8, "lr": 0.05},
        "method_config": {"variant": "moco", "queue_size": 16}}})
    raw["train"]["lr"] = 1e-12
    # a small fold keeps it cheap: 24 training, 8 validation images
    raw["data"].update(n_train_per_class=12, n_val_per_class=4)
    run = run_local(parse_experiment(raw), storage_dir=tmp_path, keep=1)
    stages = [h.get("stage") for h in run.history]
    assert stages[0] == 0 and stages[-1] == 1  # one cltci epoch, then segment's
    final = run.history[-1]
    assert final["n_train"] == 10 and final["n_labelled"] == 10
    for key in ("test_mean_dice", "h1_test_mean_dice"):
        assert 0 <= final[key] <= 1 and math.isfinite(final[key])
    ckpt = Path(run.checkpoints[-1])
    encoder = ckpt / "pretrain" / "encoder.pt"
    handed = create_segmentation_model("unet", BACKBONE, in_chans=1, n_classes=3,
                                       weights=encoder)
    fresh = create_segmentation_model("unet", BACKBONE, in_chans=1, n_classes=3)
    tuned = torch.load(ckpt / "model.pt", map_location="cpu", weights_only=True)
    names = [n for n, _ in handed.named_parameters() if n.startswith("model.encoder.")]
    assert names
    for n in names:
        p = dict(handed.named_parameters())[n]
        assert torch.allclose(tuned[n], p, atol=1e-6), n
    assert any(not torch.allclose(dict(fresh.named_parameters())[n], tuned[n], atol=1e-3)
               for n in names)


def test_a_segment_study_on_data_without_masks_exits_2_before_ray(study_data, tmp_path,
                                                                  capsys, monkeypatch):
    import yaml

    from medxfer.cli import main
    from medxfer.data.synth import synthesize

    synthesize(tmp_path / "d", n_per_class=4, modalities=["synthpath"])  # no masks

    def no_ray(*a, **k):
        raise AssertionError("Ray started")

    monkeypatch.setattr("medxfer.tune.study._start_ray", no_ray)
    raw = _raw(str(tmp_path / "d"), protocol={"cv": {"folds": 2}, "n_labelled": [2]})
    raw["data"]["flag"] = "synthpath"
    del raw["cell"]
    path = tmp_path / "seg.yaml"
    path.write_text(yaml.safe_dump(raw))
    store = tmp_path / "store.db"
    rc = main(["study", str(path), "--tracking-uri", f"sqlite:///{store}", "--name", "bad"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"{path}: data: " in err and "synthpath.npz" in err
    assert "no masks: expected the key 'train_masks'" in err
    assert not store.exists()


def test_a_restart_inside_the_pretraining_stage_ends_identically(study_data, tmp_path,
                                                                  one_thread):
    """Killed after cltci's first epoch, the run resumes there and ends with the same model."""
    from medxfer.train.launcher import run_local

    root = str(study_data / "data" / "synth")
    raw = _raw(root, protocol=None, cell=None, method_config={
        "arch": "unet", "n_labelled": 8, "pretrain": {
            "method": "cltci", "epochs": 2, "train": {"batch_size": 8},
            "method_config": {"variant": "moco", "queue_size": 16}}})
    raw["data"].update(n_train_per_class=8, n_val_per_class=4)
    cfg = parse_experiment(raw).model_dump()
    full = run_local(cfg, storage_dir=tmp_path / "full")
    assert [h["stage"] for h in full.history] == [0, 0, 1, 1]
    second = run_local(cfg, storage_dir=tmp_path / "again", resume_from=full.checkpoints[0])
    assert [h["stage"] for h in second.history] == [0, 1, 1]
    a, b = (torch.load(Path(r.checkpoints[-1]) / "model.pt", weights_only=True)
            for r in (full, second))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert second.history[-1]["test_mean_dice"] == full.history[-1]["test_mean_dice"]
