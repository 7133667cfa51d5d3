"""(image, mask) datasets: .npz masks, PNG mask manifests, joint geometric augmentation."""

import numpy as np
import pytest
import torch
from PIL import Image

from medxfer.data.segmentation import (JointAffine, ManifestSegmentation, NpzSegmentation,
                                       split_left_right)
from medxfer.errors import MedxferInputError


def test_npz_masks_binary_and_left_right(small_synth):
    ds = NpzSegmentation(small_synth, "synthchest", "train")
    x, m = ds[0]
    assert x.shape == (1, 28, 28) and m.shape == (28, 28) and m.dtype == torch.long
    assert ds.n_classes == 2 and set(torch.unique(m).tolist()) == {0, 1}
    lr = NpzSegmentation(small_synth, "synthchest", "train", classes="left_right", indices=[0, 1])
    assert len(lr) == 2 and lr.n_classes == 3
    _, m3 = lr[0]
    assert torch.equal(m3 > 0, m > 0)  # same lung pixels, split in two
    cols = [np.nonzero(m3.numpy() == c)[1].mean() for c in (1, 2)]
    assert cols[0] < cols[1]  # class 1 on the image's left
    assert ds.patients is not None and len(ds.patients) == len(ds)


def test_npz_without_masks_names_the_key(small_synth):
    with pytest.raises(MedxferInputError, match="'train_masks'"):
        NpzSegmentation(small_synth, "synthpath", "train")


def test_split_left_right_by_hand():
    m = np.zeros((4, 6), int)
    m[1:3, 0:2] = 1
    m[1:3, 4:6] = 1
    out = split_left_right(m)
    assert (out[1:3, 0:2] == 1).all() and (out[1:3, 4:6] == 2).all() and out.sum() == 4 + 8


def test_joint_affine_moves_image_and_mask_together():
    img = torch.zeros(1, 32, 32)
    img[:, 8:20, 10:24] = 1.0
    mask = (img[0] > 0.5).long()
    g = torch.Generator().manual_seed(0)
    t = JointAffine(degrees=20, translate=0.15, scale=(0.8, 1.2), hflip=0.5)
    for _ in range(5):
        xi, mi = t(img, mask, g)
        agree = ((xi[0] > 0.5).long() == mi).float().mean()
        assert agree > 0.97 and set(torch.unique(mi).tolist()) <= {0, 1}
    xf, mf = JointAffine(0, 0, 1.0, hflip=1.0)(img, mask)
    assert torch.equal(mf, mask.flip(-1)) and torch.equal(xf, img.flip(-1))


def _write_png(path, arr, mode="L"):
    Image.fromarray(arr.astype(np.uint8), mode=mode).save(path)


def test_manifest_png_masks(tmp_path):
    img = (np.random.default_rng(0).random((16, 16)) * 255).astype(np.uint8)
    m255 = np.zeros((16, 16), np.uint8)
    m255[4:8, 4:8] = 255
    labels = np.zeros((16, 16), np.uint8)
    labels[2:5, 2:5], labels[10:14, 10:14] = 1, 2
    for name, arr in (("a.png", img), ("b.png", img), ("ma.png", m255), ("mb.png", labels)):
        _write_png(tmp_path / name, arr)
    (tmp_path / "seg.csv").write_text("path,mask,patient_id\na.png,ma.png,p1\nb.png,mb.png,p1\n")
    ds = ManifestSegmentation(tmp_path / "seg.csv", n_classes=3, size=16,
                              joint_transform=JointAffine(0, 0, 1.0))
    x0, m0 = ds[0]
    assert x0.shape == (1, 16, 16) and int(m0.sum()) == 16  # 0/255 read as 0/1
    _, m1 = ds[1]
    assert int((m1 == 2).sum()) == 16 and ds.patients.tolist() == ["p1", "p1"]
    (tmp_path / "bad.csv").write_text("path,mask\nb.png,mb.png\n")
    with pytest.raises(MedxferInputError, match=r"bad.csv, line 2.*mb.png.*outside \[0, 2\)"):
        ManifestSegmentation(tmp_path / "bad.csv", n_classes=2, size=16)[0]
    (tmp_path / "nocol.csv").write_text("path,label\na.png,1\n")
    with pytest.raises(MedxferInputError, match="field 'mask'"):
        ManifestSegmentation(tmp_path / "nocol.csv")
    (tmp_path / "gone.csv").write_text("path,mask\na.png,missing.png\n")
    with pytest.raises(MedxferInputError, match="line 2.*missing.png"):
        ManifestSegmentation(tmp_path / "gone.csv")
