"""The spec's reference computation of every transferability metric, for timing and testing.

Each function makes the library calls that ``shared/specs/transferability-metrics.md`` (the
spec) says the thesis' reference code makes -- sklearn's PCA, GaussianMixture, LDA, NCA and
k-NN, scipy's eigh and spearmanr, torch's softmax, pytorch-metric-learning's triplet loss --
vectorised as that code is. They are the baselines of ``benchmarks/metrics_speed.py`` and the
values medxfer's metrics must equal (``test_<metric>.py`` in tests/transferability). The slow
loop-by-loop transcriptions of the spec's prose are a different thing, in
``tests/transferability/_reference.py``.

Deliberate differences from the thesis code: nothing is overwritten in place (SFDA), and
NLEEP's GMM takes a ``random_state`` instead of drawing from NumPy's global RNG (spec pitfall 4:
``random_state=s`` is the same stream as ``np.random.seed(s)`` before the call).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from pytorch_metric_learning.losses import TripletMarginLoss
from scipy import linalg
from scipy.stats import spearmanr
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.preprocessing import StandardScaler


def logme_reference(features, labels) -> float:
    """Spec "LogME" (fixed-point variant, arXiv 2110.10545): SVD of F^T F, per-class evidence."""
    f = np.asarray(features, dtype=np.float64)
    n, d = f.shape
    if n > d:
        _, s2, vh = np.linalg.svd(f.T @ f)
        s = np.sqrt(s2)
        k = int(np.sum(s > 1e-10))
        s, vh = s[:k], vh[:k]
        u = (f @ vh.T) / s
    else:
        u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = s ** 2
    evidences = []
    for c in range(int(labels.max()) + 1):
        t = (labels == c).astype(np.float64)
        x2 = (u.T @ t) ** 2
        r0 = (t ** 2).sum() - x2.sum()
        alpha, beta = 1.0, 1.0
        for _ in range(11):
            tt = alpha / beta
            gamma = (sigma / (sigma + tt)).sum()
            m2 = (sigma * x2 / ((tt + sigma) ** 2)).sum()
            res2 = (x2 / ((1 + sigma / tt) ** 2)).sum() + r0
            alpha = gamma / (m2 + 1e-5)
            beta = (n - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - tt) / tt <= 1e-3:
                break
        evidences.append((d / 2 * np.log(alpha) + n / 2 * np.log(beta)
                          - 0.5 * np.sum(np.log(alpha + beta * sigma)) - beta / 2 * res2
                          - alpha / 2 * m2 - n / 2 * np.log(2 * np.pi)) / n)
    return float(np.mean(evidences))


def leep_reference(logits, labels) -> float:
    """Spec "LEEP": torch float32 softmax, joint by class sums, P(y|z), mean log EEP."""
    theta = torch.softmax(torch.from_numpy(np.asarray(logits, dtype=np.float32)), dim=1).numpy()
    n, num_classes = labels.shape[0], int(labels.max()) + 1
    joint = np.zeros((num_classes, theta.shape[1]))
    for c in range(num_classes):
        joint[c] = theta[labels == c].sum(axis=0)
    joint /= n
    col = joint.sum(axis=0, keepdims=True)
    cond = np.divide(joint, col, out=np.zeros_like(joint), where=col > 0)
    eep = theta @ cond.T
    return float(np.mean(np.log(eep[np.arange(n), labels])))


def nleep_reference(features, labels, random_state, component_ratio=5) -> float:
    """Spec "NLEEP": PCA(0.8, random_state=42), GaussianMixture(5C) at sklearn's defaults,
    predict_proba, mean true-label probability (no log). Computed on float64 (pitfall 4)."""
    x = np.asarray(features, dtype=np.float64)
    n, num_classes = labels.shape[0], int(labels.max()) + 1
    reduced = PCA(n_components=0.8, random_state=42).fit_transform(x)
    rng = np.random.RandomState(random_state)
    gmm = GaussianMixture(n_components=component_ratio * num_classes, random_state=rng)
    prob = gmm.fit(reduced).predict_proba(reduced)
    pyz = np.zeros((num_classes, prob.shape[1]))
    for c in range(num_classes):
        pyz[c] = prob[labels == c].sum(axis=0) / n
    py_x = prob @ (pyz / pyz.sum(axis=0)).T
    return float(py_x[np.arange(n), labels].mean())


def parc_reference(features, labels) -> float:
    """Spec "PARC": randomized PCA (1919, iterated_power 1), z-score, 1 - corrcoef of rows and
    of one-hot labels, 100 x scipy spearmanr of the strict upper triangles."""
    n = labels.shape[0]
    reduced = PCA(n_components=min(32, n), svd_solver="randomized", random_state=1919,
                  iterated_power=1).fit_transform(features)
    reduced = StandardScaler().fit_transform(reduced)
    feat_dis = 1 - np.corrcoef(reduced)
    label_dis = 1 - np.corrcoef(np.eye(np.unique(labels).size)[labels])
    upper = np.triu_indices(n, 1)
    return float(spearmanr(feat_dis[upper], label_dis[upper])[0] * 100)


def _sfda_stage(x, labels, num_classes, lam):
    """One SFDA fit: shrunk Sw and St, generalised eigh, all eigenvectors, posteriors."""
    n, d = x.shape
    priors = np.bincount(labels) / n
    means = np.zeros((num_classes, d))  # float64 class means, as the SFDA code's _class_means
    np.add.at(means, labels, x)
    means /= np.bincount(labels)[:, None]
    sw = sum(priors[c] * np.atleast_2d(np.cov(x[labels == c].T, bias=1))
             for c in range(num_classes))
    if lam is None:  # 3 paired power-iteration steps from the row sums
        v = sw.sum(axis=1)
        for _ in range(3):
            w = sw @ v
            w /= np.linalg.norm(w)
            v = sw @ w
            v /= np.linalg.norm(v)
        lam = max(np.exp(-5 * (v @ sw @ w)), 1e-10)

    def shrink(m):
        return (1 - lam) * m + lam * np.trace(m) / d * np.eye(d)

    sw_s = shrink(sw)
    evals, evecs = linalg.eigh(shrink(np.cov(x.T, bias=1)) - sw_s, sw_s)
    evecs = evecs[:, np.argsort(evals)[::-1]]
    coef = means @ evecs @ evecs.T
    scores = x @ coef.T - 0.5 * np.diag(means @ coef.T) + np.log(priors)
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    return scores / scores.sum(axis=1, keepdims=True), lam, means


def sfda_reference(features, labels) -> float:
    """Spec "SFDA": stage 1, softmax again, ConfMix, stage 2 with stage 1's shrinkage."""
    x = np.array(features)  # the thesis code mixes its input in place: work on a copy
    n, num_classes = labels.shape[0], int(labels.max()) + 1
    prob, lam, means = _sfda_stage(x, labels, num_classes, None)
    prob = np.exp(prob) / np.exp(prob).sum(axis=1, keepdims=True)
    for c in range(num_classes):
        idx = labels == c
        others = (means.sum(axis=0) - means[c]) / (num_classes - 1)
        p = prob[idx, c][:, None]
        x[idx] = p * x[idx] + (1 - p) * others
    prob, _, _ = _sfda_stage(x, labels, num_classes, lam)
    return float(prob[np.arange(n), labels].sum() / n)


