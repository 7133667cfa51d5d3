"""What an analysis reads: a model (an MLflow run's selected weights or a local file) and images.

A model is named ``runs:/<run_id>`` (the run's selected-model artifact: ``model.pt``, else
``encoder.pt``, anywhere in its artifacts, e.g. ``checkpoint/model.pt`` of ``medxfer train``;
the backbone from the run's ``backbone`` param) or by ``--weights FILE --backbone NAME`` (any
name :func:`medxfer.models.create_backbone` accepts). The classifier head (``head.*`` keys, as
finetune saves them) and the input channels (first conv) are read from the weights, so a model
loads as it was trained. Images come from a MedMNIST-layout ``.npz`` folder (``medxfer data
synth`` or MedMNIST) and are fed as floats in [0, 1], grey repeated to 3 channels for RGB
models, as the methods feed them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from medxfer.errors import MedxferInputError

RUNS_PREFIX = "runs:/"
MODEL_FILES = ("model.pt", "encoder.pt")


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: where its weights are and how to build it.

    Attributes:
        label: How the user named it (``runs:/<id>`` or the weight file).
        backbone: ``create_backbone`` name.
        weights: Local weight file.
        run_id: MLflow run the weights came from, if any.
    """

    label: str
    backbone: str
    weights: Path
    run_id: str | None = None


def _run_weights(uri: str, run_id: str, option: str) -> tuple[Path, dict]:
    """Download the run's ``model.pt``/``encoder.pt`` into a temporary folder."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=uri)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise MedxferInputError(f"no MLflow run {run_id!r} in {uri}", field=option) from None
    found, stack = {}, [""]
    while stack:
        for f in client.list_artifacts(run_id, stack.pop() or None):
            if f.is_dir:
                stack.append(f.path)
            elif Path(f.path).name in MODEL_FILES:
                found.setdefault(Path(f.path).name, f.path)
    name = next((n for n in MODEL_FILES if n in found), None)
    if name is None:
        raise MedxferInputError(f"run {run_id} has no {' or '.join(MODEL_FILES)} artifact "
                                "(runs of `medxfer train` log the selected weights)",
                                field=option)
    dst = tempfile.mkdtemp(prefix="medxfer-analyze-")
    atexit.register(shutil.rmtree, dst, True)
    local = client.download_artifacts(run_id, found[name], dst)
    return Path(local), run.data.params


def resolve_model(model: str | None, weights: str | os.PathLike | None, backbone: str | None,
                  *, tracking_uri: str | None = None, option: str = "--model") -> ModelRef:
    """Resolve ``--model runs:/<id>`` or ``--weights FILE --backbone NAME``.

    Raises:
        MedxferInputError: Neither or both given, a malformed ``runs:/`` URI, an unknown run, a
            run without weights, a missing weight file, or no backbone name.
    """
    if (model is None) == (weights is None):
        raise MedxferInputError("name a model with --model runs:/<run_id> or with --weights FILE "
                                "--backbone NAME (one of the two)", field=option)
    if model is not None:
        if not model.startswith(RUNS_PREFIX) or not model[len(RUNS_PREFIX):].strip("/"):
            raise MedxferInputError(f"expected runs:/<run_id>, got {model!r}", field=option)
        from medxfer.tracking.uri import resolve_tracking_uri

        run_id = model[len(RUNS_PREFIX):].strip("/").split("/")[0]
        path, params = _run_weights(resolve_tracking_uri(tracking_uri), run_id, option)
        name = backbone or params.get("backbone")
        if not name:
            raise MedxferInputError(f"run {run_id} has no 'backbone' param; pass --backbone",
                                    field="--backbone")
        return ModelRef(model, name, path, run_id)
    path = Path(weights)
    if not path.is_file():
        raise MedxferInputError("weight file not found", path=str(path), field="--weights")
    if not backbone:
        raise MedxferInputError("--weights needs --backbone NAME (e.g. tiny_cnn, resnet18, "
                                "torchvision:resnet18)", field="--backbone")
    return ModelRef(str(path), backbone, path)


def _head_and_chans(weights: Path) -> tuple[int, int]:
    from medxfer.models.backbones import _read_state_dict

    state = _read_state_dict(weights)
    head = state.get("head.weight")
    convs = [v for v in state.values() if v.ndim == 4]
    return (int(head.shape[0]) if head is not None else 0,
            int(convs[0].shape[1]) if convs else 3)


def load_model(ref: ModelRef) -> nn.Module:
    """Build and load ``ref`` in eval mode; ``num_classes`` and ``in_chans`` from its weights.

    The module gets ``in_chans`` and ``num_classes`` attributes (0 classes: an encoder).
    """
    from medxfer.models import create_backbone

    n_classes, chans = _head_and_chans(ref.weights)
    try:
        model = create_backbone(ref.backbone, in_chans=chans, weights=ref.weights,
                                num_classes=n_classes)
    except ValueError as exc:
        if isinstance(exc, MedxferInputError):
            raise
        raise MedxferInputError(str(exc), field="--backbone") from None
    model.eval()
    model.in_chans, model.num_classes = chans, n_classes
    return model


@dataclass
class Images:
    """Images of one split as model input, with labels and extras.

    Attributes:
        x: ``(n, C, H, W)`` float32 in [0, 1].
        labels: ``(n,)`` class indices (or ``(n, L)`` multi-label).
        extras: Per-image arrays of the split (``masks``, ``sites``, ``sex``, ...).
        raw: ``(n, H, W[, 3])`` uint8, as stored.
        label: ``<flag>/<split>``.
    """

    x: np.ndarray
    labels: np.ndarray
    extras: dict
    raw: np.ndarray
    label: str


def load_images(root: str | os.PathLike, flag: str, split: str = "test", *, size: int = 28,
                limit: int | None = None, seed: int = 0) -> Images:
    """Read a split (``limit`` random images, sorted, if given).

    Raises:
        MedxferInputError: Missing folder/file/keys (from the loader), or ``limit < 1``.
    """
    from medxfer.data.medmnist import load_split

    if not Path(root).is_dir():
        raise MedxferInputError("data folder not found", path=str(root), field="--data")
    if limit is not None and limit < 1:
        raise MedxferInputError(f"--n-images must be >= 1, got {limit}", field="--n-images")
    s = load_split(root, flag, split, size, mmap=False)
    idx = np.arange(len(s.images))
    if limit is not None and limit < len(idx):
        idx = np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))
    raw = np.asarray(s.images)[idx]
    x = raw.astype(np.float32) / 255.0
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    labels = np.asarray(s.labels)[idx]
    labels = labels[:, 0] if labels.shape[1] == 1 else labels
    extras = {k: np.asarray(v)[idx] for k, v in s.extras.items()}
    extras["index"] = idx
    return Images(x, labels, extras, raw, f"{flag}/{split}")


def model_input(x: np.ndarray, model: nn.Module) -> torch.Tensor:
    """``(n, C, H, W)`` images -> a tensor with the model's input channels."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    want = getattr(model, "in_chans", t.shape[1])
    if t.shape[1] == want:
        return t
    if t.shape[1] == 1:
        return t.expand(-1, want, -1, -1).contiguous()
    raise MedxferInputError(f"the model takes {want} input channel(s) but the images have "
                            f"{t.shape[1]}", field="--data")
