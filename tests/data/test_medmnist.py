"""MedMNIST-layout loader on .npz files the tests write."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medxfer.data.medmnist import (DatasetInfo, MedMNISTDataset, dataset_info, load_split,
                                   load_target, npz_path, write_sidecar)
from medxfer.errors import MedxferInputError


def write_npz(path, n=30, hw=28, channels=None, n_classes=3, multilabel=0, seed=0, **extra):
    rng = np.random.default_rng(seed)
    shape = (n, hw, hw) if channels is None else (n, hw, hw, channels)
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = (rng.integers(0, 2, (n, multilabel)) if multilabel
                                     else rng.integers(0, n_classes, (n, 1)))
        for key, value in extra.items():
            arrays[f"{split}_{key}"] = value
    np.savez(path, **arrays)
    return arrays


def test_28_and_sized_name_forms(tmp_path):
    a = write_npz(tmp_path / "pathmnist.npz", channels=3, n_classes=9)
    b = write_npz(tmp_path / "pathmnist_64.npz", hw=64, channels=3, n_classes=9, seed=1)
    assert npz_path(tmp_path, "pathmnist") == tmp_path / "pathmnist.npz"
    ds28 = MedMNISTDataset(tmp_path, "pathmnist", "val")
    x, y = ds28[4]
    assert x.shape == (3, 28, 28) and x.dtype == torch.float32
    # HWC uint8 -> CHW float / 255, exactly.
    assert torch.allclose(x, torch.from_numpy(a["val_images"][4]).permute(2, 0, 1) / 255.0)
    assert y.dtype == torch.long and int(y) == a["val_labels"][4, 0]
    ds64 = MedMNISTDataset(tmp_path, "pathmnist", "test", size=64, mmap=False)
    assert ds64[0][0].shape == (3, 64, 64)
    assert torch.equal(ds64[2][0], torch.from_numpy(b["test_images"][2]).permute(2, 0, 1) / 255.0)
    assert ds28.info.task == "multi-class" and ds28.info.n_classes == 9


def test_flag_28_suffix_accepted(tmp_path):
    write_npz(tmp_path / "bloodmnist_28.npz", channels=3, n_classes=8)
    assert npz_path(tmp_path, "bloodmnist", 28).name == "bloodmnist_28.npz"


def test_large_size_is_memory_mapped_from_npy_cache(tmp_path):
    a = write_npz(tmp_path / "octmnist_128.npz", n=6, hw=128, n_classes=4)
    cache = tmp_path / "cache"
    split = load_split(tmp_path, "octmnist", "train", 128, cache_dir=cache)
    assert isinstance(split.images, np.memmap)
    assert np.array_equal(split.images, a["train_images"])
    cached = list(cache.rglob("train_images.npy"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    load_split(tmp_path, "octmnist", "train", 128, cache_dir=cache)  # second read: no re-extract
    assert cached[0].stat().st_mtime_ns == mtime
    ds = MedMNISTDataset(tmp_path, "octmnist", "train", 128, cache_dir=cache, as_rgb=True)
    assert ds[1][0].shape == (3, 128, 128)
    assert torch.equal(ds[1][0][0], ds[1][0][2])


def test_grey_is_one_channel_by_default(tmp_path):
    write_npz(tmp_path / "breastmnist.npz", n_classes=2)
    ds = MedMNISTDataset(tmp_path, "breastmnist")
    assert ds[0][0].shape == (1, 28, 28) and ds.n_channels == 1
    assert ds.info.task == "binary-class"


def test_chestmnist_multilabel(tmp_path):
    a = write_npz(tmp_path / "chestmnist.npz", multilabel=14)
    ds = MedMNISTDataset(tmp_path, "chestmnist", "train")
    x, y = ds[3]
    assert ds.info.multilabel and ds.info.n_classes == 14 and ds.info.labels[1] == "cardiomegaly"
    assert y.dtype == torch.float32 and y.shape == (14,)
    assert torch.equal(y, torch.as_tensor(a["train_labels"][3], dtype=torch.float32))


def test_missing_file_names_expected_path_and_howto(tmp_path):
    with pytest.raises(MedxferInputError) as err:
        MedMNISTDataset(tmp_path, "dermamnist", size=224)
    assert str(tmp_path / "dermamnist_224.npz") in str(err.value)
    assert "medxfer data synth" in str(err.value) and "medmnist.com" in str(err.value)


def test_missing_key_names_file_and_key(tmp_path):
    arrays = write_npz(tmp_path / "tmp.npz", n_classes=2)
    del arrays["val_labels"]
    np.savez(tmp_path / "pneumoniamnist.npz", **arrays)
    with pytest.raises(MedxferInputError, match=r"pneumoniamnist\.npz.*'val_labels'"):
        load_split(tmp_path, "pneumoniamnist", "val")
    with pytest.raises(MedxferInputError, match="'val_labels'"):
        load_split(tmp_path, "pneumoniamnist", "val", mmap=True, cache_dir=tmp_path / "c")


def test_corrupt_file(tmp_path):
    (tmp_path / "retinamnist.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(MedxferInputError, match=r"retinamnist\.npz.*not a readable"):
        MedMNISTDataset(tmp_path, "retinamnist")


def test_truncated_member_is_reported(tmp_path):
    write_npz(tmp_path / "full.npz", n=50, channels=3, n_classes=8)
    data = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "bloodmnist_128.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(MedxferInputError, match="bloodmnist_128.npz"):
        load_split(tmp_path, "bloodmnist", "train", 128, cache_dir=tmp_path / "c")


def test_labels_out_of_range(tmp_path):
    write_npz(tmp_path / "breastmnist.npz", n_classes=5)  # breastmnist is binary
    with pytest.raises(MedxferInputError, match="binary-class"):
        MedMNISTDataset(tmp_path, "breastmnist")


def test_sidecar_metadata_for_unknown_flag(tmp_path):
    write_npz(tmp_path / "mymod.npz", n_classes=4, patients=np.arange(30) // 3)
    with pytest.raises(MedxferInputError, match="unknown dataset 'mymod'"):
        dataset_info("mymod", tmp_path)
    write_sidecar(tmp_path, DatasetInfo("mymod", "multi-class", ("a", "b", "c", "d"), 1,
                                        {"synthetic": True}))
    assert json.loads((tmp_path / "mymod.json").read_text())["label"]["2"] == "c"
    ds = MedMNISTDataset(tmp_path, "mymod", indices=[0, 5, 9])
    assert ds.info.labels == ("a", "b", "c", "d") and ds.info.extra["synthetic"]
    assert ds.patients.tolist() == [0, 1, 3]


def test_all_twelve_2d_flags_have_metadata():
    from medxfer.data.medmnist import MEDMNIST_2D

    tasks = {flag: dataset_info(flag).task for flag in MEDMNIST_2D}
    assert len(tasks) == 12 and tasks["chestmnist"] == "multi-label, binary-class"
    assert tasks["retinamnist"] == "ordinal-regression"
    assert tasks["pneumoniamnist"] == "binary-class"


def test_load_target_thesis_subsets(tmp_path):
    write_npz(tmp_path / "organsmnist.npz", n=400, n_classes=11)
    t = load_target(tmp_path, "organsmnist", n_train_per_class=10, n_val_per_class=3, seed=7)
    counts = np.bincount(t["train"].labels[:, 0], minlength=11)
    assert (counts == 10).all() and (np.bincount(t["val"].labels[:, 0]) == 3).all()
    assert len(t["test"]) == 400
    again = load_target(tmp_path, "organsmnist", n_train_per_class=10, n_val_per_class=3, seed=7)
    assert np.array_equal(t["train"].indices, again["train"].indices)
