"""Load an experiment YAML for a sweep: the experiment config plus its validated ``search``.

The experiment part is validated by the training core's :mod:`medxfer.config` (the same rules
and YAML-path errors as ``medxfer train``); run-schema tags and params come from
:mod:`medxfer.tracking.runs`, so trials and ``medxfer train`` runs carry identical schemas.
One top-level key is the sweep's own and is not part of the experiment config: ``name`` (the
default sweep name).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from medxfer.errors import MedxferInputError
from medxfer.tune.search_config import SearchConfig, parse_search

SWEEP_ONLY_KEYS = ("name",)


def validate_base(raw: dict, source: str | None, base_dir: Path | None = None) -> dict:
    """The experiment config as a plain dict (``ExperimentConfig.model_dump()``), plus the
    sweep-only top-level keys passed through."""
    from medxfer.train.experiment import parse_run_config

    extras = {k: raw[k] for k in SWEEP_ONLY_KEYS if k in raw}
    body = {k: v for k, v in raw.items() if k not in SWEEP_ONLY_KEYS}
    cfg = parse_run_config(body, source=source or "config", base_dir=base_dir).model_dump()
    cfg.update(extras)
    return cfg


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
    # Relative paths resolve against the working directory, as in `medxfer train`.
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
    if "train.lambda_lr" in search.space and "train.scheduler" not in search.space \
            and config["train"]["scheduler"] != "lambda":
        # The factor only multiplies the rate under LambdaLR: a searched lambda must show.
        raise MedxferInputError(f"search.space.train.lambda_lr: train.scheduler is "
                                f"{config['train']['scheduler']!r}, so the sampled lambda "
                                "would have no effect; set train.scheduler: lambda",
                                path=source)
    return Experiment(path=path, config=config, search=search, raw=raw)


def smoke_test(exp: Experiment, *, trials: int = 2, epochs: int = 1) -> Experiment:
    """A tiny budget: ``trials`` trials of ``epochs`` epoch(s), no scheduler or early stop."""
    from medxfer.tune.searchers import enumerated

    cfg = copy.deepcopy(exp.config)
    cfg.setdefault("train", {})["epochs"] = epochs
    s = exp.search.model_copy(deep=True)
    s.space = {k: v for k, v in s.space.items() if k != "train.epochs"}
    s.points_to_evaluate = [{k: v for k, v in p.items() if k != "train.epochs"}
                            for p in s.points_to_evaluate][:trials]
    s.scheduler = None
    s.early_stopping = None
    s.max_concurrent = min(s.max_concurrent, trials)
    grid = enumerated(s.space, s.searcher)
    if any(len(s.space[k].values) > 1 for k in grid):
        # Keep the first value of every enumerated leaf, two of the first one that has two.
        budget = trials
        for key in grid:
            leaf = s.space[key]
            keep = min(len(leaf.values), max(budget, 1))
            s.space[key] = leaf.model_copy(update={leaf.kind: leaf.values[:keep]})
            budget = max(budget // keep, 1) if keep > 1 else budget
        s.num_samples = 1
    else:
        s.num_samples = trials
    return Experiment(path=exp.path, config=cfg, search=s, raw=exp.raw)


# --------------------------------------------------------------------------- config -> schema


def schema_tags(config: dict) -> dict[str, str]:
    """Run-schema tags of a trial from its config (source, target, arch, method, benchmark):
    those of :func:`medxfer.tracking.runs.trial_tags`, without ``kind`` (set by the caller)."""
    from medxfer.tracking import schema
    from medxfer.tracking.runs import trial_tags

    return {k: v for k, v in trial_tags(config).items() if k != schema.KIND}


def trial_params(config: dict, sampled: dict) -> dict[str, str]:
    """MLflow params of a trial: :func:`medxfer.tracking.runs.trial_params` of its full config
    (the sampled values already merged in), plus any sampled key outside those, by its dotted
    path."""
    from medxfer.tracking.runs import trial_params as run_params

    out = run_params(config)
    for key, v in sampled.items():
        leaf = key.rsplit(".", 1)[-1]
        if leaf not in out and key not in out:
            out[key] = _fmt(v)
    return {k[:250]: v[:6000] for k, v in out.items()}


def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def scaling_of(config: dict) -> tuple[int, bool]:
    s = config.get("scaling") or {}
    return int(s.get("num_workers") or 1), bool(s.get("use_gpu"))


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(name: str) -> str:
    return _SAFE.sub("-", name).strip("-") or "sweep"
