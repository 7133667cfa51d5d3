"""The ``search:`` section of an experiment YAML, validated with errors that name YAML paths.

The experiment config (``medxfer.config.ExperimentConfig``) keeps ``search`` as a plain dict and
this module validates it::

    search:
      algorithm: hyperopt          # a name of tune/searchers.py: SEARCHERS
      metric: val_loss             # what the searcher and scheduler optimise
      mode: min
      num_samples: 20              # trials (grid: repeats of the whole grid, default 1)
      max_concurrent: 2
      max_failures: 2              # retries per trial, each from its last checkpoint
      seed: 0
      space:                       # keys are dotted config paths (nested dicts work too)
        train.lr: {loguniform: [1.0e-6, 1.0e-3]}
        train.batch_size: {choice: [32, 64, 128]}
      points_to_evaluate:          # tried first (searchers with points_to_evaluate)
        - {train.lr: 1.0e-4, train.batch_size: 64}
      scheduler: {type: asha, max_t: 100, grace_period: 5, reduction_factor: 3}
      early_stopping: {metric: val_auc, mode: max, patience: 50}
      select_by: val_loss          # which epoch a trial's final step reports (DESIGN.md)
      select_mode: min
      storage_path: ray_results    # Ray Tune storage; made absolute against the working dir
      stall_timeout_s: 300         # stop (resumably) when no trial reports and no node with
                                   # CPUs answers for this long; null: never (tune/stall.py)
      warmstart:                   # searchers that use a prior: where it comes from
        benchmark: medmnist-transfer   # benchmark/<name>, or a full sweep/<name>; None: the
                                       # only benchmark/* experiment in the store
        benchmark_kind: dataset        # dataset | architecture (rows: sources | archs)
        tracking_uri: null             # default: the sweep's own tracking store
        target: null                   # default: data.flag; its logged runs are LEFT OUT
        params: {lr: train.lr, batch_size: train.batch_size}   # logged param -> config key
      sources:                     # a zoo of candidate source models (algorithm joint)
        zoo: zoos/demo.yaml        # `estimate score`'s zoo YAML; path from the working dir
        metric: [logme, sfda]      # transferability metric(s) ranking the sources (combined)
        invert: []                 # metrics scored as 1 - score (estimate evaluate --invert)
        n_per_class: 100           # target training images per class scored (thesis: 100)
        batch_size: 32             # feature-extraction batch size
        random_state: 0            # NLEEP's seed
        explore: 3                 # sources trained round-robin at a time (joint searcher)

Every error names its YAML path, e.g. ``search.space.train.lr.loguniform: lower bound must be
> 0``.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, \
    model_validator

from medxfer.errors import MedxferInputError

#: ``search.warmstart.params`` when not given: the benchmark's param names -> config keys. Only
#: the entries whose config key is in ``search.space`` are used (an explicit mapping must name
#: searched keys only).
DEFAULT_WARMSTART_PARAMS = {"lr": "train.lr", "wd": "train.weight_decay",
                            "momentum": "train.momentum", "batch_size": "train.batch_size"}
LEAF_KINDS = ("loguniform", "uniform", "choice", "grid")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _num(v: Any) -> Any:
    """YAML 1.1 reads ``1e-6`` (no dot) as a string: accept it as the number it means."""
    if isinstance(v, str) and _FLOAT_RE.match(v.strip()):
        return float(v)
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Leaf(BaseModel):
    """One search-space leaf: exactly one of ``loguniform``, ``uniform``, ``choice``, ``grid``."""

    model_config = ConfigDict(extra="forbid")
    loguniform: Optional[list[Any]] = None
    uniform: Optional[list[Any]] = None
    choice: Optional[list[Any]] = None
    grid: Optional[list[Any]] = None

    @property
    def kind(self) -> str:
        return next(k for k in LEAF_KINDS if getattr(self, k) is not None)

    @property
    def values(self) -> list[Any]:
        return getattr(self, self.kind)

    @field_validator("loguniform", "uniform", mode="before")
    @classmethod
    def _bounds(cls, v, info):
        if v is None:
            return v
        if not isinstance(v, (list, tuple)) or len(v) != 2:
            raise ValueError("expected two bounds [lower, upper]")
        lo, hi = (_num(x) for x in v)
        for x in (lo, hi):
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise ValueError(f"bound {x!r} is not a finite number")
        if info.field_name == "loguniform" and lo <= 0:
            raise ValueError("lower bound must be > 0")
        if lo >= hi:
            raise ValueError(f"lower bound {lo} must be < upper bound {hi}")
        return [float(lo), float(hi)]

    @field_validator("choice", "grid", mode="before")
    @classmethod
    def _values(cls, v):
        if v is None:
            return v
        if not isinstance(v, (list, tuple)) or not v:
            raise ValueError("expected a non-empty list of values")
        return [_num(x) for x in v]

    @model_validator(mode="after")
    def _exactly_one(self):
        given = [k for k in LEAF_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"expected exactly one of {', '.join(LEAF_KINDS)}; got "
                             f"{', '.join(given) or 'none'}")
        return self


class AshaConfig(_Strict):
    type: Literal["asha"] = "asha"
    max_t: int = Field(100, ge=1)
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(3, gt=1)


class FifoConfig(_Strict):
    type: Literal["fifo"] = "fifo"


class EarlyStopping(_Strict):
    """Stop a trial when ``metric`` has not improved for ``patience`` reported epochs."""

    metric: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    patience: int = Field(ge=1)


class WarmStartConfig(_Strict):
    """Where the prior of a searcher that uses one comes from (``SearcherInfo.uses_prior``;
    :mod:`medxfer.tune.warmstart`).

    The prior ranks the space's configurations by their val-loss rank on the logged grids of
    ``benchmark``, with every run of ``target`` left out (leave-target-out). ``params`` maps the
    benchmark's logged param names to the sweep's config keys; ``None`` = the entries of
    :data:`DEFAULT_WARMSTART_PARAMS` whose config key is searched. Params of the benchmark that
    are not mapped are marginalised: a task's configuration counts by its best logged run.
    """

    benchmark: Optional[str] = None
    benchmark_kind: Literal["dataset", "architecture"] = "dataset"
    tracking_uri: Optional[str] = None
    target: Optional[str] = None
    params: Optional[dict[str, str]] = None

    @field_validator("params")
    @classmethod
    def _params(cls, v):
        if v is not None:
            if not v:
                raise ValueError("expected a non-empty mapping {benchmark param: config key}")
            keys = list(v.values())
            dup = sorted({k for k in keys if keys.count(k) > 1})
            if dup:
                raise ValueError(f"config key(s) {', '.join(dup)} mapped twice")
        return v


#: Config keys a zoo entry sets in each trial (``search.sources``): never searched.
ZOO_KEYS = ("data.source", "data.as_rgb", "model.weights", "model.backbone", "model.arch",
            "model.in_chans")


class SourcesConfig(_Strict):
    """``search.sources``: score a zoo of source models on the target, then search (source,
    configuration) pairs with the ``joint`` searcher (:mod:`medxfer.tune.zoo_sweep`).

    ``zoo`` is a zoo YAML as ``medxfer estimate score`` reads it; every source is scored with
    the ``metric`` (registry names; several are combined by their rank-based normal scores),
    ``invert`` listing metrics scored as 1 - score. The scoring options are ``estimate
    score``'s. ``explore``: how many of the best-believed sources the joint searcher trains
    round-robin at a time. Names are checked against the metric registry where the zoo is
    scored (this layer does not know the metrics).
    """

    zoo: str
    metric: list[str] = Field(default_factory=lambda: ["logme"])
    invert: list[str] = Field(default_factory=list)
    n_per_class: Optional[int] = Field(100, ge=1)
    batch_size: int = Field(32, ge=1)
    random_state: Optional[int] = 0
    explore: int = Field(3, ge=1)

    @field_validator("metric", "invert", mode="before")
    @classmethod
    def _names(cls, v, info):
        if isinstance(v, str):
            v = [n.strip() for n in v.split(",") if n.strip()]
        if not isinstance(v, list) or not all(isinstance(n, str) and n for n in v):
            raise ValueError("expected a metric name, a comma-separated string or a list of "
                             "names")
        if info.field_name == "metric" and not v:
            raise ValueError("expected at least one metric name")
        return v

    @field_validator("zoo")
    @classmethod
    def _path(cls, v):
        if not v.strip():
            raise ValueError("expected the path of a zoo YAML")
        return v

    def resolved_zoo(self, base: str | os.PathLike | None = None) -> str:
        """The zoo YAML as an absolute path (relative paths: from ``base``, default the working
        directory, as every path of an experiment)."""
        p = Path(os.path.expanduser(self.zoo))
        return str((p if p.is_absolute() else Path(base or Path.cwd()) / p).resolve())


class SearchConfig(_Strict):
    algorithm: str = "hyperopt"
    metric: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    num_samples: int = Field(10, ge=1)
    max_concurrent: int = Field(1, ge=1)
    max_failures: int = Field(2, ge=0)
    seed: Optional[int] = None
    space: dict[str, Leaf] = Field(default_factory=dict)
    points_to_evaluate: list[dict[str, Any]] = Field(default_factory=list)
    scheduler: Optional[Union[AshaConfig, FifoConfig]] = Field(None, discriminator="type")
    early_stopping: Optional[EarlyStopping] = None
    select_by: str = "val_loss"
    select_mode: Literal["min", "max"] = "min"
    storage_path: str = "ray_results"
    checkpoints_to_keep: int = Field(2, ge=1)
    stall_timeout_s: Optional[float] = Field(300.0, gt=0)
    warmstart: Optional[WarmStartConfig] = None
    sources: Optional[SourcesConfig] = None

    def warmstart_params(self) -> dict[str, str]:
        """The effective ``{benchmark param: config key}`` of the prior."""
        ws = self.warmstart or WarmStartConfig()
        if ws.params is not None:
            return dict(ws.params)
        return {p: k for p, k in DEFAULT_WARMSTART_PARAMS.items() if k in self.space}

    @field_validator("algorithm")
    @classmethod
    def _known(cls, v):
        from medxfer.tune.searchers import SEARCHERS

        if v not in SEARCHERS:
            raise ValueError(SEARCHERS.unknown(v))
        return v

    @model_validator(mode="before")
    @classmethod
    def _grid_samples(cls, data):
        # A zoo is searched by the joint searcher unless another one is named (an error).
        if isinstance(data, dict) and data.get("sources") is not None and "algorithm" not in data:
            data = {**data, "algorithm": "joint"}
        # A grid is enumerated once unless num_samples asks for repeats.
        info = _info(data.get("algorithm", "hyperopt")) if isinstance(data, dict) else None
        if info is not None and info.tune_space == "grid" and "num_samples" not in data:
            data = {**data, "num_samples": 1}
        return data

    @property
    def searcher(self):
        """The registry record of :attr:`algorithm` (a ``SearcherInfo``)."""
        return _info(self.algorithm)

    @field_validator("space", mode="before")
    @classmethod
    def _flatten_space(cls, v):
        """Accept dotted keys and nested dicts; a leaf is a dict with a leaf kind as key."""
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise ValueError("expected a mapping of config paths to leaves")
        out: dict[str, Any] = {}

        def walk(prefix: str, node: Any) -> None:
            if isinstance(node, dict) and not any(k in LEAF_KINDS for k in node) and node:
                for k, sub in node.items():
                    walk(f"{prefix}.{k}" if prefix else str(k), sub)
            else:
                out[prefix] = node

        for k, sub in v.items():
            walk(str(k), sub)
        return out

    @field_validator("points_to_evaluate", mode="before")
    @classmethod
    def _points(cls, v):
        if v is None:
            return []
        if not isinstance(v, list):
            raise ValueError("expected a list of {config.path: value} mappings")
        return [{k: _num(x) for k, x in p.items()} if isinstance(p, dict) else p for p in v]

    @model_validator(mode="after")
    def _consistent(self):
        # Errors raised here carry their own YAML path (see _PathError).
        from medxfer.tune.searchers import SEARCHERS, check_space

        info = self.searcher
        problems = check_space(self.space, info)
        if problems:
            path, message = problems[0]
            raise _PathError(f"space.{path}", message)
        self._check_points(info)
        if self.sources is not None:
            self._check_sources()
        if not info.uses_prior:
            if self.warmstart is not None:
                users = ", ".join(n for n, i in sorted(SEARCHERS.items()) if i.uses_prior)
                raise _PathError("warmstart", f"only used by the searchers with a prior "
                                              f"({users}), not {self.algorithm}")
            return self
        if self.sources is not None and self.warmstart is None:
            return self  # a zoo search without a configuration prior (the space may be empty)
        if not self.space:
            raise _PathError("space", f"algorithm {self.algorithm} needs a finite space to "
                                      "search")
        explicit = self.warmstart is not None and self.warmstart.params is not None
        for param, key in self.warmstart_params().items():
            if key not in self.space:
                raise _PathError(f"warmstart.params.{param}",
                                 f"{key!r} is not a key of search.space "
                                 f"({', '.join(self.space)})")
        if not self.warmstart_params():
            raise _PathError("warmstart.params" if explicit else "space",
                             f"algorithm {self.algorithm} needs at least one searched key that "
                             "the benchmark logs (default mapping: " + ", ".join(
                                 f"{p}: {k}" for p, k in DEFAULT_WARMSTART_PARAMS.items())
                             + "); map others with search.warmstart.params")
        return self

    def _check_sources(self) -> None:
        if self.algorithm != "joint":
            raise _PathError("algorithm", f"search.sources is searched by algorithm joint "
                                          f"(sources and configurations together), not "
                                          f"{self.algorithm}")
        for key in self.space:
            if key in ZOO_KEYS:
                raise _PathError(f"space.{key}", "set per trial from the chosen entry of "
                                                 "search.sources.zoo; not searched")

    def _check_points(self, info) -> None:
        if self.points_to_evaluate and not info.points_to_evaluate:
            raise _PathError("points_to_evaluate", f"not used by algorithm {self.algorithm}")
        for i, point in enumerate(self.points_to_evaluate):
            for key, value in point.items():
                leaf = self.space.get(key)
                if leaf is None:
                    raise _PathError(f"points_to_evaluate.{i}.{key}",
                                     f"not a key of search.space ({', '.join(self.space)})")
                if leaf.kind in ("choice", "grid") and value not in leaf.values:
                    raise _PathError(f"points_to_evaluate.{i}.{key}",
                                     f"{value!r} is not one of {leaf.values}")
                if leaf.kind in ("loguniform", "uniform"):
                    lo, hi = leaf.values
                    if not isinstance(value, (int, float)) or not lo <= value <= hi:
                        raise _PathError(f"points_to_evaluate.{i}.{key}",
                                         f"{value!r} is outside [{lo}, {hi}]")

    def resolved_storage_path(self, base: str | os.PathLike | None = None) -> str:
        p = Path(os.path.expanduser(self.storage_path))
        if not p.is_absolute():
            p = Path(base or Path.cwd()) / p
        return str(p.resolve())


def _info(name: Any):
    """The searcher record of ``name``, or None when it is not a registered name (the
    ``algorithm`` field validator reports that)."""
    from medxfer.tune.searchers import SEARCHERS

    return SEARCHERS.get(name) if isinstance(name, str) else None


class _PathError(ValueError):
    """A validation error whose location is known better than pydantic's ``loc``."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.yaml_path = path
        self.message = message


