"""Slow, direct transcriptions of the spec's prose (shared/specs/transferability-metrics.md).

Written independently of medxfer's fast implementations, loop by loop as the spec describes
the reference code, so the tests can compare the two.

``spec_reference`` is ``benchmarks/metrics_reference.py``: the spec's reference computation of
every metric (the thesis code's library calls), which medxfer's metrics must equal and which
``benchmarks/metrics_speed.py`` times them against.
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import torch
from scipy import linalg
from scipy.stats import rankdata
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NeighborhoodComponentsAnalysis


def _load_spec_reference():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "metrics_reference.py"
    spec = importlib.util.spec_from_file_location("metrics_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


spec_reference = _load_spec_reference()


# --- LogME (spec "LogME") -----------------------------------------------------------------
def logme_slow(X, y, exact=False):
    f = np.array(X, dtype=np.float64)
    N, D = f.shape
    if N > D:
        _, s2, vh = np.linalg.svd(f.T @ f)
        s = np.sqrt(s2)
        k = int(np.sum(s > 1e-10))
        s, vh = s[:k], vh[:k]
        u = (f @ vh.T) / s
    else:
        u, s, _ = np.linalg.svd(f, full_matrices=False)
        k = s.size
    sigma = s ** 2
    evidences = []
    for c in range(int(y.max()) + 1):
        t = (y == c).astype(np.float64)
        x = u.T @ t
        r0 = (t ** 2).sum() - (x ** 2).sum()
        alpha, beta = 1.0, 1.0
        for _ in range(11):
            tt = alpha / beta
            gamma = np.sum(sigma / (sigma + tt))
            m2 = np.sum(sigma * x ** 2 / (tt + sigma) ** 2)
            res2 = np.sum(x ** 2 / (1 + sigma / tt) ** 2) + r0
            alpha = gamma / (m2 + 1e-5)
            beta = (N - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - tt) / tt <= 1e-3:
                break
        logdet = np.sum(np.log(alpha + beta * sigma))
        if exact:  # the D - k zero eigenvalues contribute log(alpha) each
            logdet += (D - k) * np.log(alpha)
        ev = (D / 2 * np.log(alpha) + N / 2 * np.log(beta) - 0.5 * logdet
              - beta / 2 * res2 - alpha / 2 * m2 - N / 2 * np.log(2 * np.pi)) / N
        evidences.append(ev)
    return float(np.mean(evidences))


# --- LEEP (spec "LEEP") -------------------------------------------------------------------
def leep_slow(logits, y):
    theta = torch.softmax(torch.from_numpy(np.asarray(logits, np.float32)), 1).numpy()
    N, Z = theta.shape
    C = int(y.max()) + 1
    joint = np.zeros((C, Z))
    for i in range(N):
        joint[y[i]] += theta[i] / N
    cond = np.zeros((C, Z))
    for z in range(Z):
        col = joint[:, z].sum()
        if col > 0:
            cond[:, z] = joint[:, z] / col
    total = 0.0
    for i in range(N):
        total += np.log(sum(theta[i, z] * cond[y[i], z] for z in range(Z)))
    return total / N


# --- NLEEP (spec "NLEEP"): the reference drawing from the global RNG ------------------------
def nleep_reference_global_rng(X, y, component_ratio=5):
    X = np.asarray(X, dtype=np.float64)
    n, C = len(y), int(y.max()) + 1
    Xp = PCA(n_components=0.8, random_state=42).fit_transform(X)
    gmm = GaussianMixture(n_components=component_ratio * C).fit(Xp)  # random_state None
    prob = gmm.predict_proba(Xp)
    pyz = np.zeros((C, component_ratio * C))
    for c in range(C):
        pyz[c] = prob[y == c].sum(0) / n
    py_x = prob @ (pyz / pyz.sum(0)).T
    return py_x[np.arange(n), y]


# --- PARC (spec "PARC") ---------------------------------------------------------------------
def parc_slow(X, y, exact_label_ties=False):
    N = X.shape[0]
    red = PCA(n_components=min(32, N), svd_solver="randomized", random_state=1919,
              iterated_power=1).fit_transform(X).astype(np.float64)
    z = (red - red.mean(0)) / red.std(0)  # population sd
    onehot = np.eye(len(np.unique(y)))[y]

    def corr_rows(a):
        a = a - a.mean(1, keepdims=True)
        a = a / np.sqrt((a ** 2).sum(1, keepdims=True))
        return a @ a.T

    fd = 1 - corr_rows(z)
    if exact_label_ties:  # one-hot rows: correlation 1 within a class, -1/(C-1) across
        C = onehot.shape[1]
        ld = np.array([[0.0 if a == b else 1 + 1 / (C - 1) for b in y] for a in y])
    else:  # the reference's np.corrcoef, rounding (and so its tie breaking) included
        ld = 1 - np.corrcoef(onehot)
    pairs = [(i, j) for i in range(N) for j in range(i + 1, N)]
    a = rankdata([fd[i, j] for i, j in pairs])
    b = rankdata([ld[i, j] for i, j in pairs])
    return 100 * np.corrcoef(a, b)[0, 1]


# --- SFDA (spec "SFDA"): the reference algorithm, generalised eigenproblem and all -----------
def _sfda_fit_proba(X, y, C, lam):
    N, D = X.shape
    priors = np.bincount(y) / N
    means = np.zeros((C, D))
    np.add.at(means, y, X)
    means /= np.bincount(y)[:, None]
    Sw = np.zeros((D, D))
    for c in range(C):
        Sw += priors[c] * np.atleast_2d(np.cov(X[y == c].T, bias=1))
    if lam is None:
        x = Sw.sum(1)
        for _ in range(3):
            t = Sw @ x
            yv = t / np.linalg.norm(t)
            t = Sw @ yv
            x = t / np.linalg.norm(t)
        lam = max(np.exp(-5 * (x @ Sw @ yv)), 1e-10)

    def shrink(M):
        return (1 - lam) * M + lam * np.trace(M) / D * np.eye(D)

    St, Sw_s = shrink(np.cov(X.T, bias=1)), shrink(Sw)
    evals, evecs = linalg.eigh(St - Sw_s, Sw_s)
    evecs = evecs[:, np.argsort(evals)[::-1]]
    coef = means @ evecs @ evecs.T
    intercept = -0.5 * np.diag(means @ coef.T) + np.log(priors)
    s = X @ coef.T + intercept
    s = np.exp(s - s.max(1, keepdims=True))
    return s / s.sum(1, keepdims=True), lam, means


def sfda_slow(X, y):
    X = np.array(X)  # the reference overwrites its input: work on a copy of the same dtype
    n, C = len(y), int(y.max()) + 1
    prob, lam, means = _sfda_fit_proba(X, y, C, None)
    prob = np.exp(prob) / np.exp(prob).sum(1, keepdims=True)
    others = np.stack([(means.sum(0) - means[c]) / (C - 1) for c in range(C)])
    for c in range(C):
        idx = np.where(y == c)[0]
        p = prob[idx, c][:, None]
        X[idx] = p * X[idx] + (1 - p) * others[c]
    prob, _, _ = _sfda_fit_proba(X, y, C, lam)
    return prob[np.arange(n), y].sum() / n


# --- NCTI (spec "NCTI") ---------------------------------------------------------------------
def ncti_slow(X, y):
    pca = PCA(n_components=64, random_state=42)
    Xp = pca.fit_transform(X)
    temp = max(np.exp(-np.sum(pca.explained_variance_[:32])), 1e-10)
    lda = (LinearDiscriminantAnalysis(solver="svd") if temp == 1e-10 else
           LinearDiscriminantAnalysis(solver="eigen", shrinkage=temp))
    low = lda.fit_transform(Xp, y)
    low = low - low.mean(0)
    seli = np.linalg.svd(low, compute_uv=False).sum()
    P = lda.predict_proba(Xp)
    ncc = np.mean([P[i, y[i]] for i in range(len(y))])
    vc = np.log(sum(np.linalg.svd(P[y == c], compute_uv=False).sum()
                    for c in range(int(y.max()) + 1)))
    return seli, ncc, vc


# --- GBC (spec "GBC") -------------------------------------------------------------------------
def gbc_slow(X, y, spherical=False, floor=1e-4):
    k = min(64, *X.shape)
    Z = PCA(n_components=k, svd_solver="full").fit_transform(X).astype(np.float64)
    stats = {}
    for c in np.unique(y):
        Zc = Z[y == c]
        var = np.maximum(Zc.var(0), floor)
        S = np.diag(np.full(k, var.mean()) if spherical else var)
        stats[c] = (Zc.mean(0), S)
    total = 0.0
    for i, j in itertools.permutations(stats, 2):
        (mi, Si), (mj, Sj) = stats[i], stats[j]
        S = (Si + Sj) / 2
        d = mi - mj
        db = d @ np.linalg.inv(S) @ d / 8 + 0.5 * np.log(
            np.linalg.det(S) / np.sqrt(np.linalg.det(Si) * np.linalg.det(Sj)))
        total += np.exp(-db)
    return -total


# --- LP (spec "LP") ---------------------------------------------------------------------------
def lp_slow(X, y):
    E = NeighborhoodComponentsAnalysis(n_components=50, random_state=42).fit(X, y).transform(X)
    E = E.astype(np.float64)
    fractions = []
    for i in range(len(y)):
        dist = np.sqrt(((E - E[i]) ** 2).sum(1))
        nn = np.argsort(dist, kind="stable")[:5]  # includes i itself (distance 0)
        fractions.append(np.mean(y[nn] == y[i]))
    return float(np.mean(fractions))


# --- FU (spec "FU"): triplet loss by enumeration, classifier replaced by Identity ------------
def triplet_loss_slow(emb, labels, margin=0.05):
    e = emb / emb.norm(dim=1, keepdim=True)
    losses = []
    n = len(labels)
    for a, p, q in itertools.product(range(n), repeat=3):
        if a != p and labels[a] == labels[p] and labels[q] != labels[a]:
            losses.append(torch.relu((e[a] - e[p]).norm() - (e[a] - e[q]).norm() + margin))
    positive = [loss for loss in losses if loss > 0]
    return torch.stack(positive).mean() if positive else (emb * 0).sum()


def fu_slow(model_with_identity_head, first, second, batches):
    model_with_identity_head.eval()
    g1, g2 = [], []
    for images, labels in batches:
        model_with_identity_head.zero_grad()
        loss = triplet_loss_slow(model_with_identity_head(images), labels.reshape(-1).tolist())
        loss.backward()
        g1.append(0.0 if first.weight.grad is None else first.weight.grad.norm().item())
        g2.append(0.0 if second.weight.grad is None else second.weight.grad.norm().item())
    return np.mean(g2) / np.mean(g1)
