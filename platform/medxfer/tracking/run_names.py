"""MLflow run names that say what a run is, e.g. ``synthchest -> synthpneumonia lr=0.01 bs=32``.

The run table of the MLflow UI lists runs by name; Ray's trial ids (``sweep-3f2a1_00004``) say
nothing there. Ray's own trial and ``RunConfig`` names stay derived from trial ids (restores
depend on them); only the MLflow names are built here. Names need not be unique: the run id and
the ``medxfer.*`` tags identify a run.
"""

from __future__ import annotations

from typing import Any, Mapping

from medxfer.tracking.runs import source_of

MAX_LEN = 250  # MLflow's runs.name column
#: Short forms of sampled keys (by their last dotted part) in trial names.
SHORT = {"batch_size": "bs", "weight_decay": "wd", "momentum": "mom", "lambda_lr": "lambda"}


def _as_dict(cfg: Any) -> dict:
    return dict(cfg) if isinstance(cfg, Mapping) else cfg.model_dump()


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _short_keys(keys: list[str]) -> dict[str, str]:
    """``train.lr`` -> ``lr``, ``train.batch_size`` -> ``bs``; a last part shared by two keys
    keeps the full dotted key."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (SHORT.get(p, p) if last.count(p) == 1 else k)
            for k, p in zip(keys, last, strict=True)}


def pair(cfg: Any) -> str:
    """``source -> target`` of a trial config (source: ``data.source``, the weight file's stem,
    or ``scratch``)."""
    c = _as_dict(cfg)
    return f"{source_of(c)} -> {c['data']['flag']}"


def sampled_values(sampled: Mapping[str, Any]) -> str:
    """A trial's sampled values in the order of ``search.space``, e.g. ``lr=0.01 bs=32``."""
    short = _short_keys(list(sampled))
    return " ".join(f"{short[k]}={_value(v)}" for k, v in sampled.items())


def trial_run_name(cfg: Any, sampled: Mapping[str, Any]) -> str:
    """A sweep trial: its pair and the sampled values, e.g.
    ``synthchest -> synthpneumonia lr=0.01 bs=32``."""
    return f"{pair(cfg)} {sampled_values(sampled)}".strip()[:MAX_LEN]


def study_search_run_name(cell: str, sampled: Mapping[str, Any]) -> str:
    """A study's search trial: the cell it searches for and its sampled values, e.g.
    ``search <cell key> lr=0.01``."""
    return f"search {cell} {sampled_values(sampled)}".strip()[:MAX_LEN]


def train_run_name(cfg: Any) -> str:
    """A ``medxfer train`` run: its method and pair, e.g.
    ``finetune synthchest -> synthpneumonia``."""
    return f"{_as_dict(cfg)['method']} {pair(cfg)}"[:MAX_LEN]