def format_validation_error(exc: ValidationError, prefix: str) -> list[str]:
    """``ValidationError`` -> ``["search.space.train.lr.loguniform: lower bound ..."]``."""
    lines = []
    for err in exc.errors():
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, _PathError):
            lines.append(f"{prefix}.{ctx_err.yaml_path}: {ctx_err.message}")
            continue
        # Drop pydantic's union/discriminator tags (e.g. 'asha') from the location.
        loc = [str(p) for p in err["loc"]
               if not (isinstance(p, str) and p in ("asha", "fifo"))
               and not str(p).startswith("function-")]
        msg = err["msg"]
        for noise in ("Value error, ", "Assertion failed, "):
            msg = msg.replace(noise, "")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(".".join([prefix, *loc]) + f": {msg}")
    return lines


def parse_search(raw: Any, *, source: str | None = None, prefix: str = "search") -> SearchConfig:
    """Validate the ``search:`` mapping; raise :class:`MedxferInputError` naming YAML paths."""
    if raw is None:
        raise MedxferInputError(f"{prefix}: a sweep needs a search section", path=source)
    if not isinstance(raw, dict):
        raise MedxferInputError(f"{prefix}: expected a mapping, got {type(raw).__name__}",
                                path=source)
    try:
        return SearchConfig.model_validate(raw)
    except ValidationError as exc:
        raise MedxferInputError("; ".join(format_validation_error(exc, prefix)),
                                path=source) from None
