"""Patient-grouped batches (CL-TCI, seed 003) and the missing-patient-id check."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from medxfer.data.patient_batches import PatientBatchSampler, check_patient_ids
from medxfer.errors import MedxferInputError
from medxfer.methods.common import start_epoch


def _patients(seed=0, n=40):
    rng = np.random.default_rng(seed)
    return np.repeat(np.arange(n), rng.integers(1, 7, n))  # 1..6 images per patient


@pytest.mark.parametrize("batch_size,k", [(8, 2), (16, 4), (6, 3)])
def test_every_batch_has_two_images_of_a_patient(batch_size, k):
    patients = _patients()
    for epoch in range(3):
        s = PatientBatchSampler(patients, batch_size, k, seed=1)
        s.set_epoch(epoch)
        batches = list(s)
        assert sorted(i for b in batches for i in b) == list(range(len(patients)))
        assert all(len(b) <= batch_size for b in batches)
        assert all(np.bincount(patients[b]).max() >= 2 for b in batches)
        assert sum(len(b) == batch_size for b in batches) >= len(batches) - 2  # nearly all full


def test_order_is_a_function_of_seed_and_epoch_through_start_epoch():
    patients = _patients(1)
    g = torch.Generator()
    loader = DataLoader(TensorDataset(torch.arange(len(patients))), generator=g,
                        batch_sampler=PatientBatchSampler(patients, 8, 2, generator=g))

    def epoch(e):
        start_epoch(loader, e, seed=7)
        return [b[0].tolist() for b in loader]

    assert epoch(1) == epoch(1) and epoch(1) != epoch(2)
    assert len(loader) == len(epoch(3))


def test_distributed_ranks_split_whole_batches():
    patients = [f"p{i}" for i in _patients(2)]  # string ids work too
    ranks = [list(PatientBatchSampler(patients, 8, 2, num_replicas=2, rank=r)) for r in (0, 1)]
    whole = list(PatientBatchSampler(patients, 8, 2))
    assert len(ranks[0]) == len(ranks[1])
    assert ranks[0] + ranks[1] == whole[:2 * len(ranks[0])][0::2] + whole[:2 * len(ranks[0])][1::2]


def test_missing_patient_ids_are_an_error_unless_simclr_positives():
    with pytest.raises(MedxferInputError, match="field 'train_patients'.*2 of 4 images"):
        check_patient_ids(np.array([3, -1, 4, -1]), field="train_patients")
    with pytest.raises(MedxferInputError, match="field 'patient_id'.*no patient ids for 5"):
        check_patient_ids(None, n_images=5)
    with pytest.raises(MedxferInputError, match="positives: simclr"):
        check_patient_ids(np.array(["a", "", "b"]))
    check_patient_ids(np.array([-1, -1]), simclr_positives=True)
    check_patient_ids(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="no patient id"):
        PatientBatchSampler([1, -1, 2], 4, 2)
