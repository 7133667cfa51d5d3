"""Saliency maps from captum (https://captum.ai): Grad-CAM and Integrated Gradients.

Seed ``000_3dd3de5c534b555f.txt`` sec. 4 (Fig. 5) judges where models look with attention maps
and the pointing-game hit rate; it uses iGOS++ (Khorram et al., CHIL 2021). We use two methods
from a maintained library instead:

* ``gradcam``: Grad-CAM (Selvaraju et al. 2017, https://arxiv.org/abs/1610.02391),
  ``ReLU(sum_k alpha_k A^k)`` with ``alpha_k`` the spatial mean of the class score's gradient
  w.r.t. feature map ``A^k`` of the final feature layer (captum ``LayerGradCam``), upsampled
  bilinearly to the image with each feature cell at the centre of its receptive field
  (:func:`upsample_to_input`).
* ``ig``: Integrated Gradients (Sundararajan et al. 2017, https://arxiv.org/abs/1703.01365)
  from a black (zero) baseline, ``n_steps`` Gauss-Legendre steps (captum
  ``IntegratedGradients``); the map is ``|attribution|`` summed over channels.

Departure: no iGOS++ (an optimised deletion/insertion mask with integrated-gradient descent
directions); the pointing game is run on the maps above.

The final feature layer (default) is the module whose forward *finishes last* with a 4-D output:
``features`` of ``tiny_cnn``, ``layer4`` of a ResNet, the last stage of a timm model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medxfer.errors import MedxferInputError

METHODS = ("gradcam", "ig")


def feature_layer(model: nn.Module, x: torch.Tensor, name: str | None = None
                  ) -> tuple[str, nn.Module]:
    """The layer Grad-CAM reads: ``name``, else the last-finishing module with 4-D output."""
    modules = dict(model.named_modules())
    if name is not None:
        if name not in modules or name == "":
            valid = [n for n, m in modules.items()
                     if n and isinstance(m, (nn.Conv2d, nn.Sequential))]
            raise MedxferInputError(f"unknown layer {name!r}; some valid: {valid[-8:]}",
                                    field="--layer")
        return name, modules[name]
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: order.append(n)
                                     if torch.is_tensor(out) and out.ndim == 4 else None)
             for n, m in modules.items() if n]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    if not order:
        raise MedxferInputError("the model has no layer with a (N, C, H, W) output for Grad-CAM",
                                field="--layer")
    return order[-1], modules[order[-1]]


def upsample_to_input(a: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of a feature map ``(n, c, h, w)`` to the input ``size`` ``(H, W)``
    with cell ``j`` at input pixel ``s * j`` (``s = H / h``): the centre of its receptive field
    in a network of odd, "same"-padded kernels with stride-2 steps (tiny_cnn, ResNets).

    captum's ``LayerAttribution.interpolate`` (``F.interpolate``, ``align_corners=False``) puts
    cell ``j`` at ``s * j + (s - 1) / 2`` instead: 1.5 px down and right of the receptive
    field's centre at ``s = 4`` (tiny_cnn's 7x7 map of a 28 px image), which moves Grad-CAM
    peaks off small lesions. Pixels past the last cell's centre repeat the border.
    """
    n, c, h, w = a.shape
    rows = torch.arange(size[0], dtype=a.dtype, device=a.device) * (h / size[0])
    cols = torch.arange(size[1], dtype=a.dtype, device=a.device) * (w / size[1])
    gy = 2 * rows / max(h - 1, 1) - 1  # grid_sample's [-1, 1] spans cell centres 0 .. h - 1
    gx = 2 * cols / max(w - 1, 1) - 1
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)  # (H, W, [x, y])
    return nn.functional.grid_sample(a, grid.expand(n, *grid.shape), mode="bilinear",
                                     padding_mode="border", align_corners=True)


def saliency_maps(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, method: str, *,
                  layer: nn.Module | None = None, n_steps: int = 32,
                  batch_size: int = 32) -> np.ndarray:
    """Maps ``(n, H, W)`` of ``method`` for the class ``targets`` of each image.

    Args:
        model: Classifier in eval mode returning logits ``(n, K)``.
        x: Images ``(n, C, H, W)``.
        targets: ``(n,)`` class index whose score is explained.
        method: ``"gradcam"`` or ``"ig"``.
        layer: The feature layer for Grad-CAM (see :func:`feature_layer`).
        n_steps: Integration steps of IG.
        batch_size: Images per call.
    """
    from captum.attr import IntegratedGradients, LayerGradCam

    if method not in METHODS:
        raise MedxferInputError(f"unknown saliency method {method!r}; valid: {list(METHODS)}",
                                field="--methods")
    h, w = x.shape[-2:]
    out = []
    for s in range(0, len(x), batch_size):
        xb, tb = x[s:s + batch_size].clone(), targets[s:s + batch_size]
        if method == "gradcam":
            a = LayerGradCam(model, layer).attribute(xb, target=tb, relu_attributions=True)
            a = upsample_to_input(a, (h, w))[:, 0]
        else:
            a = IntegratedGradients(model).attribute(xb, target=tb, n_steps=n_steps,
                                                     internal_batch_size=batch_size)
            a = a.abs().sum(1)
        out.append(a.detach().cpu().numpy())
    return np.concatenate(out).astype(np.float32)
