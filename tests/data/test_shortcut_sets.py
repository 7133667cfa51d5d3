"""Shortcut-study sets (thesis sec. 4.2.2): training/i.i.d. doses, the reversed o.o.d. set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medxfer.data.medmnist import MedMNISTDataset
from medxfer.data.shortcut_sets import ConfoundedDataset, confound
from medxfer.data.synth import synthesize
from medxfer.errors import MedxferInputError

Y = np.array([1] * 20 + [0] * 30)


@pytest.mark.parametrize("p_art", [0.0, 0.1, 0.5, 1.0])
def test_train_dose_is_p_art_of_the_target_class(p_art):
    c = confound(Y, "tag", p_art=p_art, seed=3)
    assert len(c.indices) == len(Y)
    assert c.applied[Y == 1].sum() == round(p_art * 20) and not c.applied[Y == 0].any()


def test_ood_reverses_the_correlation_and_seeds_differ():
    c = confound(Y, "low_pass", p_art=0.5, role="ood")
    assert c.applied[Y == 0].all() and not c.applied[Y == 1].any()
    a = confound(Y, "tag", p_art=0.5, seed=0).applied
    b = confound(Y, "tag", p_art=0.5, seed=1).applied
    assert not np.array_equal(a, b) and np.array_equal(a, confound(Y, "tag", p_art=0.5).applied)
    assert not np.array_equal(a, confound(Y, "tag", p_art=0.5, role="iid").applied)


def test_attribute_sampling_correlates_the_value_with_the_label():
    rng = np.random.default_rng(0)
    y = np.array([1] * 60 + [0] * 60)
    sex = rng.integers(0, 2, 120)
    for p in (0.0, 0.5, 1.0):
        c = confound(y, "attribute", p_art=p, attribute=sex, n_target=20, seed=1)
        ys, has = y[c.indices], c.applied
        assert (ys == 1).sum() == 20 and has[ys == 1].sum() == round(p * 20)
        assert not has[ys == 0].any() and np.array_equal(has, sex[c.indices] == 1)
    ood = confound(y, "attribute", p_art=1.0, role="ood", attribute=sex)
    ys = y[ood.indices]
    assert ood.applied[ys == 0].all() and not ood.applied[ys == 1].any()
    default = confound(y, "attribute", p_art=1.0, attribute=sex)  # as many as the value allows
    assert (y[default.indices] == 1).sum() == ((y == 1) & (sex == 1)).sum()


@pytest.mark.parametrize("kwargs, match", [
    ({"confounder": "nope", "p_art": 0.5}, "unknown confounder"),
    ({"confounder": "tag", "p_art": 1.5}, r"p_art must be in \[0, 1\]"),
    ({"confounder": "tag", "p_art": 0.5, "target_class": 3}, "no image of class 3"),
    ({"confounder": "attribute", "p_art": 0.5}, "needs the per-image attribute"),
    ({"confounder": "attribute", "p_art": 1.0, "attribute": np.zeros(50), "n_target": 5},
     "cannot draw 5 images"),
    ({"confounder": "tag", "p_art": 0.5, "role": "test"}, "role must be"),
])
def test_errors(kwargs, match):
    with pytest.raises(MedxferInputError, match=match):
        confound(Y, **kwargs)


def test_confounded_dataset_applies_the_transform_to_marked_rows(tmp_path):
    synthesize(tmp_path, n_per_class=6, modalities=["synthlesion"])
    base = MedMNISTDataset(tmp_path, "synthlesion", "train")
    c = confound(base.labels, "poisson_noise", p_art=0.5, seed=0)
    ds = ConfoundedDataset(base, c, "poisson_noise", {"n0": 1e3}, seed=7)
    assert len(ds) == len(base)
    for i in range(len(ds)):
        x, y = ds[i]
        assert int(y) == int(base.labels[i, 0])
        assert torch.equal(x, base.image(i)) != bool(c.applied[i])
        assert torch.equal(x, ds[i][0])  # the same artifact every epoch
