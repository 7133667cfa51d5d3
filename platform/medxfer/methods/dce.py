"""dce: self-supervised deep contrast enhancement, a shallow U-Net trained to output alpha maps.

Seed ``000_3dd3de5c534b555f.txt`` sec. 3.1. Images of ``data.flag`` (optionally text-removed
first, stage 1: ``text_removal``) are normalised to [-1, 1]; a
:class:`~medxfer.models.ShallowUNet` maps each image X to its alpha map A, the LE-curve gives
the enhanced image Y = y_shift + tanh(A (X + x_shift)) (eq. 1), and
:class:`~medxfer.losses.DCELoss` trains it: w_adapt L_adapt (eq. 2-4) + w_lcl L_lcl + w_rcl
L_rcl (eq. 6-8). L_lcl in the *training* loss is the differentiable sigmoid surrogate of eq. 5;
the *reported* ``lcl_exact`` is the exact fraction of 4-neighbour order flips between X and Y.

Reports per epoch (step = epoch): ``train_loss`` (the total), ``train_adapt``, ``train_lcl``,
``train_rcl``, ``train_lcl_exact``, the same with ``val_``, ``val_midband_std_ratio`` (std of
Y over the pixels of X's middle band -- between its 2nd and 4th sorted k-means centres --
divided by std of X there: > 1 means the middle of the histogram was widened) and ``lr``.
Selection: lowest ``val_loss``. The final checkpoint holds ``dce.pt`` (:func:`save_dce`), which
the ``dce`` transform (:mod:`medxfer.methods.dce_transform`) loads so that any method can train
on enhanced images; it records the text removal used here, which the transform then applies
before enhancing (text removal in every stage that uses this DCE).

Defaults of the strength TS, the square size k and theta's meaning (``theta_mode``) are the
loss module's (:data:`medxfer.losses.dce.DEFAULT_STRENGTH`, ``DEFAULT_KERNEL_SIZE``,
``DEFAULT_THETA_MODE``), one place for method and loss.

Text removal uses :mod:`medxfer.data.text_removal` (EasyOCR from local model files, else the
classical detector); it runs once per image when the dataset is built.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn
from torch.utils.data import Dataset

from medxfer.errors import MedxferInputError
from medxfer.losses.dce import DEFAULT_KERNEL_SIZE, DEFAULT_STRENGTH, DEFAULT_THETA_MODE
from medxfer.methods.checkpoint import clone_state
from medxfer.methods.common import in_chans, load_datasets
from medxfer.methods.loop import Parts, train_loop
from medxfer.methods.registry import Method, MethodOptions, register_method
from medxfer.methods.session import get_session, to_device, unwrap

WEIGHTS_FILE = "dce.pt"
FORMAT = "medxfer.dce/1"


class DCEOptions(MethodOptions):
    """``method_config`` of dce.

    Attributes:
        w_adapt, w_lcl, w_rcl: loss term weights.
        strength: transformation strength TS (peak of the adaptive alpha target, eq. 2); > 1
            lets the LE-curve steepen the middle band.
        theta_mode: how theta of eq. 4 enters the Gaussian: ``distance`` (a width, the
            default) or ``variance`` (the sentence after eq. 4); see :mod:`medxfer.losses.dce`.
        x_shift, y_shift: LE-curve shifts (eq. 1).
        kernel_size: square size k of the region conflict loss (eq. 7-8).
        sharpness: sigmoid temperature of the local-conflict surrogate.
        base_channels, depth, init_alpha: the shallow U-Net.
        text_removal: ``none``, or the detector of stage 1: ``auto``, ``classical``, ``easyocr``.
        text_model_dir: EasyOCR's local model directory (never downloaded).
    """

    w_adapt: float = Field(1.0, ge=0)
    w_lcl: float = Field(1.0, ge=0)
    w_rcl: float = Field(1.0, ge=0)
    strength: float = Field(DEFAULT_STRENGTH, gt=0)
    theta_mode: Literal["distance", "variance"] = DEFAULT_THETA_MODE
    x_shift: float = 0.0
    y_shift: float = 0.0
    kernel_size: int = Field(DEFAULT_KERNEL_SIZE, ge=1)
    sharpness: float = Field(0.01, gt=0)
    base_channels: int = Field(8, ge=1)
    depth: int = Field(2, ge=1)
    init_alpha: float = Field(1.0, gt=0)
    text_removal: Literal["none", "auto", "classical", "easyocr"] = "none"
    text_model_dir: str | None = None


DEFAULTS: dict[str, Any] = {"train": {"optimizer": "adam", "lr": 1e-3,
                                      "early_stopping_metric": "val_loss",
                                      "early_stopping_mode": "min",
                                      "select_by": "val_loss", "mode": "min"}}
TERMS = ("adapt", "lcl", "rcl", "lcl_exact")


class Normalised(Dataset):
    """Images of a dataset in [-1, 1] (from [0, 1]), optionally text-removed first.

    Items: ``x`` of shape (C, H, W). Text removal runs once per item and is cached (the
    base dataset should then be deterministic: no random transforms).
    """

    def __init__(self, base, detector=None):
        self.base, self.detector, self._cache = base, detector, {}

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> Tensor:
        if self.detector is None:
            return self.base[i][0] * 2 - 1
        if i not in self._cache:
            self._cache[i] = remove_text_tensor(self.base[i][0], self.detector) * 2 - 1
        return self._cache[i]


def remove_text_tensor(x: Tensor, detector) -> Tensor:
    """Stage 1 on a (C, H, W) [0, 1] tensor: detected text inpainted, other pixels unchanged."""
    from medxfer.data.text_removal import remove_text

    arr = x.permute(1, 2, 0).numpy()
    cleaned, _ = remove_text(arr[..., 0] if arr.shape[2] == 1 else arr, detector)
    out = torch.from_numpy(np.ascontiguousarray(cleaned)).float()
    return out[None] if out.ndim == 2 else out.permute(2, 0, 1)


@torch.no_grad()
def midband_std_ratio(original: Tensor, enhanced: Tensor) -> Tensor:
    """Mean over images of std(Y) / std(X) on X's middle band (2nd..4th k-means centre).

    Args:
        original: X. Shape: (B, C, H, W).
        enhanced: Y. Shape: (B, C, H, W).
    """
    from medxfer.losses import kmeans_1d

    b = original.shape[0]
    x, y = original.reshape(b, -1), enhanced.reshape(b, -1)
    c = kmeans_1d(x, 5)
    band = (x >= c[:, 1:2]) & (x <= c[:, 3:4])
    ratios = [y[i][band[i]].std() / x[i][band[i]].std().clamp(min=1e-6)
              for i in range(b) if band[i].sum() > 1]
    return torch.stack(ratios).mean() if ratios else original.new_tensor(float("nan"))


def save_dce(unet: nn.Module, opts: DCEOptions, state: dict[str, Tensor] | None = None) -> dict:
    """The ``dce.pt`` payload: U-Net hyperparameters, LE-curve shifts, weights, and the text
    removal the U-Net was trained after (the ``dce`` transform repeats it)."""
    u = unwrap(unet)
    return {"format": FORMAT,
            "unet": {"in_chans": u.down[0][0].in_channels, "out_chans": u.out.out_channels,
                     "base_channels": opts.base_channels, "depth": opts.depth},
            "curve": {"x_shift": opts.x_shift, "y_shift": opts.y_shift},
            "text_removal": {"detector": opts.text_removal, "model_dir": opts.text_model_dir},
            "state_dict": state if state is not None else clone_state(u)}


def run_epoch(unet: nn.Module, criterion, loader, opt, device) -> dict[str, float]:
    """One pass: the mean total ``loss`` and terms; training with ``opt``, else evaluation,
    which also reports ``midband_std_ratio``."""
    train = opt is not None
    unet.train(train)
    keys = ("loss", *TERMS) + (() if train else ("midband_std_ratio",))
    sums, n = dict.fromkeys(keys, 0.0), 0
    with torch.set_grad_enabled(train):
        for x in loader:
            x = to_device(x, device)
            out = criterion.parts(x, unet(x))
            if train:
                opt.zero_grad(set_to_none=True)
                out["total"].backward()
                opt.step()
            k = len(x)
            sums["loss"] += float(out["total"].detach()) * k
            for term in TERMS:
                sums[term] += float(out[term].detach()) * k
            if not train:
                sums["midband_std_ratio"] += float(midband_std_ratio(x, out["enhanced"])) * k
            n += k
    return {key: v / max(n, 1) for key, v in sums.items()}


def _datasets(cfg, opts: DCEOptions) -> tuple[dict[str, Normalised], Any]:
    """The unlabelled train and val images, normalised (and text-removed), and the run's data."""
    detector = None
    if opts.text_removal != "none":
        from medxfer.data.text_removal import get_detector

        detector = get_detector(opts.text_removal, opts.text_model_dir)
    data = load_datasets(cfg)
    return {k: Normalised(data[k], detector) for k in ("train", "val")}, data


