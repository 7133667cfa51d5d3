"""Score a sweep's zoo (``search.sources``) in parallel on Ray: the half above ``tune``.

:func:`zoo_sources` reads the zoo of an experiment's ``search.sources`` (the YAML ``estimate
score`` reads, :mod:`medxfer.transferability.zoo`) and returns the
:class:`~medxfer.tune.zoo_sweep.ZooSources` that :func:`medxfer.tune.sweep.run_sweep` takes:

* per zoo entry, the config keys its trials set: ``data.source`` (the entry's name: the
  ``medxfer.source`` tag of its child runs), ``model.weights`` (absolute), ``model.backbone``,
  ``model.arch``, ``model.in_chans`` and ``data.as_rgb`` (grey targets fed to 3-channel
  models, as ``estimate score`` feeds them);
* a scorer: every entry is one Ray task (:func:`_score_task`, one CPU) running
  :func:`~medxfer.transferability.scoring.score_source` on the target's training fold, so a
  cluster scores the zoo in parallel; the driver records each result as it arrives with
  ``estimate score``'s writer (:func:`~medxfer.transferability.scoring.record_source`: one
  run per (source, metric) in ``transferability/<sweep>``, only the driver writes), reads the
  runs back (:func:`~medxfer.transferability.scores_io.read_scores_mlflow`), prepares them as
  ``estimate evaluate`` does (NCTI's terms combined across the zoo, ``lp_fu``, ``invert``)
  and combines the metrics by rank-based normal scores
  (:func:`~medxfer.tune.joint_prior.combine_scores`) into one score per source.

Scoring sources before fine-tuning them is the thesis' problem (seed
``004_43f54b618356cecf.txt`` sec. 6.3.1); the metrics and their inputs are those of
``estimate score`` (``transferability/scoring.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from medxfer.errors import MedxferInputError

if TYPE_CHECKING:
    from medxfer.transferability.scoring import SourceScores
    from medxfer.transferability.zoo import Zoo
    from medxfer.tune.experiment import Experiment
    from medxfer.tune.zoo_sweep import ZooSources

COMBINED = {"lp_fu": ("lp", "fu")}  # computed at evaluation from the logged metrics


def zoo_sources(exp: Experiment, *, echo: Callable[[str], None] | None = None) -> ZooSources:
    """The zoo of ``exp.search.sources``, checked, with its scorer.

    Args:
        exp: a sweep experiment with ``search.sources``.
        echo: called with one line per source scored (progress).

    Raises:
        MedxferInputError: naming ``search.sources.*`` (and the experiment file): a zoo that
            cannot be read (the zoo's own error: file, entry and field), unknown metric
            names, an ``invert`` not among the metrics, or sources that no config key tells
            apart.
    """
    from medxfer.transferability.zoo import load_zoo
    from medxfer.tune.zoo_sweep import ZooSources

    src = exp.search.sources
    path = str(exp.path) if exp.path else None
    if src is None:
        raise MedxferInputError("search.sources: not set", path=path)
    try:
        metrics = metric_names(src.metric, src.invert)
    except MedxferInputError as exc:
        raise MedxferInputError(str(exc), path=path) from None
    try:
        zoo = load_zoo(src.resolved_zoo())
        key = source_key(zoo)
    except MedxferInputError as exc:
        raise MedxferInputError(f"search.sources.zoo: {exc}", path=path) from None
    data = exp.config["data"]
    score = partial(_score_zoo, zoo=zoo, key=key, metrics=metrics, chosen=tuple(src.metric),
                    invert=tuple(src.invert), root=_absolute(data["root"]), flag=data["flag"],
                    size=int(data.get("size") or 28), n_per_class=src.n_per_class,
                    batch_size=src.batch_size, random_state=src.random_state,
                    echo=echo or (lambda _msg: None))
    return ZooSources(key=key, overrides=overrides(zoo, key), score=score,
                      describe={"search.sources.computed": ",".join(metrics)})


def metric_names(chosen: list[str], invert: list[str]) -> list[str]:
    """The registry metrics to compute for ``chosen`` (``lp_fu`` needs ``lp`` and ``fu``).

    Raises:
        MedxferInputError: an unknown name (listing the valid ones), or an ``invert`` name not
            in ``chosen``.
    """
    from medxfer.transferability.scoring import resolve_metrics

    bad = [m for m in invert if m not in chosen]
    if bad:
        raise MedxferInputError(f"search.sources.invert: {', '.join(bad)} not among "
                                f"search.sources.metric ({', '.join(chosen)})")
    from medxfer.transferability.registry import list_metrics

    names = [n for m in chosen for n in COMBINED.get(m, (m,))]
    unknown = [n for n in names if n not in list_metrics() or n == "all"]
    if unknown:
        raise MedxferInputError(f"search.sources.metric: unknown metric(s) "
                                f"{', '.join(unknown)}; valid: "
                                f"{', '.join([*list_metrics(), *COMBINED])}")
    return resolve_metrics(names)


def source_key(zoo: Zoo) -> str:
    """``data.source`` when the entries' names differ, else ``model.arch`` when their arch
    flags do (one source in several architectures: the architecture benchmark's rows)."""
    names = [s.name for s in zoo.sources]
    if len(set(names)) == len(names):
        return "data.source"
    archs = [s.arch_flag for s in zoo.sources]
    if len(set(archs)) == len(archs):
        return "model.arch"
    raise MedxferInputError("sources repeat both a name and an arch flag; a sweep tells its "
                            "sources apart by name (or, for one source, by arch)",
                            path=zoo.path, field="name")


def overrides(zoo: Zoo, key: str) -> dict[str, dict[str, Any]]:
    """Per source (its ``key`` value), the config keys its trials set (module docstring)."""
    out = {}
    for s in zoo.sources:
        cfg = {"data.source": s.name, "data.as_rgb": s.in_chans == 3,
               "model.weights": str(zoo.weight_path(s)), "model.backbone": s.architecture,
               "model.arch": s.arch_flag, "model.in_chans": s.in_chans}
        out[cfg[key]] = cfg
    return out


def _absolute(path: str) -> str:
    from pathlib import Path

    return str(Path(path).expanduser().resolve())


def _score_task(zoo: Zoo, index: int, root: str, flag: str, metrics: list[str], size: int,
                n_per_class: int | None, batch_size: int,
                random_state: int | None) -> SourceScores:
    """One source's scores (runs as a Ray task; nothing is written here)."""
    import torch

    from medxfer.transferability.scoring import score_source

    with torch.random.fork_rng():
        return score_source(zoo, zoo.sources[index], root, flag, metrics, size=size,
                            n_per_class=n_per_class, batch_size=batch_size,
                            random_state=random_state, progress=False)


def _score_zoo(sweep: str, tracking_uri: str, *, zoo: Zoo, key: str, metrics: list[str],
               chosen: tuple[str, ...], invert: tuple[str, ...], root: str, flag: str,
               size: int, n_per_class: int | None, batch_size: int,
               random_state: int | None, echo: Callable[[str], None]) -> dict[str, float]:
    """Score every source as a Ray task, record the runs, return ``{source: score}``."""
    import ray
    from mlflow import MlflowClient

    from medxfer.tracking import schema
    from medxfer.tracking.store import ensure_experiment
    from medxfer.transferability.scoring import record_source

    exp_id = ensure_experiment(tracking_uri, schema.experiment_name("transferability", sweep))
    client = MlflowClient(tracking_uri)
    task = ray.remote(num_cpus=1, max_retries=1)(_score_task)
    pending = [task.remote(zoo, i, root, flag, metrics, size, n_per_class, batch_size,
                           random_state) for i in range(len(zoo.sources))]
    n = len(pending)
    echo(f"scoring {n} sources of {zoo.path} on {flag} ({', '.join(metrics)}): Ray tasks")
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        scored = _result(done[0])
        record_source(client, exp_id, zoo, scored)
        echo(f"  scored {scored.source.name} ({scored.source.arch_flag}) "
             f"[{n - len(pending)}/{n}]")
    return combined_scores(tracking_uri, sweep, flag, key=key, chosen=chosen, invert=invert)


def _result(ref) -> SourceScores:
    """``ray.get`` that re-raises a task's input error as itself (file and field named)."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, MedxferInputError):
            raise exc.cause from None
        raise


def combined_scores(tracking_uri: str, sweep: str, target: str, *, key: str,
                    chosen: tuple[str, ...], invert: tuple[str, ...] = ()) -> dict[str, float]:
    """``{source: score}`` on ``target`` from the estimate runs of ``transferability/<sweep>``:
    the ``chosen`` metrics prepared as ``estimate evaluate`` does, combined by rank-based normal
    scores (one metric: its normal scores, the same order as its values). NaN: no score."""
    from medxfer.transferability.evaluation import prepare_scores
    from medxfer.transferability.scores_io import read_scores_mlflow
    from medxfer.tune.joint_prior import combine_scores
    from medxfer.tune.zoo_sweep import KEYS

    tables = prepare_scores(read_scores_mlflow(tracking_uri, sweep, benchmark=KEYS[key]),
                            invert=invert)
    missing = [m for m in chosen if m not in tables]
    if missing:
        raise MedxferInputError(f"search.sources.metric: no source got a {', '.join(missing)} "
                                "score (skipped for every source: see the estimate runs' "
                                f"medxfer.skip_reason in transferability/{sweep})")
    combined = combine_scores({m: tables[m][[target]] for m in chosen})
    return {str(s): float(v) if math.isfinite(v) else math.nan
            for s, v in combined[target].items()}
