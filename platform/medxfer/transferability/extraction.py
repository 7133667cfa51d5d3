"""Forward features/logits and FU layer pairs of torchvision and timm source models.

Spec "How the reference gets its inputs" (hooked layers) and "FU" step 5 (layer pairs).
Weights only ever come from local files: nothing here builds or downloads a model.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch
import torchvision.models as tvm
from torch import nn
from tqdm.auto import tqdm

# Classifier layer whose input is the feature vector and whose output is the source logits
# (spec "How the reference gets its inputs"); -1 means the last module of that Sequential.
THESIS_HEADS: dict[type, tuple[str, int | None]] = {
    tvm.ResNet: ("fc", None),
    tvm.GoogLeNet: ("fc", None),
    tvm.ShuffleNetV2: ("fc", None),
    tvm.DenseNet: ("classifier", None),
    tvm.MobileNetV3: ("classifier", None),  # the whole block: 576-d features
    tvm.EfficientNet: ("classifier", -1),
    tvm.MNASNet: ("classifier", -1),
    tvm.VGG: ("classifier", -1),
    tvm.ConvNeXt: ("classifier", -1),
}

# (first, second) convolutions whose gradient norms FU compares (spec "FU" step 5).
THESIS_FU_LAYERS: dict[type, tuple[str, str]] = {
    tvm.ResNet: ("conv1", "layer1.0.conv1"),
    tvm.DenseNet: ("features.conv0", "features.denseblock1.denselayer1.conv1"),
    tvm.EfficientNet: ("features.0.0", "features.1.0.block.0.0"),
    tvm.GoogLeNet: ("conv1.conv", "conv2.conv"),
    tvm.MNASNet: ("layers.0", "layers.3"),
    tvm.MobileNetV3: ("features.0.0", "features.1.block.0.0"),
    tvm.VGG: ("features.0", "features.3"),
    tvm.ConvNeXt: ("features.0.0", "features.1.0.block.0"),
    tvm.ShuffleNetV2: ("conv1.0", "stage2.0.branch1.0"),
}


class Extracted(NamedTuple):
    """Outputs of :func:`extract`: float32 arrays in loader order."""

    features: np.ndarray  #: (N, D) input of the classifier layer
    logits: np.ndarray  #: (N, K) output of the classifier layer (the source logits)
    labels: np.ndarray  #: (N,) int64 target labels, flattened


def head_layer(model: nn.Module, layer: str | None = None) -> nn.Module | None:
    """The classifier layer to hook, or None for timm's generic ``forward_head`` rule.

    Order: an explicit ``layer`` (dotted name, e.g. ``"classifier.3"``); the thesis layer for
    the torchvision architectures it used; timm models -> None; otherwise a Linear ``fc`` or
    ``classifier`` attribute, or the last module of a Sequential ``classifier``.
    """
    if layer is not None:
        return model.get_submodule(layer)
    for cls, (attr, index) in THESIS_HEADS.items():
        if isinstance(model, cls):
            mod = getattr(model, attr)
            return mod[index] if index is not None else mod
    if _is_timm(model):
        return None
    for attr in ("fc", "classifier", "head"):
        mod = getattr(model, attr, None)
        if isinstance(mod, nn.Linear):
            return mod
        if isinstance(mod, nn.Sequential) and len(mod) and isinstance(mod[-1], nn.Linear):
            return mod[-1]
    raise ValueError(f"cannot find the classifier layer of {type(model).__name__}: pass "
                     "layer='dotted.name' of the layer whose input is the feature vector")


def embed(model: nn.Module, images: torch.Tensor, *, layer: str | None = None):
    """(features, logits) of one batch: input and output of the classifier layer.

    For timm models without an explicit ``layer``: ``forward_head(pre_logits=True)`` and
    ``forward_head()`` on ``forward_features``. Runs under the caller's grad mode.
    """
    head = head_layer(model, layer)
    if head is None:
        trunk = model.forward_features(images)
        return model.forward_head(trunk, pre_logits=True), model.forward_head(trunk)
    captured = {}

    def hook(_module, inputs, output):
        captured["features"], captured["logits"] = inputs[0], output

    handle = head.register_forward_hook(hook)
    try:
        model(images)
    finally:
        handle.remove()
    return captured["features"].flatten(1), captured["logits"]


def extract(model: nn.Module, loader, *, layer: str | None = None, device=None,
            progress: bool = True) -> Extracted:
    """Features and source logits of every sample, batched, in eval and inference mode.

    Args:
        model: torchvision or timm classifier with its source head (weights already loaded
            from a local file).
        loader: Iterable of ``(images, labels)`` batches, in dataset order (no shuffling).
        layer: Dotted name of the classifier layer, overriding the automatic choice.
        device: Where to run; default: the model's device.
        progress: Show a tqdm progress bar.
    """
    device = torch.device(device) if device is not None else _device_of(model)
    feats, logits, labels = [], [], []
    with _eval_mode(model), torch.inference_mode():
        for images, target in tqdm(loader, desc="features", disable=not progress):
            f, z = embed(model, images.to(device), layer=layer)
            feats.append(f.float().cpu().numpy())
            logits.append(z.float().cpu().numpy())
            labels.append(np.asarray(target).reshape(-1))
    if not feats:
        raise ValueError("extract: the loader yielded no batches")
    return Extracted(np.concatenate(feats), np.concatenate(logits),
                     np.concatenate(labels).astype(np.int64))


def fu_layers(model: nn.Module) -> tuple[nn.Conv2d, nn.Conv2d]:
    """The (first, second) convolution layers of FU.

    The thesis pair for its torchvision architectures (spec "FU" step 5); otherwise, or when
    a listed name does not resolve to a Conv2d (e.g. vgg16), the first two ``Conv2d`` in
    module order -- which is also what every thesis pair is.
    """
    for cls, names in THESIS_FU_LAYERS.items():
        if isinstance(model, cls):
            try:
                pair = tuple(model.get_submodule(n) for n in names)
            except AttributeError:
                break
            if all(isinstance(m, nn.Conv2d) for m in pair):
                return pair
            break
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if len(convs) < 2:
        raise ValueError(f"FU needs two Conv2d layers; {type(model).__name__} has "
                         f"{len(convs)}: pass layers=(first, second)")
    return convs[0], convs[1]


@contextmanager
def _eval_mode(model: nn.Module):
    """Eval mode inside, the caller's train/eval flags restored after."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in flags:
            m.training = training


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _is_timm(model: nn.Module) -> bool:
    return type(model).__module__.startswith("timm.") and hasattr(model, "forward_head")
