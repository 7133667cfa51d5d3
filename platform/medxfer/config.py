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
import re
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, \
    model_validator

from medxfer.errors import MedxferInputError


class _Strict(BaseModel):
    """Unknown keys are errors (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


#: Seed ``004_43f54b618356cecf.txt`` sec. 6.4.1: train / val images per class of a target.
THESIS_PER_CLASS = (100, 25)
#: Keys of a training loop's reports that describe the data it used: logged as run params
#: (``n_train`` = training images), not as metrics.
REPORT_PARAMS = ("n_train", "n_val", "n_labelled", "selection_crc")


class _SourceFields(_Strict):
    """Where images come from: ``root`` + ``flag`` (a MedMNIST-layout ``.npz``) or ``manifest``
    and its columns; shared by :class:`DataConfig` and :class:`TestSetConfig`."""

    root: str | None = None
    flag: str | None = None
    manifest: str | None = None
    image_root: str | None = None
    labels: list[str] | str | None = None
    uncertain: Literal["error", "zero", "one"] = "error"
    patient_column: str | None = None
    site_column: str | None = None
    split_column: str | None = None


class DataConfig(_SourceFields):
    """The data a method trains on: a MedMNIST-layout ``.npz`` or a chest X-ray manifest.

    * ``root`` + ``flag``: ``<root>/<flag>.npz`` (or ``<flag>_<size>.npz``) with its own
      train/val/test splits (:mod:`medxfer.data.medmnist`).
    * ``manifest``: a CSV (:func:`medxfer.data.cxr.read_manifest`): image paths relative to
      ``image_root`` (default: the CSV's folder), labels (``labels``: names in index order,
      ``cxr14``/``chexpert``, or None for the CSV's own), CheXpert's uncertain ``-1`` by
      ``uncertain``; ``patient_column``/``site_column``/``split_column`` name the patient,
      site and split (``train``/``val``/``test``) columns (None: ``patient_id``, ``site``,
      ``split`` when present; a name given must exist). Without a split column the rows are
      split by patient: ``test_fraction`` to test, then ``val_fraction`` of the rest to val.
      ``flag`` names the source (default: the CSV's stem).

    Subsampling is explicit: by default every image of the training split is used.
    ``subsample: thesis`` keeps 100 train and 25 val images per class (seed
    ``004_43f54b618356cecf.txt`` sec. 6.4.1); ``n_train_per_class``/``n_val_per_class`` set
    other counts. ``source`` is the source dataset of the pre-trained weights (the tag
    ``medxfer.source``). ``transforms``/``eval_transforms`` are pipeline specs for
    :func:`medxfer.data.transforms.build_transform` (None: the method's default).
    """

    val_fraction: float = Field(0.1, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    source: str | None = None
    size: Literal[28, 64, 128, 224] = 28
    subsample: Literal["thesis"] | None = None
    n_train_per_class: int | None = Field(None, ge=1)
    n_val_per_class: int | None = Field(None, ge=1)
    seed: int = 0
    as_rgb: bool = False
    transforms: list[Any] | None = None
    eval_transforms: list[Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _name_manifests(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("manifest") and not data.get("flag"):
            data = {**data, "flag": Path(str(data["manifest"])).stem}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> "DataConfig":
        if self.manifest is not None and self.root is not None:
            raise ValueError("give either root + flag (a .npz) or manifest (a CSV), not both; "
                             "image paths of a manifest are relative to image_root")
        if self.manifest is None and (self.root is None or self.flag is None):
            raise ValueError("needs root + flag (a MedMNIST-layout .npz) or manifest (a CSV)")
        if self.subsample == "thesis" and (self.n_train_per_class or self.n_val_per_class):
            raise ValueError("subsample: thesis means 100 train / 25 val images per class; "
                             "drop n_train_per_class/n_val_per_class or the subsample")
        return self

    @property
    def per_class(self) -> tuple[int | None, int | None]:
        """Train and val images kept per class (None: the whole split)."""
        if self.subsample == "thesis":
            return THESIS_PER_CLASS
        return self.n_train_per_class, self.n_val_per_class

    def with_absolute_paths(self, base: Path) -> "DataConfig":
        """A copy with ``root``, ``manifest`` and ``image_root`` absolute against ``base``."""
        return self.model_copy(update={k: absolute_path(getattr(self, k), base)
                                       for k in ("root", "manifest", "image_root")})


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


_SET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")

#: A study's table metrics (``test_<metric>``, higher is better): what the classification
#: methods report (:func:`medxfer.evaluation.metrics.classification_metrics`) and what
#: ``segment`` reports (``mean_dice``, and ``dice_<c>`` for class c).
CLASSIFICATION_METRICS = ("auc", "acc", "f1_micro", "f1_macro", "map")
SEGMENTATION_METRICS = ("mean_dice",)
_DICE_CLASS = re.compile(r"^dice_[0-9]+$")


def is_segmentation_metric(name: str) -> bool:
    """``mean_dice`` or a per-class ``dice_<c>``."""
    return name in SEGMENTATION_METRICS or bool(_DICE_CLASS.match(name))
_RATIO = re.compile(r"^\s*(\d+(\.\d*)?)\s*:\s*(\d+(\.\d*)?)\s*$")
#: Names a test set cannot take: the loop's own split names.
RESERVED_SET_NAMES = ("train", "val", "test", "labelled")


def _fractions(v: list[float] | None) -> list[float] | None:
    if v is None:
        return v
    if not v:
        raise ValueError("expected a non-empty list of fractions in (0, 1]")
    bad = [f for f in v if not 0 < f <= 1]
    if bad:
        raise ValueError(f"fractions must be in (0, 1], got {bad}")
    if len(set(v)) != len(v):
        raise ValueError(f"fractions must be distinct, got {v}")
    return sorted(v)


class TestSetConfig(_SourceFields):
    """A named test set from another source (seed ``000_3dd3de5c534b555f.txt`` sec. 4.1: OOD
    datasets split 9:1, or 8:2 for the breast sets, into a few-shot training part and a test part).

    Source fields as in :class:`DataConfig` (``root`` + ``flag``, or ``manifest`` + its columns);
    ``size``, ``as_rgb``, ``transforms`` and ``eval_transforms`` left out (None) are those of the
    experiment's ``data`` at the time of use. ``split``: train:test ratio of its rows, e.g.
    ``"9:1"``.
    """

    __test__ = False  # not a pytest class
    size: Literal[28, 64, 128, 224] | None = None
    as_rgb: bool | None = None
    transforms: list[Any] | None = None
    eval_transforms: list[Any] | None = None
    split: str = "9:1"

    @field_validator("split")
    @classmethod
    def _ratio(cls, v: str) -> str:
        m = _RATIO.match(v)
        if m is None or float(m.group(1)) <= 0 or float(m.group(3)) <= 0:
            raise ValueError(f"expected a train:test ratio such as '9:1' or '8:2', got {v!r}")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> "TestSetConfig":
        if (self.manifest is None) == (self.root is None or self.flag is None):
            raise ValueError("needs either root + flag (a MedMNIST-layout .npz) or manifest "
                             "(a CSV)")
        return self

    @property
    def test_share(self) -> float:
        """The test part's share of the rows (``"9:1"`` -> 0.1)."""
        m = _RATIO.match(self.split)
        a, b = float(m.group(1)), float(m.group(3))
        return b / (a + b)

    def resolve(self, data: DataConfig) -> DataConfig:
        """This set as a :class:`DataConfig`, inheriting what it leaves out from ``data``."""
        own = self.model_dump(exclude={"split"}, exclude_none=True)
        inherit = {k: getattr(data, k) for k in ("size", "as_rgb", "transforms",
                                                 "eval_transforms", "seed")}
        return DataConfig.model_validate({**inherit, "source": data.flag, **own})


class CVConfig(_Strict):
    """k-fold cross-validation over every image of the source (its own splits pooled).

    ``grouped``: no patient in two folds (None: whenever the source has patient ids).
    """

    folds: int = Field(5, ge=2)
    grouped: bool | None = None


class FewShotConfig(_Strict):
    """Few-shot fine-tuning on nested fractions of each OOD set's training part (seed
    ``000_3dd3de5c534b555f.txt`` sec. 4.1, step 3: 10 % is inside 25 %), starting from the model
    each training cell saved; tested on that set's test part.

    ``test_sets``: names of ``protocol.test_sets`` (None: all); ``val_fraction``: share of the
    training part held out for model selection (never in a fraction); ``method_config`` and
    ``train``: ``finetune`` options and ``train.*`` overrides of the fine-tuning.
    """

    fractions: list[float]
    test_sets: list[str] | None = None
    val_fraction: float = Field(0.1, gt=0, lt=1)
    method_config: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)

    @field_validator("fractions")
    @classmethod
    def _check_fractions(cls, v: list[float]) -> list[float]:
        return _fractions(v)


class ShortcutConfig(_Strict):
    """A shortcut study's confounder (thesis, seed ``004_43f54b618356cecf.txt`` sec. 4.2.2).

    The confounder (a name of :func:`medxfer.data.confounders.list_confounders`, checked when
    the study is planned) goes into ``round(p_art * n)`` training images of ``target_class``,
    one cell per value of ``p_art`` (thesis: 0, 0.1, 0.2, 0.5, 0.8, 1); validation and the
    i.i.d. test part are confounded the same way, the o.o.d. test part reversed (test set
    ``ood``, metrics ``ood_test_*``). ``params``: the confounder transform's options (e.g.
    ``{d0: 6}``, ``{n0: 1000}``); ``attribute``/``value``: for ``confounder: attribute``, the
    per-image attribute key of the data (e.g. ``sex``) and the value that plays the artifact
    (a sampling: each set keeps as many ``target_class`` images as every ``p_art`` allows).
    """

    confounder: str
    target_class: int = Field(1, ge=0)
    p_art: list[float]
    params: dict[str, Any] = Field(default_factory=dict)
    attribute: str | None = None
    value: int = 1

    @field_validator("p_art")
    @classmethod
    def _shares(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 <= p <= 1 for p in v) or len(set(v)) != len(v):
            raise ValueError(f"expected distinct shares in [0, 1], got {v}")
        return sorted(v)

    @model_validator(mode="after")
    def _attribute(self) -> "ShortcutConfig":
        if (self.confounder == "attribute") != (self.attribute is not None):
            raise ValueError("confounder: attribute needs attribute: <key> (e.g. sex), and only "
                             "it takes one")
        if self.confounder == "attribute" and self.params:
            raise ValueError("confounder: attribute is a sampling; it takes no params")
        return self


class ProtocolConfig(_Strict):
    """A study's evaluation protocol: which cells (fold x labels x test set x seed) to run.

    * ``cv`` (k-fold, stratified, multi-label aware, patient-grouped) or
      ``leave_one_site_out`` (one fold per site): the training cells' data; neither: the
      source's own splits. A fold's training part loses ``val_fraction`` to validation.
    * ``label_fractions`` (seed ``001_a9715376ac5cbd5d.txt``, Table II: nested 100/50/25/10 %)
      or ``n_labelled`` (seed ``003_4aa9fa56a835f729.txt``: M labelled images): the labelled
      part of each training split.
    * ``test_sets``: other sources every trained model is evaluated on (zero-shot, their test
      part); ``few_shot``: fine-tuning on fractions of their training part.
    * ``shortcut``: a confounder in one class with shares ``p_art`` (:class:`ShortcutConfig`),
      one training cell per share, each tested i.i.d. (``test``) and o.o.d. (``ood``).
    * ``seeds``: training seeds (``train.seed``); ``seed`` fixes every split of the study.
    * ``metric``: the table's metric (``test_<metric>``, higher is better): one of
      :data:`CLASSIFICATION_METRICS` or :data:`SEGMENTATION_METRICS` (or ``dice_<c>``); None:
      the study picks ``mean_dice`` when its rows run ``segment``, else ``auc``
      (:func:`medxfer.tune.study_config.study_from_dict`). ``max_concurrent``/``max_failures``:
      Ray Tune's; ``storage_path``: where the study's Tune experiments and models live.
    """

    cv: CVConfig | None = None
    leave_one_site_out: bool = False
    val_fraction: float = Field(0.1, gt=0, lt=1)
    label_fractions: list[float] | None = None
    n_labelled: list[int] | None = None
    test_sets: dict[str, TestSetConfig] = Field(default_factory=dict)
    few_shot: FewShotConfig | None = None
    shortcut: ShortcutConfig | None = None
    seeds: list[int] = Field(default_factory=lambda: [0])
    seed: int = 0
    metric: str | None = None
    max_concurrent: int | None = Field(None, ge=1)
    max_failures: int = Field(1, ge=0)
    storage_path: str = "ray_results"

    @field_validator("label_fractions")
    @classmethod
    def _check_fractions(cls, v: list[float] | None) -> list[float] | None:
        return _fractions(v)

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str | None) -> str | None:
        if v is None or v in CLASSIFICATION_METRICS or is_segmentation_metric(v):
            return v
        raise ValueError(f"unknown metric {v!r}; expected one of "
                         f"{list(CLASSIFICATION_METRICS + SEGMENTATION_METRICS)} or dice_<c> "
                         "(the table shows test_<metric>)")

    @field_validator("leave_one_site_out")
    @classmethod
    def _one_split(cls, v: bool, info) -> bool:
        if v and info.data.get("cv") is not None:
            raise ValueError("choose cv or leave_one_site_out, not both")
        return v

    @field_validator("n_labelled")
    @classmethod
    def _counts(cls, v: list[int] | None, info) -> list[int] | None:
        if v is None:
            return v
        if not v or min(v) < 1 or len(set(v)) != len(v):
            raise ValueError(f"expected distinct counts >= 1, got {v}")
        if info.data.get("label_fractions") is not None:
            raise ValueError("choose label_fractions or n_labelled, not both")
        return sorted(v)

    @field_validator("test_sets")
    @classmethod
    def _names(cls, v: dict[str, TestSetConfig]) -> dict[str, TestSetConfig]:
        bad = [n for n in v if not _SET_NAME.match(n) or n in RESERVED_SET_NAMES]
        if bad:
            raise ValueError(f"test set names {bad} must start with a letter, hold only "
                             f"letters, digits, '_' and '-', and not be one of "
                             f"{list(RESERVED_SET_NAMES)}")
        return v

    @field_validator("few_shot")
    @classmethod
    def _few_shot(cls, v: FewShotConfig | None, info) -> FewShotConfig | None:
        if v is None:
            return v
        known = list(info.data.get("test_sets") or {})
        unknown = [n for n in (v.test_sets or []) if n not in known]
        if unknown or not known:
            raise ValueError(f"unknown test set(s) {unknown or v.test_sets}; protocol.test_sets "
                             f"defines {known or 'none'}")
        if info.data.get("label_fractions") or info.data.get("n_labelled"):
            raise ValueError("few_shot starts from the training cells' models: combine it "
                             "with cv or the source's splits, not with label_fractions or "
                             "n_labelled")
        return v

    @field_validator("shortcut")
    @classmethod
    def _shortcut(cls, v: ShortcutConfig | None, info) -> ShortcutConfig | None:
        if v is not None and "ood" in (info.data.get("test_sets") or {}):
            raise ValueError("a shortcut study names its o.o.d. test set 'ood'; rename "
                             "protocol.test_sets.ood")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v or len(set(v)) != len(v):
            raise ValueError(f"expected a non-empty list of distinct seeds, got {v}")
        return v

    def few_shot_sets(self) -> list[str]:
        """The test sets that get few-shot cells."""
        if self.few_shot is None:
            return []
        return list(self.few_shot.test_sets or self.test_sets)


class CellConfig(_Strict):
    """One cell of a study: the coordinates a trial recomputes its data selection from.

    Set by ``medxfer study`` (never index lists: :func:`medxfer.data.protocol.select_cell`
    derives the rows from the data and these coordinates).

    Attributes:
        row: the study's method row (table row).
        phase: ``train`` (on the source), ``search`` (a hyperparameter trial of a training
            cell: validation only, no test set), ``transfer`` (few-shot on ``test_set``).
        fold: k-fold fold, or the index of the held-out site (sorted), or None.
        fraction: label fraction (train) or few-shot fraction (transfer).
        n_labelled: labelled training images (train).
        test_set: ``transfer``: the test set fine-tuned on.
        p_art: a shortcut study's share of ``target_class`` images with the confounder.
        seed: the training seed (``train.seed``).
    """

    row: str = ""
    phase: Literal["train", "search", "transfer"] = "train"
    fold: int | None = Field(None, ge=0)
    fraction: float | None = Field(None, gt=0, le=1)
    n_labelled: int | None = Field(None, ge=1)
    test_set: str | None = None
    p_art: float | None = Field(None, ge=0, le=1)
    seed: int = 0


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
    protocol: ProtocolConfig | None = None
    cell: CellConfig | None = None

    def with_absolute_paths(self, base: str | os.PathLike | None = None) -> "ExperimentConfig":
        """A copy with relative local paths (data root, weights, storage path, artifact root)
        made absolute against ``base`` (default: the working directory); Tune changes each
        trial's working directory, so paths must be absolute before Ray starts."""
        b = Path(base) if base is not None else Path.cwd()
        protocol = self.protocol
        if protocol is not None:
            protocol = protocol.model_copy(update={
                "storage_path": absolute_path(protocol.storage_path, b),
                "test_sets": {n: t.model_copy(update={
                    k: absolute_path(getattr(t, k), b) for k in ("root", "manifest",
                                                                 "image_root")})
                    for n, t in protocol.test_sets.items()}})
        return self.model_copy(update={
            "data": self.data.with_absolute_paths(b),
            "model": self.model.model_copy(update={
                "weights": absolute_path(self.model.weights, b)}),
            "scaling": self.scaling.model_copy(update={
                "storage_path": absolute_path(self.scaling.storage_path, b)}),
            "tracking": self.tracking.model_copy(update={
                "artifact_root": absolute_path(self.tracking.artifact_root, b)}),
            "protocol": protocol,
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


def get_path(data: Mapping[str, Any], dotted: str) -> Any:
    """``data["a"]["b"]`` for ``dotted = "a.b"``; None where a key is missing."""
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


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
