"""segment: segmentation fine-tuning (U-Net / DeepLabV3+) from a pretrained encoder, Dice + CE.

Seed ``003_4aa9fa56a835f729.txt`` sec. III-B and IV, Table I: after pretraining "the MLP is thrown
away and the encoder is used to initialize the encoder of the segmentation network"; U-Net and
DeepLabV3+ are fine-tuned on M labelled lung masks (M in {10, 20, 50, ...}) as "a three-class
segmentation problem" (background, left lung, right lung) and scored by the Dice coefficient.
Sec. IV: Adam, lr 5e-5, cosine schedule, batch 10, 200 epochs; rotation, translation and scale
augmentation (these are the defaults here, epochs aside).

* Network: :func:`medxfer.models.create_segmentation_model` (segmentation-models-pytorch,
  ``arch: unet | deeplabv3plus``) on ``model.backbone`` (e.g. ``resnet18``, ``resnet50``,
  ``xrv_densenet121``, a convolutional timm name); its encoder is filled from ``model.weights``:
  the ``encoder.pt`` of any pretraining method (cltci, simclr, moco, rotation, pirl, swav, ...),
  the ``model.pt`` of ``finetune``, a local ImageNet weight file, or nothing (random init).
* Masks: ``masks: npz``: the ``<split>_masks`` of ``data.flag``'s ``.npz`` (what
  ``medxfer data synth`` writes; ``classes: left_right`` splits two-lung masks into the paper's
  three classes, ``binary`` keeps 0/1); ``masks: manifest``: CSVs of images and PNG label maps
  (``manifest: {train: a.csv, val: b.csv, test: c.csv}``, paths relative to ``data.root``; a
  ``mask`` column, ``mask_column`` to rename it; ``n_classes`` background included).
* Pretraining stage (``pretrain: {method, method_config, epochs, train}``): the pretraining
  method runs first on the run's training images (labels unused) and its ``encoder.pt``
  (``model.pt`` for ``finetune``) initialises the network, in one resumable trial
  (:class:`medxfer.methods.pipeline.Pipeline`, reports ``stage`` 0 then 1; the checkpoint
  carries ``pretrain/encoder.pt``), as seed 003 Table I's rows (Rotation, PIRL, SimCLR, MoCo,
  CL-TCI) pretrain before fine-tuning.
* Rows (``.npz`` masks, :func:`cell_rows`): a study cell's fold (``protocol.cv``, patient
  grouped), its M labelled images (``protocol.n_labelled``, drawn from the fold's training rows
  as for every method, :func:`medxfer.data.protocol.select_cell`), validation and test rows and
  the other sources' test parts (``protocol.test_sets``, metrics ``<set>_test_*``); outside a
  study the file's own splits, and ``n_labelled`` draws M training images (seeded by
  ``data.seed``); the rest of the training split is not used. Runs report ``n_labelled`` and
  ``selection_crc``.
* Augmentation: one random rotation/translation/scale per training pair, applied to image and
  mask alike (:class:`medxfer.data.segmentation.JointAffine`, no flip: it would swap the
  lungs); ``data.transforms`` act on the image only (intensity), ``data.eval_transforms`` on
  val/test images.
* Loss: multi-class soft Dice (foreground classes) + cross-entropy
  (:class:`medxfer.losses.DiceCELoss`; the paper does not name its loss).
* Metrics (``run_epoch`` without optimizer, :mod:`medxfer.evaluation.segmentation`): ``loss``,
  ``mean_dice`` (per image the mean over foreground classes present, then over images) and
  ``dice_<c>`` per class c (0 = background), prefixed ``val_``/``test_`` by the loop; the final
  step holds the selected epoch's and ``test_*`` (the test split). Selection: lowest
  ``val_loss`` by default; ``train.select_by: val_mean_dice`` with ``mode: max`` selects by
  Dice.

The final checkpoint holds ``model.pt``, the selected network's state dict.

Departures: the paper pretrains once on the unlabelled corpus; in a study the ``pretrain`` stage
runs per cell on the fold's training images (no test image is seen). It trains at 256 px.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from medxfer.errors import MedxferInputError
from medxfer.methods.checkpoint import clone_state
from medxfer.methods.loop import Parts, train_loop
from medxfer.methods.registry import Method, MethodOptions, register_method
from medxfer.methods.session import get_session, to_device

DEFAULTS: dict[str, Any] = {"train": {"optimizer": "adam", "lr": 5e-5, "scheduler": "cosine",
                                      "batch_size": 10,
                                      "early_stopping_metric": "val_loss",
                                      "early_stopping_mode": "min",
                                      "select_by": "val_loss", "mode": "min"}}


#: Methods that cannot be a pretraining stage: staged themselves, or no encoder to hand on.
NOT_PRETRAINING = ("segment", "scc", "dce_mae", "dce")


class PretrainOptions(MethodOptions):
    """``method_config.pretrain`` of segment: a pretraining stage on the run's training images.

    Attributes:
        method: a registered method whose final checkpoint holds ``encoder.pt`` (cltci, simclr,
            moco, rotation, pirl, swav, mae, supcon) or ``model.pt`` (finetune).
        method_config: its options.
        epochs: its length (``train.epochs`` stays the segmentation's).
        train: ``train.*`` of the stage (default: the method's defaults, selection by its
            ``val_loss``; the run's ``seed`` and ``num_workers``).
    """

    method: str
    method_config: dict[str, Any] = Field(default_factory=dict)
    epochs: int = Field(5, ge=1)
    train: dict[str, Any] = Field(default_factory=dict)

    @field_validator("method")
    @classmethod
    def _pretraining(cls, v: str) -> str:
        from medxfer.methods.registry import list_methods

        valid = [m for m in list_methods() if m not in NOT_PRETRAINING]
        if v not in valid:
            raise ValueError(f"{v!r} is not a pretraining method; valid: {', '.join(valid)}")
        return v

    @model_validator(mode="after")
    def _options(self) -> "PretrainOptions":
        """The stage's ``method_config`` is checked now, not when the stage starts."""
        from pydantic import ValidationError

        from medxfer.methods.registry import get_method

        try:
            get_method(self.method).config_schema.model_validate(self.method_config)
        except ValidationError as exc:
            bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"method_config of {self.method}: {bad}") from None
        return self


class SegmentOptions(MethodOptions):
    """``method_config`` of segment.

    Attributes:
        arch: ``unet`` or ``deeplabv3plus``.
        masks: ``npz`` (``<split>_masks`` of ``data.flag``) or ``manifest`` (PNG label maps).
        classes: for ``npz``: ``left_right`` (background, left lung, right lung) or ``binary``.
        manifest: for ``manifest``: split -> CSV (``train``, ``val``; ``test`` optional),
            relative to ``data.root``.
        mask_column: the manifest's mask column.
        n_classes: for ``manifest``: classes, background included.
        n_labelled: M labelled training images (None: the whole training split).
        dice_weight, ce_weight: loss term weights.
        degrees, translate, scale: the joint affine augmentation (0, 0, [1, 1]: none).
        pretrain: a pretraining stage whose encoder initialises the network
            (:class:`PretrainOptions`); None: ``model.weights`` (or random).
    """

    arch: Literal["unet", "deeplabv3plus"] = "unet"
    masks: Literal["npz", "manifest"] = "npz"
    classes: Literal["binary", "left_right"] = "left_right"
    manifest: dict[Literal["train", "val", "test"], str] | None = None
    mask_column: str = "mask"
    n_classes: int = Field(3, ge=2)
    n_labelled: int | None = Field(None, ge=1)
    dice_weight: float = Field(1.0, ge=0)
    ce_weight: float = Field(1.0, ge=0)
    degrees: float = Field(10.0, ge=0)
    translate: float = Field(0.1, ge=0, lt=1)
    scale: tuple[float, float] = (0.9, 1.1)
    pretrain: PretrainOptions | None = None


def labelled_indices(n: int, n_labelled: int | None, seed: int) -> np.ndarray | None:
    """M of ``n`` training rows, drawn by ``seed`` (None: all).

    Raises:
        MedxferInputError: M larger than the training split.
    """
    if n_labelled is None:
        return None
    if n_labelled > n:
        raise MedxferInputError(f"n_labelled is {n_labelled} but the training split has {n} "
                                "images", field="method_config.n_labelled")
    return np.sort(np.random.default_rng(seed).permutation(n)[:n_labelled])


def cell_rows(cfg, opts: SegmentOptions):
    """The run's rows of its ``.npz`` source: ``(source, selection, labelled rows, the test
    sets' sources)``.

    A study cell's (``cfg.protocol``, ``cfg.cell``: its fold's training, validation and test
    rows and the cell's M labelled images, :func:`medxfer.data.protocol.select_cell`, as for
    every method), else the file's own splits with ``n_labelled`` of its training split.

    Raises:
        MedxferInputError: ``n_labelled`` given both here and by the study's cell; a shortcut
            study (its confounders mark classification images).
    """
    from medxfer.data.protocol import select_cell
    from medxfer.data.sources import load_source

    d, protocol, cell = cfg.data, cfg.protocol, cfg.cell
    if protocol is not None and protocol.shortcut is not None:
        raise MedxferInputError("segment does not run shortcut studies", field="protocol.shortcut")
    from_cell = cell is not None and (cell.n_labelled is not None or cell.fraction is not None)
    if from_cell and opts.n_labelled is not None:
        raise MedxferInputError("the study's cell sets the labelled images "
                                "(protocol.n_labelled / label_fractions); leave it out here",
                                field="method_config.n_labelled")
    source = load_source(d)
    others = {}
    if protocol is not None and (cell is None or cell.phase == "train"):
        others = {n: load_source(t.resolve(d)) for n, t in protocol.test_sets.items()}
    sel = select_cell(source, d, protocol, cell, others)
    labelled = sel.labelled
    if not from_cell and opts.n_labelled is not None:
        if len(sel.train) == 0:
            raise MedxferInputError("the training split is empty", path=source.where)
        labelled = sel.train[labelled_indices(len(sel.train), opts.n_labelled, d.seed)]
    return source, sel, labelled, others


def _npz_sets(cfg, opts: SegmentOptions, joint, train_t, eval_t) -> dict:
    from medxfer.data import build_transform
    from medxfer.data.segmentation import RowsSegmentation

    d = cfg.data
    if d.manifest is not None:
        raise MedxferInputError("masks: npz needs a .npz source (data.root and data.flag); "
                                "for a manifest use masks: manifest", field="method_config.masks")
    source, sel, labelled, others = cell_rows(cfg, opts)

    def rows(data, src, r, **kw):
        return RowsSegmentation(data.root, data.flag, data.size, src.splits, r,
                                classes=opts.classes, as_rgb=d.as_rgb, **kw)

    out = {"train": rows(d, source, labelled, joint_transform=joint, transform=train_t),
           "val": rows(d, source, sel.val, transform=eval_t),
           "params": {"n_labelled": float(len(labelled)), "selection_crc": float(sel.crc())}}
    if sel.test is not None:
        out["test"] = rows(d, source, sel.test, transform=eval_t)
    for name, r in sel.test_sets.items():  # a study's other sources, zero-shot
        test_set = cfg.protocol.test_sets[name]
        if test_set.manifest is not None:
            raise MedxferInputError("segment scores other .npz sources only (their masks)",
                                    field=f"protocol.test_sets.{name}")
        own = test_set.eval_transforms
        out[f"{name}_test"] = rows(test_set.resolve(d), others[name], r,
                                   transform=build_transform(own) if own is not None
                                   else eval_t)
    return out


def _manifest_sets(cfg, opts: SegmentOptions, joint, train_t, eval_t) -> dict:
    from medxfer.data.segmentation import ManifestSegmentation

    d, files = cfg.data, opts.manifest or {}
    if cfg.protocol is not None:
        raise MedxferInputError("a study's folds and labelled images select rows of data.root's "
                                ".npz; masks: manifest runs on its own CSV splits only",
                                field="method_config.masks")
    for split in ("train", "val"):
        if split not in files:
            raise MedxferInputError(f"masks: manifest needs a {split!r} CSV",
                                    field=f"method_config.manifest.{split}")
    paths = {s: Path(d.root) / f for s, f in files.items()}
    channels = 3 if d.as_rgb else 1
    common = dict(n_classes=opts.n_classes, size=d.size, mask_column=opts.mask_column,
                  channels=channels)
    train = ManifestSegmentation(paths["train"], **common)
    idx = labelled_indices(len(train), opts.n_labelled, d.seed)
    out = {"train": ManifestSegmentation(paths["train"], indices=idx, joint_transform=joint,
                                         transform=train_t, **common)}
    for split in ("val", "test"):
        if split in paths:
            out[split] = ManifestSegmentation(paths[split], transform=eval_t, **common)
    return out


def load_segmentation_sets(cfg, opts: SegmentOptions) -> dict:
    """``{"train", "val"[, "test", "<set>_test"]}`` of (image, mask) items (module docstring),
    and, for ``.npz`` masks, ``"params"``: the run's ``n_labelled`` and ``selection_crc``."""
    from medxfer.data import build_transform
    from medxfer.data.segmentation import JointAffine

    d = cfg.data
    joint = JointAffine(opts.degrees, opts.translate, opts.scale)
    train_t = build_transform(d.transforms) if d.transforms else None
    eval_t = build_transform(d.eval_transforms) if d.eval_transforms else None
    build = _npz_sets if opts.masks == "npz" else _manifest_sets
    return build(cfg, opts, joint, train_t, eval_t)


def dice_metrics(rows: np.ndarray) -> dict[str, float]:
    """``mean_dice`` (foreground) and ``dice_<c>`` from per-image Dice rows (n, K) with NaN
    where a class is absent from both maps."""
    fg = rows[:, 1:]
    present = ~np.isnan(fg)
    per_image = [row[ok].mean() for row, ok in zip(fg, present, strict=True) if ok.any()]
    out = {"mean_dice": float(np.mean(per_image)) if per_image else float("nan")}
    for c in range(rows.shape[1]):
        col = rows[:, c][~np.isnan(rows[:, c])]
        out[f"dice_{c}"] = float(col.mean()) if col.size else float("nan")
    return out


def run_epoch(net: nn.Module, criterion, loader, opt, n_classes: int,
              device) -> dict[str, float]:
    """One pass: mean ``loss``; training with ``opt``, else evaluation with the Dice metrics."""
    from medxfer.evaluation.segmentation import dice_per_class

    train = opt is not None
    net.train(train)
    total, n, rows = torch.zeros((), device=device), 0, []
    with torch.set_grad_enabled(train):
        for x, mask in loader:
            x, mask = to_device(x, device), to_device(mask, device)
            logits = net(x)
            loss = criterion(logits, mask)
            if train:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            else:
                rows.append(dice_per_class(logits.argmax(1), mask, n_classes))
            total += loss.detach() * len(x)
            n += len(x)
    out = {"loss": float(total) / max(n, 1)}
    if rows:
        out.update(dice_metrics(np.concatenate(rows)))
    return out


def build_parts(cfg, opts: SegmentOptions) -> Parts:
    """The segmentation net, its Dice + CE epoch step, and the test split as ``test_*``."""
    from medxfer.losses import DiceCELoss
    from medxfer.methods.common import in_chans
    from medxfer.models import create_segmentation_model

    device = get_session().device
    sets = load_segmentation_sets(cfg, opts)
    k = sets["train"].n_classes
    net = create_segmentation_model(opts.arch, cfg.model.backbone,
                                    in_chans=in_chans(cfg, sets["train"]), n_classes=k,
                                    weights=cfg.model.weights)
    criterion = DiceCELoss(opts.dice_weight, opts.ce_weight)
    return Parts(model=net, train_set=sets["train"], val_set=sets["val"],
                 test_sets={k: v for k, v in sets.items() if k not in ("train", "val", "params")},
                 data_params=sets.get("params", {}), drop_last=True,
                 run_epoch=lambda model, loader, opt: run_epoch(model, criterion, loader, opt,
                                                                k, device),
                 artifacts=lambda selected: {"model.pt": clone_state(selected)})


def pipeline(method: str):
    """The stages of a segment run with ``pretrain``: the pretraining method, then segment."""
    from medxfer.methods.pipeline import Pipeline

    artifact = "model.pt" if method == "finetune" else "encoder.pt"
    return Pipeline(stages=(method, "segment"), artifacts={method: artifact},
                    stage_file="segment_stage.json", carry_dir="pretrain")


def stage_config(cfg, opts: SegmentOptions, stage: str, carry: Path) -> dict:
    """The experiment of one stage: the pretraining method on the run's data, model, cell
    and protocol (its own defaults, augmentations and ``pretrain.train``), or segment from the
    pretrained encoder (``model.weights``)."""
    from medxfer.methods.experiment import parse_experiment
    from medxfer.methods.scc import PRETRAIN_SELECTION

    raw = cfg.model_dump()
    pre = opts.pretrain
    if stage == "segment":
        raw["method_config"] = {**raw["method_config"], "pretrain": None}
        raw["model"]["weights"] = str(carry / pipeline(pre.method).artifacts[pre.method])
        return parse_experiment(raw, source="segment stage segment").model_dump()
    data = {k: v for k, v in raw["data"].items() if k not in ("transforms", "eval_transforms")}
    train = {**PRETRAIN_SELECTION, "seed": cfg.train.seed, "num_workers": cfg.train.num_workers,
             "epochs": pre.epochs, **pre.train}
    stage_raw = {"method": pre.method, "method_config": pre.method_config, "data": data,
                 "train": train, **{k: raw[k] for k in ("model", "scaling", "tracking",
                                                        "protocol", "cell")}}
    return parse_experiment(stage_raw, source=f"segment stage {pre.method}").model_dump()


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Segmentation fine-tuning on ``data.flag``'s masks, after the ``pretrain`` stage if
    any; see the module docstring."""
    from medxfer.methods.experiment import method_options, parse_experiment
    from medxfer.methods.pipeline import run_stages

    cfg = parse_experiment(config)
    opts: SegmentOptions = method_options(cfg)
    if opts.pretrain is None:
        train_loop(config, build_parts)
        return
    run_stages(pipeline(opts.pretrain.method),
               lambda stage, carry: stage_config(cfg, opts, stage, carry))


METHOD = register_method(Method(
    name="segment", train_loop_per_worker=train_loop_per_worker, config_schema=SegmentOptions,
    defaults=DEFAULTS,
    description="segmentation fine-tuning: U-Net / DeepLabV3+ from a pretrained encoder, Dice"))
