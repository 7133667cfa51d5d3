"""The experiment YAML as typed models, plus the pure helpers that read and merge it.

One file describes one experiment (DESIGN.md, "Configuration")::

    method: finetune                 # a name from medxfer.methods.list_methods()
    method_config: {freeze_backbone: false}   # validated against the method's own schema
    data:  {root: data/synth, flag: synthpneumonia, source: imagenet, size: 28}
    model: {backbone: tiny_cnn, weights: null, arch: resnet}
    train: {epochs: 20, batch_size: 32, optimizer: sgd, lr: 0.01, scheduler: lambda,
            lambda_lr: 0.95, early_stopping_metric: val_auc, patience: 50}
    scaling: {num_workers: 1, use_gpu: false}
    tracking: {uri: sqlite:///mlruns.db, experiment: my-sweep}
    search: {...}                    # validated by medxfer.tune (kept as a plain dict here)

This module is the lowest layer: it knows neither the methods nor MLflow. The method-aware
parse (method names, the method's defaults merged *under* the user's values, ``method_config``
against the method's schema) is :func:`medxfer.methods.experiment.parse_experiment`; the
tracking URI is resolved above the tracking layer (:mod:`medxfer.train.experiment`). Every
error names the file and the YAML path: ``exp.yaml: train.lr: must be > 0``.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medxfer.errors import MedxferInputError


class _Strict(BaseModel):
    """Unknown keys are errors (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    """The dataset a method trains on (a MedMNIST-layout ``.npz`` under ``root``).

    ``source`` is the source dataset of the pre-trained weights; it only feeds the run-schema tag
    ``medxfer.source`` (DESIGN.md). ``transforms``/``eval_transforms`` are pipeline specs for
    :func:`medxfer.data.transforms.build_transform` (None: the method's default).
    """

    root: str
    flag: str
    source: str | None = None
    size: Literal[28, 64, 128, 224] = 28
    n_train_per_class: int | None = Field(100, ge=1)
    n_val_per_class: int | None = Field(25, ge=1)
    seed: int = 0
    as_rgb: bool = False
    transforms: list[Any] | None = None
    eval_transforms: list[Any] | None = None


class ModelConfig(_Strict):
    """Backbone by name (``tiny_cnn``, a timm name, ``torchvision:<name>``), local weights only.

    ``in_chans`` None: the data's channels (3 with ``data.as_rgb``). ``arch`` feeds the tag
    ``medxfer.arch`` (default: the backbone name).
    """

    backbone: str = "tiny_cnn"
    in_chans: int | None = Field(None, ge=1)
    weights: str | None = None
    arch: str | None = None


class TrainConfig(_Strict):
    """Optimisation, schedule, early stopping and model selection.

    * ``scheduler: lambda``: LambdaLR, lr at epoch e (0-based) = ``lr * lambda_lr ** e``
      (seed ``000_3dd3de5c534b555f.txt`` App. B: lambda in [0.6, 1]); ``cosine``: cosine
      annealing over ``epochs``; ``none``: constant.
    * Early stopping (seed ``004_43f54b618356cecf.txt`` sec. 6.4.2: validation AUC, 50 epochs):
      stop after ``patience`` consecutive epochs in which ``early_stopping_metric`` did not
      improve (``early_stopping_mode``); ``patience: null`` trains all ``epochs``.
    * Selection (sec. 6.4.2: lowest validation loss): the reported final step carries the metrics
      of the epoch with the best ``select_by`` (``mode``).
    * ``num_workers``: DataLoader worker processes per training worker.
    """

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.01, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    scheduler: Literal["lambda", "cosine", "none"] = "none"
    lambda_lr: float = Field(1.0, gt=0, le=1)
    early_stopping_metric: str = "val_auc"
    early_stopping_mode: Literal["min", "max"] = "max"
    patience: int | None = Field(None, ge=1)
    select_by: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    seed: int = 0
    num_workers: int = Field(0, ge=0)


class ScalingConfig(_Strict):
    """``num_workers > 1`` or ``use_gpu`` runs through Ray Train's ``TorchTrainer``.

    ``storage_path``: where ``TorchTrainer`` runs persist checkpoints (absolute; a cluster needs
    shared storage). Default: beside the Tune trial directories inside a sweep, else
    ``~/ray_results``-like ``<cwd>/ray_results``.
    """

    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    resources_per_worker: dict[str, float] | None = None
    storage_path: str | None = None

    @property
    def distributed(self) -> bool:
        """True when the run needs a ``TorchTrainer`` (more than one worker, or GPUs)."""
        return self.num_workers > 1 or self.use_gpu


class TrackingConfig(_Strict):
    """MLflow: ``uri`` (``--tracking-uri`` overrides it), the experiment's ``<name>`` (runs go to
    ``sweep/<name>``), the artifact root, and the ``medxfer.benchmark`` tag if the runs feed one."""

    uri: str | None = None
    experiment: str | None = None
    artifact_root: str | None = None
    benchmark: Literal["dataset", "architecture"] | None = None


class ExperimentConfig(_Strict):
    """One experiment: a method, its options, data, model, training, scaling, tracking, search.

    ``method`` and ``method_config`` are checked against the method registry by
    :func:`medxfer.methods.experiment.parse_experiment` (this layer does not know the methods).
    """

    method: str
    method_config: dict[str, Any] = Field(default_factory=dict)
    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    search: dict[str, Any] | None = None  # validated by medxfer.tune

    def with_absolute_paths(self, base: str | os.PathLike | None = None) -> "ExperimentConfig":
        """A copy with relative local paths (data root, weights, storage path, artifact root)
        made absolute against ``base`` (default: the working directory); Tune changes each
        trial's working directory, so paths must be absolute before Ray starts."""
        b = Path(base) if base is not None else Path.cwd()
        return self.model_copy(update={
            "data": self.data.model_copy(update={"root": absolute_path(self.data.root, b)}),
            "model": self.model.model_copy(update={
                "weights": absolute_path(self.model.weights, b)}),
            "scaling": self.scaling.model_copy(update={
                "storage_path": absolute_path(self.scaling.storage_path, b)}),
            "tracking": self.tracking.model_copy(update={
                "artifact_root": absolute_path(self.tracking.artifact_root, b)}),
        })


# ------------------------------------------------------------------------------- helpers

def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged onto a copy of ``base``; nested dicts merge, everything else replaces."""
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """``data["a"]["b"] = value`` for ``dotted = "a.b"`` (creating dicts on the way)."""
    keys = dotted.split(".")
    if not all(keys):
        raise MedxferInputError(f"bad key {dotted!r}: expected dotted names like train.lr",
                                field="--set")
    node = data
    for k in keys[:-1]:
        if not isinstance(node.get(k), dict):
            node[k] = {}
        node = node[k]
    node[keys[-1]] = value


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["train.lr=0.1", "data.flag=x"]`` -> ``{"train.lr": 0.1, ...}`` (values parsed as YAML)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise MedxferInputError(f"--set {item!r}: expected key=value, e.g. train.lr=0.01",
                                    field="--set")
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise MedxferInputError(f"--set {item!r}: value is not valid YAML ({exc})",
                                    field="--set") from None
    return out


_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "extra_forbidden": "unknown field",
    "missing": "required field missing",
    "literal_error": "must be one of {expected}",
}


def format_errors(exc: ValidationError, prefix: str = "") -> list[str]:
    """One ``<yaml.path>: <message>`` line per pydantic error (``prefix`` before each path)."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in ((prefix,) if prefix else ()) + tuple(err["loc"]))
        template = _MESSAGES.get(err["type"])
        try:
            msg = template.format(**(err.get("ctx") or {})) if template else err["msg"]
        except (KeyError, IndexError):
            msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        lines.append(f"{loc or '<root>'}: {msg}")
    return lines


def absolute_path(path: str | None, base: str | os.PathLike) -> str | None:
    """``path`` made absolute against ``base`` (``~`` expanded); None and URLs unchanged."""
    if path is None or "://" in path:
        return path
    p = Path(os.path.expanduser(path))
    return str((p if p.is_absolute() else Path(base) / p).resolve())




def read_yaml(path: str | os.PathLike) -> Any:
    """The YAML document in ``path`` (an empty file is ``{}``).

    Raises:
        MedxferInputError: unreadable file or invalid YAML (naming the file and line).
    """
    import yaml

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise MedxferInputError(f"cannot read config: {exc.strerror}", path=str(p)) from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise MedxferInputError(f"not valid YAML: {getattr(exc, 'problem', exc)}", path=str(p),
                                line=None if mark is None else mark.line + 1) from None
