"""FU, the thesis' "feature update" score: gradient-norm ratio of the first two convolutions.

Thesis (seed 004) eq. 6.3-6.4; spec section "FU", pitfall 11.
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import torch
from pytorch_metric_learning.losses import TripletMarginLoss
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .extraction import _device_of, _eval_mode, embed, fu_layers


def fu(model: nn.Module, loader, *, layers=None, layer: str | None = None,
       progress: bool = True) -> float:
    """Mean second-layer / mean first-layer gradient norm of a triplet loss on the embeddings.

    Per batch: embeddings = input of the classifier layer (as replacing the classifier by
    Identity), ``TripletMarginLoss()`` of pytorch-metric-learning 2.9.0 with its defaults
    (L2-normalised embeddings, margin 0.05, all valid triplets, mean over positive losses),
    then the Frobenius norms of the two layers' weight gradients. Ratio of means, not mean of
    ratios. Eval mode, torch seed 42, cuDNN off and deterministic inside; the caller's model
    (train flags, requires_grad, .grad), RNG and cuDNN settings are left as they were.

    Args:
        model: Source model with its classifier (torchvision or timm).
        loader: ``(images, labels)`` batches; the thesis uses :func:`fu_loader` (batch size
            floor(N/6), no shuffle, last partial batch kept).
        layers: ``(first, second)`` as modules or dotted names; default :func:`fu_layers`.
        layer: Dotted name of the classifier layer (see ``extraction.head_layer``).
        progress: Show a tqdm progress bar.

    Returns:
        FU score, > 0; higher is better.

    Raises:
        ValueError: no batch had a valid triplet (two samples of one class and one of another),
            so every gradient is zero.
    """
    first, second = _resolve_layers(model, layers)
    weights = [first.weight, second.weight]
    device = _device_of(model)
    loss_fn = TripletMarginLoss()
    norms = []
    with ExitStack() as stack:
        stack.enter_context(_eval_mode(model))
        stack.enter_context(_only_grad_for(model, weights))
        stack.enter_context(torch.random.fork_rng(
            devices=[device] if device.type == "cuda" else []))
        stack.enter_context(torch.backends.cudnn.flags(enabled=False, deterministic=True,
                                                       benchmark=False))
        stack.enter_context(torch.enable_grad())
        torch.manual_seed(42)
        for images, labels in tqdm(loader, desc="FU", disable=not progress):
            emb, _ = embed(model, images.to(device), layer=layer)
            loss = loss_fn(emb, torch.as_tensor(labels).reshape(-1).to(device))
            if loss.requires_grad:
                grads = torch.autograd.grad(loss, weights, allow_unused=True)
            else:
                grads = (None, None)
            norms.append([0.0 if g is None else float(torch.linalg.vector_norm(g))
                          for g in grads])
    if not norms:
        raise ValueError("fu: the loader yielded no batches")
    mean_first, mean_second = np.mean(norms, axis=0)
    if mean_first == 0:
        raise ValueError("fu: every batch had zero gradient (no valid triplet: a batch needs "
                         "two samples of one class and one of another); use larger, mixed "
                         "batches such as fu_loader(dataset)")
    return float(mean_second / mean_first)


def fu_loader(dataset, **kwargs) -> DataLoader:
    """The thesis' FU loader: batch size floor(N/6), dataset order, last partial batch kept."""
    return DataLoader(dataset, batch_size=max(1, len(dataset) // 6), shuffle=False,
                      drop_last=False, **kwargs)


def _resolve_layers(model, layers):
    if layers is None:
        return fu_layers(model)
    if len(layers) != 2:
        raise ValueError(f"fu: layers must be a (first, second) pair; got {layers!r}")
    pair = tuple(model.get_submodule(m) if isinstance(m, str) else m for m in layers)
    for m in pair:
        if not isinstance(getattr(m, "weight", None), torch.Tensor):
            raise ValueError(f"fu: layer {m!r} has no weight tensor")
    return pair


class _only_grad_for:
    """Gradients only for ``weights`` inside (same values, less work); flags restored after."""

    def __init__(self, model, weights):
        self.params = list(model.parameters())
        self.weights = {id(w) for w in weights}

    def __enter__(self):
        self.flags = [p.requires_grad for p in self.params]
        for p in self.params:
            p.requires_grad_(id(p) in self.weights)

    def __exit__(self, *exc):
        for p, flag in zip(self.params, self.flags):
            p.requires_grad_(flag)
