"""Synthetic modalities: read back by the real loader, deterministic, learnable, distinct."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import RidgeClassifier
from sklearn.metrics import roc_auc_score

from medxfer.data.medmnist import MedMNISTDataset, dataset_info, load_split
from medxfer.data.synth import MODALITIES, generate_modality, synthesize
from medxfer.errors import MedxferInputError

N = 40


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    synthesize(root, n_per_class=N, seed=0, text=True)
    return root


def test_at_least_six_modalities_with_binary_and_multilabel():
    tasks = [m.task for m in MODALITIES.values()]
    assert len(MODALITIES) >= 6
    assert "binary-class" in tasks and "multi-label, binary-class" in tasks


@pytest.mark.parametrize("flag", list(MODALITIES))
def test_read_back_by_loader(synth_root, flag):
    mod = MODALITIES[flag]
    info = dataset_info(flag, synth_root)
    assert (info.task, info.labels, info.n_channels) == (mod.task, mod.labels, mod.n_channels)
    ds = MedMNISTDataset(synth_root, flag, "train")
    x, y = ds[0]
    assert x.shape == (mod.n_channels, 28, 28)
    n_expected = N * len(mod.labels)
    assert len(ds) == n_expected
    if info.multilabel:
        assert y.shape == (len(mod.labels),)
    else:
        assert np.bincount(ds.labels[:, 0]).tolist() == [N] * len(mod.labels)
    # several images per patient; patients and sites aligned with items
    _, per_patient = np.unique(ds.patients, return_counts=True)
    assert per_patient.min() >= 1 and per_patient.mean() >= 2 and per_patient.max() <= 4
    assert ds.sites.shape == (len(ds),) and set(np.unique(ds.sites)) <= {0, 1, 2}
    # patient-disjoint splits
    test = load_split(synth_root, flag, "test")
    assert not set(ds.patients) & set(test.extras["patients"])


def test_images_of_one_patient_are_more_alike(synth_root):
    split = load_split(synth_root, "synthorgan", "train")
    x = split.images.reshape(len(split.images), -1).astype(np.float32)
    y, p = split.labels[:, 0], split.extras["patients"]
    same, other = [], []
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            if y[i] == y[j]:
                (same if p[i] == p[j] else other).append(np.abs(x[i] - x[j]).mean())
    assert np.mean(same) < 0.8 * np.mean(other)


def test_text_burned_and_clean_kept(synth_root):
    split = load_split(synth_root, "synthchest", "train")
    clean = load_split(synth_root, "synthchest", "train", image_key="images_clean").images
    tm = split.extras["text_masks"].astype(bool)
    has_text = tm.any((1, 2))
    assert 0.2 < has_text.mean() < 0.8
    assert np.array_equal(split.images[~has_text], clean[~has_text])
    assert split.images[tm].mean() > 180  # text is bright where the mask says
    assert (split.images[tm] >= clean[tm]).all()
    diff = split.images.astype(int) != clean.astype(int)
    assert not diff[~has_text].any()


def test_deterministic_by_seed():
    mod = MODALITIES["synthpneumonia"]
    a = generate_modality(mod, n_per_class=6, seed=3)
    b = generate_modality(mod, n_per_class=6, seed=3)
    c = generate_modality(mod, n_per_class=6, seed=4)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["train_images"], c["train_images"])


def test_other_sizes_and_file_names(tmp_path):
    synthesize(tmp_path, size=64, n_per_class=3, modalities=["synthderm"])
    assert (tmp_path / "synthderm_64.npz").is_file() and not (tmp_path / "synthderm.npz").exists()
    assert MedMNISTDataset(tmp_path, "synthderm", size=64, mmap=False)[0][0].shape == (3, 64, 64)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["modalities"]["synthderm"]["family"] == "shape"


def test_unknown_modality(tmp_path):
    with pytest.raises(MedxferInputError, match="unknown modalities.*synthchest"):
        synthesize(tmp_path, modalities=["nope"])


def _features(images):
    """Raw pixels plus the translation-invariant |FFT| of the grey image."""
    x = images.reshape(*images.shape[:3], -1).astype(np.float32) / 255.0
    grey = x.mean(-1)
    f = np.abs(np.fft.fft2(grey - grey.mean((1, 2), keepdims=True))) / 10
    return np.concatenate([x.reshape(len(x), -1), f.reshape(len(x), -1)], 1)


@pytest.mark.parametrize("flag", list(MODALITIES))
def test_class_structure_is_learnable(synth_root, flag):
    """A linear classifier (ridge) on pixels (+|FFT|) beats chance clearly on the test split."""
    tr, te = load_split(synth_root, flag, "train"), load_split(synth_root, flag, "test")
    xtr, xte = _features(tr.images), _features(te.images)
    clf = RidgeClassifier(alpha=10.0)
    if MODALITIES[flag].task.startswith("multi-label"):
        aucs = [roc_auc_score(te.labels[:, j],
                              clf.fit(xtr, tr.labels[:, j]).decision_function(xte))
                for j in range(tr.labels.shape[1])]
        assert np.mean(aucs) > 0.7, aucs
    else:
        acc = clf.fit(xtr, tr.labels[:, 0]).score(xte, te.labels[:, 0])
        chance = 1 / len(MODALITIES[flag].labels)
        assert acc > chance + 0.2, acc


def test_modalities_differ(synth_root):
    """Which modality an image comes from is obvious from its pixels (distinct domains)."""
    xs, ys = [], []
    for k, flag in enumerate(MODALITIES):
        ds = MedMNISTDataset(synth_root, flag, "val", as_rgb=True)
        xs.append(np.stack([ds.image(i).numpy().ravel() for i in range(len(ds))]))
        ys.append(np.full(len(ds), k))
    x, y = np.concatenate(xs), np.concatenate(ys)
    idx = np.random.default_rng(0).permutation(len(x))
    half = len(x) // 2
    clf = RidgeClassifier(alpha=1.0).fit(x[idx[:half]], y[idx[:half]])
    assert clf.score(x[idx[half:]], y[idx[half:]]) > 0.9
