"""Load an experiment YAML for a sweep: the experiment config plus its validated ``search``.

MERGE SEAM (training core, branch ``train``): :func:`validate_base` stands in for
``medxfer.config.ExperimentConfig`` until that lands. At merge, make it
``ExperimentConfig.model_validate(raw).model_dump()`` (keeping its YAML-path error messages);
the rest of the sweep code only uses the resulting plain dict and the keys read in
:func:`schema_tags` / :func:`scaling_of`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medxfer.errors import MedxferInputError
from medxfer.tune.search_config import SearchConfig, format_validation_error, parse_search

# --------------------------------------------------------------------------- interim base config


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Train(_Open):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    optimizer: str = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0)
    lambda_lr: Optional[float] = None


class _Scaling(_Open):
    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False


class _Tracking(_Open):
    uri: Optional[str] = None
    experiment: Optional[str] = None
    artifact_root: Optional[str] = None
    benchmark: Optional[str] = None


class _InterimExperiment(_Open):
    """Interim stand-in for medxfer.config.ExperimentConfig (see module docstring)."""

    name: Optional[str] = None
    method: str
    method_options: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    train: _Train = Field(default_factory=_Train)
    scaling: _Scaling = Field(default_factory=_Scaling)
    tracking: _Tracking = Field(default_factory=_Tracking)
    search: Optional[dict[str, Any]] = None


def validate_base(raw: dict, source: str | None) -> dict:
    """The experiment config as a plain dict (``ExperimentConfig(...).model_dump()`` at merge)."""
    try:
        return _InterimExperiment.model_validate(raw).model_dump()
    except ValidationError as exc:
        lines = [ln[1:] if ln.startswith(".") else ln for ln in format_validation_error(exc, "")]
        raise MedxferInputError("; ".join(lines), path=source) from None


# --------------------------------------------------------------------------- the experiment


@dataclass
class Experiment:
    path: Optional[Path]
    config: dict                      # validated experiment config (model_dump())
    search: SearchConfig
    raw: dict = field(default_factory=dict)

    @property
    def default_name(self) -> str:
        return self.config.get("name") or (self.path.stem if self.path else "sweep")


def load_experiment(path: str | Path) -> Experiment:
    p = Path(path)
    if not p.is_file():
        raise MedxferInputError("no such experiment YAML", path=str(p))
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise MedxferInputError(f"not valid YAML: {exc}", path=str(p)) from None
    return experiment_from_dict(raw, source=str(p), path=p)


def experiment_from_dict(raw: Any, *, source: str | None = None,
                         path: Path | None = None) -> Experiment:
    if not isinstance(raw, dict):
        raise MedxferInputError("expected a mapping at the top level", path=source)
    config = validate_base(raw, source)
    search = parse_search(raw.get("search"), source=source)
    for key in search.space:
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        node: Any = config
        for part in [p for p in parent.split(".") if p]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise MedxferInputError(f"search.space.{key}: {parent or key!r} is not a section of "
                                    "the experiment config (keys are dotted config paths such "
                                    "as train.lr)", path=source)
    return Experiment(path=path, config=config, search=search, raw=raw)


def smoke_test(exp: Experiment, *, trials: int = 2, epochs: int = 1) -> Experiment:
    """A tiny budget: ``trials`` trials of ``epochs`` epoch(s), no scheduler or early stop."""
    from medxfer.tune.space import grid_size

    cfg = copy.deepcopy(exp.config)
    cfg.setdefault("train", {})["epochs"] = epochs
    s = exp.search.model_copy(deep=True)
    s.space = {k: v for k, v in s.space.items() if k != "train.epochs"}
    s.points_to_evaluate = [{k: v for k, v in p.items() if k != "train.epochs"}
                            for p in s.points_to_evaluate][:trials]
    s.scheduler = None
    s.early_stopping = None
    s.max_concurrent = min(s.max_concurrent, trials)
    if grid_size(s) > 1:
        # Keep the first value of every enumerated leaf, two of the first one that has two.
        budget = trials
        for key, leaf in s.space.items():
            if leaf.kind == "grid" or (leaf.kind == "choice" and s.algorithm == "grid"):
                keep = min(len(leaf.values), max(budget, 1))
                s.space[key] = leaf.model_copy(update={leaf.kind: leaf.values[:keep]})
                budget = max(budget // keep, 1) if keep > 1 else budget
        s.num_samples = 1
    else:
        s.num_samples = trials
    return Experiment(path=exp.path, config=cfg, search=s, raw=exp.raw)


# --------------------------------------------------------------------------- config -> schema


def _get(cfg: dict, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def set_path(cfg: dict, dotted: str, value: Any) -> None:
    node = cfg
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def schema_tags(config: dict) -> dict[str, str]:
    """Run-schema tags of a trial from its config (source, target, arch, method, benchmark).

    MERGE SEAM: the training core's ``medxfer.tracking.runs`` derives these from a config; use
    it here at merge. Interim lookup order: ``model.source`` | ``model.weights_source`` |
    ``data.source``; ``data.target``; ``model.arch``; ``method``; ``tracking.benchmark``.
    """
    from medxfer.tracking import schema

    method = config.get("method")
    if isinstance(method, dict):
        method = method.get("name")
    values = {
        schema.SOURCE: _get(config, "model.source") or _get(config, "model.weights_source")
        or _get(config, "data.source"),
        schema.TARGET: _get(config, "data.target"),
        schema.ARCH: _get(config, "model.arch"),
        schema.METHOD: method,
        schema.BENCHMARK: _get(config, "tracking.benchmark"),
    }
    return {k: str(v) for k, v in values.items() if v is not None}


# DESIGN.md: params of our own runs are the leaf names of train.* (lr, weight_decay, ...) plus
# the method's own; other sampled keys keep their dotted path.
FIXED_PARAM_KEYS = ("train.epochs", "train.batch_size", "train.optimizer", "train.lr",
                    "train.weight_decay", "train.momentum", "train.lambda_lr",
                    "scaling.num_workers", "scaling.use_gpu", "data.target", "model.arch")


def param_name(dotted: str) -> str:
    if dotted.startswith("train.") or dotted.startswith("method_options."):
        return dotted.split(".", 1)[1]
    return dotted


def trial_params(config: dict, sampled: dict) -> dict[str, str]:
    """MLflow params of a trial: the fixed keys that matter, then the sampled config on top."""
    out: dict[str, str] = {}
    for key in FIXED_PARAM_KEYS:
        v = _get(config, key)
        if v is not None:
            out[param_name(key)] = _fmt(v)
    for key, v in (config.get("method_options") or {}).items():
        if not isinstance(v, (dict, list)):
            out[key] = _fmt(v)
    for key, v in sampled.items():
        out[param_name(key)] = _fmt(v)
    return {k[:250]: v[:6000] for k, v in out.items()}


def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def scaling_of(config: dict) -> tuple[int, bool]:
    s = config.get("scaling") or {}
    return int(s.get("num_workers") or 1), bool(s.get("use_gpu"))


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(name: str) -> str:
    return _SAFE.sub("-", name).strip("-") or "sweep"