def build_parts(cfg, opts: DCEOptions) -> Parts:
    """The shallow U-Net, the DCE loss as its epoch step, and ``dce.pt`` as its artifact."""
    from medxfer.losses import DCELoss
    from medxfer.models import ShallowUNet

    device = get_session().device
    data, loaded = _datasets(cfg, opts)
    chans = in_chans(cfg, loaded.train)
    if cfg.data.size % 2 ** opts.depth:
        raise MedxferInputError(f"data.size {cfg.data.size} is not divisible by 2**depth "
                                f"({2 ** opts.depth}); lower method_config.depth",
                                field="method_config.depth")
    unet = ShallowUNet(chans, 1, opts.base_channels, opts.depth, opts.init_alpha)
    criterion = DCELoss(opts.w_adapt, opts.w_lcl, opts.w_rcl, opts.strength, opts.x_shift,
                        opts.y_shift, opts.kernel_size, opts.sharpness, opts.theta_mode)
    return Parts(model=unet, name="unet", train_set=data["train"], val_set=data["val"],
                 drop_last=True, data_params=loaded.params,
                 run_epoch=lambda net, loader, opt: run_epoch(net, criterion, loader, opt,
                                                              device),
                 artifacts=lambda selected: {WEIGHTS_FILE: save_dce(selected, opts)})


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Train the DCE U-Net on ``data.flag``; see the module docstring."""
    train_loop(config, build_parts)


METHOD = register_method(Method(
    name="dce", train_loop_per_worker=train_loop_per_worker, config_schema=DCEOptions,
    defaults=DEFAULTS,
    description="DCE: shallow U-Net alpha maps + LE-curve (self-supervised); saves dce.pt"))
