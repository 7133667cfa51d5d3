import numpy as np
import pytest
import torch

from medxfer.transferability import get_metric

from ._reference import leep_slow, spec_reference

leep = get_metric("leep")


def _logits(n=60, z=7, c=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    logits = rng.normal(size=(n, z)).astype(np.float32)
    logits[np.arange(n), y] += 1.5  # informative source classes
    return logits, y


def test_matches_slow_transcription():
    logits, y = _logits()
    assert leep(None, y, source_logits=logits) == pytest.approx(leep_slow(logits, y), rel=1e-6)


def test_uniform_source_predictions_give_label_entropy():
    # theta uniform -> P(y|z) = P(y) -> LEEP = sum_c p_c log p_c (by hand: counts 2, 1, 1)
    y = np.array([0, 0, 1, 2])
    value = leep(None, y, source_logits=np.zeros((4, 5), np.float32))
    assert value == pytest.approx(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25), rel=1e-6)


def test_log_probabilities_equal_logits_and_probabilities_do_not():
    logits, y = _logits()
    logp = torch.log_softmax(torch.from_numpy(logits), 1).numpy()
    probs = np.exp(logp)
    base = leep(None, y, source_logits=logits)
    assert leep(None, y, source_logits=logp) == pytest.approx(base, abs=1e-6)
    assert abs(leep(None, y, source_logits=probs) - base) > 1e-3  # softmax applied twice


def test_nonpositive_and_invariances():
    logits, y = _logits()
    base = leep(None, y, source_logits=logits)
    assert base <= 0
    perm = np.random.default_rng(2).permutation(len(y))
    assert leep(None, y[perm], source_logits=logits[perm]) == pytest.approx(base, rel=1e-6)
    assert leep(None, np.array([1, 2, 0])[y], source_logits=logits) == pytest.approx(base, rel=1e-6)


def test_requires_logits_and_matching_features():
    logits, y = _logits()
    with pytest.raises(ValueError, match="needs source_logits"):
        leep(np.zeros((60, 3)), y)
    with pytest.raises(ValueError, match="features have 59 rows"):
        leep(np.zeros((59, 3)), y, source_logits=logits)


def test_equals_spec_reference_computation():
    logits, y = _logits(n=200, z=50, c=4)
    assert abs(leep(None, y, source_logits=logits)
               - spec_reference.leep_reference(logits, y)) <= 1e-6