def ncti_reference(features, labels) -> tuple[float, float, float]:
    """Spec "NCTI": PCA(64, random_state=42, 'auto'), LDA (svd, or eigen with shrinkage
    exp(-sum of the 32 largest variances)), the raw terms (seli, ncc, vc)."""
    pca = PCA(n_components=64, random_state=42)
    reduced = pca.fit_transform(features)
    temp = max(np.exp(-np.sum(pca.explained_variance_[:32])), 1e-10)
    lda = (LinearDiscriminantAnalysis(solver="svd") if temp == 1e-10 else
           LinearDiscriminantAnalysis(solver="eigen", shrinkage=temp))
    low = lda.fit_transform(reduced, labels)
    seli = np.linalg.norm(low - low.mean(axis=0), ord="nuc")
    prob = lda.predict_proba(reduced)
    ncc = prob[np.arange(labels.shape[0]), labels].mean()
    vc = np.log(sum(np.linalg.norm(prob[labels == c], ord="nuc")
                    for c in range(int(labels.max()) + 1)))
    return float(seli), float(ncc), float(vc)


def gbc_reference(features, labels) -> float:
    """Spec "GBC" (Pandy et al. CVPR 2022): exact PCA to min(64, N, D), diagonal Gaussian per
    class (variances floored at 1e-4, as the authors' code), -sum_{i != j} exp(-D_B)."""
    k = min(64, *features.shape)
    z = PCA(n_components=k, svd_solver="full").fit_transform(features).astype(np.float64)
    classes = np.unique(labels)
    stats = [(z[labels == c].mean(axis=0), np.maximum(z[labels == c].var(axis=0), 1e-4))
             for c in classes]
    total = 0.0
    for i, (mi, vi) in enumerate(stats):
        for j, (mj, vj) in enumerate(stats):
            if i != j:
                s = (vi + vj) / 2
                log_ratio = np.log(s).sum() - 0.5 * (np.log(vi).sum() + np.log(vj).sum())
                d_b = np.sum((mi - mj) ** 2 / s) / 8 + 0.5 * log_ratio
                total += np.exp(-d_b)
    return float(-total)


def lp_reference(features, labels) -> float:
    """Spec "LP": NCA(50, random_state=42) at sklearn's defaults, 5-NN predict_proba on the
    training points, mean probability of the own label."""
    nca = NeighborhoodComponentsAnalysis(n_components=50, random_state=42)
    embedded = nca.fit(features, labels).transform(features)
    knn = KNeighborsClassifier(n_neighbors=5).fit(embedded, labels)
    proba = knn.predict_proba(embedded)
    return float(np.mean(proba[np.arange(labels.shape[0]),
                               np.searchsorted(knn.classes_, labels)]))


def fu_reference(model, loader, first: str, second: str, head: str = "fc") -> float:
    """Spec "FU": classifier -> Identity, eval mode, seed 42; per batch zero_grad, default
    TripletMarginLoss on the embeddings, backward, Frobenius norms of the two layers' weight
    gradients; ratio of the means. Runs on a copy; torch's RNG is restored after."""
    ref = copy.deepcopy(model)
    setattr(ref, head, torch.nn.Identity())
    ref.eval()
    layers = (ref.get_submodule(first), ref.get_submodule(second))
    loss_fn = TripletMarginLoss()
    norms = []
    with torch.random.fork_rng():
        torch.manual_seed(42)
        for images, target in loader:
            ref.zero_grad()
            loss = loss_fn(ref(images), target.reshape(-1))
            loss.backward()
            norms.append([0.0 if m.weight.grad is None else float(m.weight.grad.norm())
                          for m in layers])
    g1, g2 = np.mean(norms, axis=0)
    return float(g2 / g1)
