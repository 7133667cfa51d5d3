"""LEEP: log expected empirical prediction from the source head's logits.

Nguyen et al., "LEEP: A New Measure to Evaluate Transferability of Learned
Representations", ICML 2020. Spec section "LEEP"; thesis (seed 004) Table 6.2/6.3 baseline.
"""

from __future__ import annotations

import numpy as np
import torch

from ._validation import check_features, check_labels


def leep(features, labels, *, source_logits=None, random_state=None) -> float:
    """Mean log-likelihood of the target labels under the empirical predictor P(y|z).

    Args:
        features: Shape (N, D) or None. Not used by the score; when given, its row count must
            match the labels.
        labels: Shape (N,), classes 0..C-1.
        source_logits: Shape (N, Z). Raw logits of the source model's own head over all its
            Z classes (not probabilities: softmax is applied here, spec pitfall 10).
        random_state: Unused (deterministic).

    Returns:
        LEEP score, <= 0; higher is better.
    """
    if source_logits is None:
        raise ValueError("leep: needs source_logits, the (N, Z) output of the source "
                         "model's classifier layer (see medxfer.transferability.extraction)")
    logits = check_features(source_logits, "leep", name="source_logits")
    if features is not None:
        n_feat = np.asarray(features).shape[0] if np.ndim(features) else -1
        if n_feat != logits.shape[0]:
            raise ValueError(f"leep: features have {n_feat} rows but source_logits "
                             f"{logits.shape[0]}; they must match")
    y = check_labels(labels, logits.shape[0], "leep")
    n = y.shape[0]
    # Softmax with torch in float32, as the reference.
    theta = torch.softmax(torch.from_numpy(np.array(logits, dtype=np.float32)), dim=1).numpy()
    num_classes = int(y.max()) + 1
    # Samples grouped by class (dataset order kept inside a class): each class is one
    # contiguous block, summed and multiplied without boolean-mask copies.
    order = np.argsort(y, kind="stable")
    grouped = theta[order]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(y, minlength=num_classes))])
    blocks = [grouped[bounds[c]:bounds[c + 1]] for c in range(num_classes)]
    joint = np.stack([b.sum(axis=0) for b in blocks]).astype(np.float64) / n  # P(y, z)
    col = joint.sum(axis=0)
    cond = np.divide(joint, col, out=np.zeros_like(joint), where=col > 0)  # P(y|z)
    # sum_z theta_iz P(y_i|z), block by block.
    eep = np.concatenate([b @ cond[c] for c, b in enumerate(blocks)])
    return float(np.mean(np.log(eep)))
