"""swav: equal per-modality batches, unit-norm (and frozen) prototypes, queue, hybrid run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset
from train_helpers import load_state, make_config

from medxfer.losses import swav_codes, swav_loss_per_sample
from medxfer.methods.swav import (FeatureQueue, ModalityGroups, labelled_mask, modality_major,
                                  queue_codes, swapped_prediction)
from medxfer.train.launcher import run_local


class _Const(Dataset):
    """Items ((v, v), y, patient) whose pixels all equal the modality id."""

    def __init__(self, modality: int, n: int):
        self.modality, self.n = modality, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        v = torch.full((1, 4, 4), float(self.modality))
        return (v, v + i / 1000), torch.tensor(i), torch.tensor(-1)


def test_batches_hold_equal_parts_per_modality_in_modality_major_order():
    ds = ModalityGroups([_Const(0, 7), _Const(1, 5), _Const(2, 11)], np.ones(7, bool))
    assert len(ds) == 11  # the largest modality; smaller ones cycle
    loader = DataLoader(ds, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
    for (v1, _v2), y, labelled in loader:
        flat = modality_major(v1)
        b = v1.shape[0]
        assert flat.shape == (3 * b, 1, 4, 4)
        ids = flat[:, 0, 0, 0].round().long()
        assert torch.equal(ids, torch.arange(3).repeat_interleave(b))  # M equal parts
        assert len(y) == len(labelled) == b


def test_labelled_mask_is_a_fixed_fraction():
    m = labelled_mask(40, 0.25, seed=3)
    assert m.sum() == 10 and np.array_equal(m, labelled_mask(40, 0.25, seed=3))
    assert labelled_mask(40, 0.0, 0).sum() == 0 and labelled_mask(40, 1.0, 0).all()


def test_swapped_prediction_without_queue_is_the_loss_module():
    g = torch.Generator().manual_seed(0)
    scores = [torch.randn(8, 5, generator=g) for _ in range(2)]
    empty = [scores[0].new_zeros(0, 5)] * 2
    codes = [queue_codes(s, empty, 0.05, 3) for s in scores]
    for s, q in zip(scores, codes, strict=True):
        assert torch.allclose(q, swav_codes(s, 0.05, 3, n_modalities=2))
    ours = swapped_prediction(scores, codes, 0.1)
    ref = swav_loss_per_sample(scores, 0.1, 0.05, 3, n_modalities=2)
    assert torch.allclose(ours, ref, atol=1e-6)


def test_queue_keeps_the_newest_features_per_modality():
    q = FeatureQueue(2, 2, length=3, dim=2)
    z = torch.arange(8.0).reshape(4, 2)  # modality-major: rows 0-1 modality 0, 2-3 modality 1
    q.push([z, z + 100])
    assert int(q.filled) == 2 and torch.equal(q.get(0, 1), z[2:])
    q.push([z + 10, z + 110])
    assert int(q.filled) == 3
    assert torch.equal(q.get(0, 0), torch.cat([z[:2] + 10, z[:1]]))  # newest first, FIFO


def _protos(ckpt) -> torch.Tensor:
    return load_state(ckpt)["modules"]["net"]["prototypes.weight"]


@pytest.mark.parametrize("freeze", [4, 8])
def test_prototypes_stay_unit_norm_and_frozen_iterations_do_not_move_them(freeze, synth_root,
                                                                          tmp_path):
    # 32 training images in batches of 8: 4 iterations per epoch.
    cfg = make_config(synth_root, "swav", epochs=2, method_config={
        "recipe": "simple", "n_prototypes": 16, "freeze_prototypes_iters": freeze,
        "queue_length": 0})
    s = run_local(cfg, storage_dir=tmp_path)
    p1, p2 = _protos(s.checkpoints[0]), _protos(s.checkpoints[1])
    for p in (p1, p2):
        assert torch.allclose(p.norm(dim=2), torch.ones(p.shape[:2]), atol=1e-5)
    assert torch.allclose(p1, p2, atol=1e-6) == (freeze == 8)


def test_hybrid_multimodality_with_queue_trains_and_saves_the_encoder(synth_root, tmp_path):
    mc = {"modalities": ["synthchest"], "labelled_fraction": 0.5, "n_prototypes": 12,
          "queue_length": 8, "queue_start_epoch": 2, "freeze_prototypes_iters": 2,
          "crops": [2, 2], "crop_sizes": [28, 16]}
    s = run_local(make_config(synth_root, "swav", epochs=2, method_config=mc),
                  storage_dir=tmp_path)
    assert [h["epoch"] for h in s.history] == [1, 2, 3]
    assert all(np.isfinite(h["train_loss"]) for h in s.history)
    state = load_state(s.checkpoints[1])
    assert state["modules"]["net"]["prototypes.weight"].shape == (2, 12, 128)  # C_m per modality
    assert "classifier.weight" in state["modules"]["net"]  # the label projector g
    assert int(state["modules"]["queue"]["filled"]) == 8
    assert (tmp_path / "checkpoint_000003" / "encoder.pt").is_file()


def test_batch_size_must_split_into_equal_modality_parts(synth_root, tmp_path):
    from medxfer.errors import MedxferInputError

    cfg = make_config(synth_root, "swav", epochs=1, batch_size=7,
                      method_config={"modalities": ["synthchest"]})
    with pytest.raises(MedxferInputError, match=r"batch_size \(7\) must be a multiple"):
        run_local(cfg, storage_dir=tmp_path)
