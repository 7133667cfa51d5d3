"""The experiment YAML: pydantic models, loading, overrides, errors by YAML path.

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

:func:`load_config` reads a file, applies ``--set key=value`` overrides, merges the method's
defaults *under* the user's values, validates everything and makes paths absolute (data root,
weights, tracking URI, artifact root: Tune changes each trial's working directory). Every error
names the file and the YAML path: ``exp.yaml: train.lr: must be > 0``.

:func:`parse_experiment` does the same for an already-loaded dict (what a Tune trial receives:
``ExperimentConfig.model_dump()`` with sampled values merged in); the method's options are then
available typed as :meth:`ExperimentConfig.options`.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
    """One experiment: a method, its options, data, model, training, scaling, tracking, search."""

    method: str
    method_config: dict[str, Any] = Field(default_factory=dict)
    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    search: dict[str, Any] | None = None  # validated by medxfer.tune

    @field_validator("method")
    @classmethod
    def _known_method(cls, v: str) -> str:
        from medxfer.methods import list_methods

        if v not in list_methods():
            raise ValueError(f"unknown method {v!r}; valid: {', '.join(list_methods())}")
        return v

    def options(self) -> BaseModel:
        """``method_config`` as the method's own (validated) pydantic model."""
        from medxfer.methods import get_method

        return get_method(self.method).config_schema.model_validate(self.method_config)


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


def _format_errors(exc: ValidationError, prefix: str = "") -> list[str]:
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


def _absolute(path: str | None, base: Path) -> str | None:
    if path is None or "://" in path:
        return path
    p = Path(os.path.expanduser(path))
    return str((p if p.is_absolute() else base / p).resolve())


def parse_experiment(raw: Mapping[str, Any], *, source: str = "config",
                     overrides: Mapping[str, Any] | None = None,
                     base_dir: str | os.PathLike | None = None,
                     cli_tracking_uri: str | None = None) -> ExperimentConfig:
    """Validate an experiment dict: defaults of the method under it, overrides on top.

    Args:
        raw: the YAML document (or ``ExperimentConfig.model_dump()`` plus sampled values).
        source: file name used in error messages.
        overrides: ``{"train.lr": 0.1}`` applied before validation (``--set``).
        base_dir: relative paths (data root, weights, sqlite URI, artifact root) are resolved
            against it (default: the working directory).
        cli_tracking_uri: ``--tracking-uri``; wins over ``tracking.uri``.

    Raises:
        MedxferInputError: every problem, one per line, as ``<source>: <yaml.path>: <message>``.
    """
    from medxfer.methods import get_method, list_methods

    if not isinstance(raw, Mapping):
        raise MedxferInputError(f"expected a mapping at the top level, got {type(raw).__name__}",
                                path=source)
    data = copy.deepcopy(dict(raw))
    for key, value in (overrides or {}).items():
        set_path(data, key, value)
    name = data.get("method")
    if not isinstance(name, str) or name not in list_methods():
        shown = "required field missing" if name is None else f"unknown method {name!r}"
        raise MedxferInputError(f"method: {shown}; valid: {', '.join(list_methods())}",
                                path=source)
    method = get_method(name)
    data = deep_merge(method.defaults, data)
    errors: list[str] = []
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        errors += _format_errors(exc)
        cfg = None
    try:
        options = method.config_schema.model_validate(data.get("method_config") or {})
    except ValidationError as exc:
        errors += _format_errors(exc, "method_config")
        options = None
    if errors:
        raise MedxferInputError("invalid experiment config:\n  " + "\n  ".join(errors),
                                path=source)
    assert cfg is not None and options is not None
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    from medxfer.tracking.uri import resolve_tracking_uri

    try:
        uri = resolve_tracking_uri(cli_tracking_uri, cfg.tracking.uri, base=base)
    except ValueError as exc:
        raise MedxferInputError(f"tracking.uri: {exc}", path=source) from None
    return cfg.model_copy(update={
        "method_config": options.model_dump(),
        "data": cfg.data.model_copy(update={"root": _absolute(cfg.data.root, base)}),
        "model": cfg.model.model_copy(update={"weights": _absolute(cfg.model.weights, base)}),
        "scaling": cfg.scaling.model_copy(update={
            "storage_path": _absolute(cfg.scaling.storage_path, base)}),
        "tracking": cfg.tracking.model_copy(update={
            "uri": uri, "artifact_root": _absolute(cfg.tracking.artifact_root, base)}),
    })


def load_config(path: str | os.PathLike, overrides: Mapping[str, Any] | list[str] | None = None,
                *, cli_tracking_uri: str | None = None) -> ExperimentConfig:
    """Read, merge and validate an experiment YAML (see the module docstring).

    Args:
        path: the YAML file.
        overrides: ``{"train.lr": 0.1}`` or ``["train.lr=0.1"]`` (``--set``), applied first.
        cli_tracking_uri: ``--tracking-uri``.

    Raises:
        MedxferInputError: unreadable file, bad YAML, or invalid values (each with its path).
    """
    import yaml

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise MedxferInputError(f"cannot read config: {exc.strerror}", path=str(p)) from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise MedxferInputError(f"not valid YAML: {getattr(exc, 'problem', exc)}", path=str(p),
                                line=None if mark is None else mark.line + 1) from None
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    return parse_experiment(raw, source=str(p), overrides=overrides,
                            cli_tracking_uri=cli_tracking_uri)
