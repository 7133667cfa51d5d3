"""synthlesion (issue 13): only the lesion carries the label; masks, boxes and attributes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medxfer.data.boxes import boxes_path, mask_boxes, read_boxes
from medxfer.data.medmnist import load_split
from medxfer.data.synth import ATTRIBUTES, MODALITIES, generate_modality, synthesize
from medxfer.errors import MedxferInputError


@pytest.fixture(scope="module")
def lesion(tmp_path_factory):
    root = tmp_path_factory.mktemp("lesion")
    synthesize(root, n_per_class=20, seed=0, modalities=["synthlesion"])
    return root


def test_lesion_masks_only_in_positive_images(lesion):
    split = load_split(lesion, "synthlesion", "train")
    y, masks = split.labels[:, 0], split.extras["masks"].astype(bool)
    assert masks.shape == split.images.shape
    assert masks[y == 1].any((1, 2)).all() and not masks[y == 0].any()
    area = masks[y == 1].mean((1, 2))
    assert 0.01 < area.mean() < 0.1  # a small region: chance of the pointing game is low
    # the lesion is bright: inside the mask the image is brighter than the rest of the tissue
    img = split.images.astype(float)
    assert img[y == 1][masks[y == 1]].mean() > img[y == 1][~masks[y == 1]].mean() + 60


def test_lesions_are_spread_over_the_image(lesion):
    split = load_split(lesion, "synthlesion", "train")
    masks = split.extras["masks"].astype(bool)
    centres = np.array([np.argwhere(m).mean(0) for m in masks if m.any()])
    assert centres.std(0).min() > 2.5  # pixels: not always at one place


def test_boxes_csv_matches_the_masks(lesion):
    path = boxes_path(lesion, "synthlesion")
    for split in ("train", "val", "test"):
        masks = load_split(lesion, "synthlesion", split).extras["masks"]
        rows = read_boxes(path, split, n_images=len(masks))
        assert rows == [tuple(float(v) if k else v for k, v in enumerate(r))
                        for r in mask_boxes(masks)]
        for i, x, y, w, h in rows:  # the box is tight: mask pixels on every edge
            m = masks[i].astype(bool)
            assert m[int(y):int(y + h), int(x):int(x + w)].sum() == m.sum()
    meta = json.loads((lesion / "synthlesion.json").read_text())
    assert meta["boxes"] == path.name and meta["attributes"]["sex"] == ["male", "female"]


def test_attributes_present_and_per_patient(lesion):
    split = load_split(lesion, "synthlesion", "train")
    for key, names in ATTRIBUTES.items():
        values, patients = split.extras[key], split.extras["patients"]
        assert set(np.unique(values)) <= set(range(len(names)))
        for p in np.unique(patients):  # one patient, one value
            assert len(np.unique(values[patients == p])) == 1
    assert 0.2 < split.extras["sex"].mean() < 0.8


def test_sex_is_visible_at_the_bottom_of_the_tissue():
    a = generate_modality(MODALITIES["synthlesion"], n_per_class=40, seed=1)
    x, sex = a["train_images"].astype(float), a["train_sex"]
    bottom = x[:, 20:25, 8:20].mean((1, 2))
    assert bottom[sex == 1].mean() > bottom[sex == 0].mean() + 10


def test_attributes_leave_the_other_arrays_unchanged():
    mod = MODALITIES["synthchest"]
    plain = generate_modality(mod, n_per_class=4, seed=2)
    with_attrs = generate_modality(mod, n_per_class=4, seed=2, attributes=True)
    assert set(with_attrs) - set(plain) == {f"{s}_{k}" for s in ("train", "val", "test")
                                           for k in ATTRIBUTES}
    assert all(np.array_equal(plain[k], with_attrs[k]) for k in plain)


def test_read_boxes_errors(tmp_path):
    bad = tmp_path / "b.csv"
    bad.write_text("split,index,x,y,w\ntrain,0,1,1,2\n")
    with pytest.raises(MedxferInputError, match=r"missing column\(s\) \['h'\]"):
        read_boxes(bad, "train")
    bad.write_text("split,index,x,y,w,h\ntrain,0,1,1,2,nan\n")
    with pytest.raises(MedxferInputError, match="line 2, column 'h': expected a number"):
        read_boxes(bad, "train")
    bad.write_text("split,index,x,y,w,h\ntrain,7,1,1,2,2\n")
    with pytest.raises(MedxferInputError, match="column 'index'.*below 5"):
        read_boxes(bad, "train", n_images=5)
    with pytest.raises(MedxferInputError, match="not found"):
        read_boxes(tmp_path / "none.csv", "train")
