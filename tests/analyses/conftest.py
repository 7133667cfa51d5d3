"""Fixtures of the analyses tests: synthetic lesion data, two tiny CNNs trained on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from train_helpers import one_torch_thread


def train_tiny_cnn(root, seed: int, *, epochs: int = 20):
    """tiny_cnn + head trained on synthlesion/train (Adam 3e-3, batch 16), in eval mode."""
    from torch import nn

    from medxfer.data.medmnist import load_split
    from medxfer.models import create_backbone

    s = load_split(root, "synthlesion", "train")
    x = torch.from_numpy(s.images.astype(np.float32) / 255)[:, None]
    y = torch.from_numpy(s.labels[:, 0].astype(np.int64))
    with one_torch_thread():
        torch.manual_seed(seed)
        model = create_backbone("tiny_cnn", in_chans=1, num_classes=2)
        opt = torch.optim.Adam(model.parameters(), 3e-3)
        for _ in range(epochs):
            model.train()
            perm = torch.randperm(len(x))
            for i in range(0, len(x), 16):
                b = perm[i:i + 16]
                loss = nn.functional.cross_entropy(model(x[b]), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
    return model.eval()


@pytest.fixture(autouse=True)
def one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def lesion_root(tmp_path_factory):
    from medxfer.data.synth import synthesize

    root = tmp_path_factory.mktemp("lesion-data")
    synthesize(root, n_per_class=40, seed=0, modalities=["synthlesion", "synthpneumonia"])
    return root


@pytest.fixture(scope="session")
def lesion_weights(lesion_root, tmp_path_factory):
    """Two trained models' weight files (seed 0: 20 epochs, seed 1: 6 epochs)."""
    d = tmp_path_factory.mktemp("lesion-weights")
    paths = []
    for seed, epochs in ((0, 20), (1, 6)):
        model = train_tiny_cnn(lesion_root, seed, epochs=epochs)
        paths.append(d / f"lesion{seed}.pt")
        torch.save(model.state_dict(), paths[-1])
    return paths
