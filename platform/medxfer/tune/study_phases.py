"""The phases of a study run (:mod:`medxfer.tune.study`), each one Ray Tune experiment under the
study's folder, resumable:

* ``search`` / ``search-<cell>``: each training cell's hyperparameters from a sweep on its
  validation rows (no test rows are built for these trials); ``search_chosen.json``;
* ``train``: a grid over the training cells; each cell's model files go to ``models/<cell>/``;
* ``transfer``: a grid over the few-shot cells, each fine-tuning its training cell's model.

A phase whose trials all finished leaves ``<phase>.done.json`` and is skipped on resume; an
interrupted one is restored with ``Tuner.restore`` (unfinished and errored trials run).
Trials run the cell's experiment through :func:`medxfer.train.launcher.run_trial`, so
``scaling`` decides per trial: the fast path takes one CPU, a ``TorchTrainer`` trial a
``trial_slot`` and its workers' CPUs/GPUs.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medxfer.tune.study_config import Study, cell_config, cell_key, slug
from medxfer.tune.study_preflight import StudyPlan

log = logging.getLogger(__name__)

CHOSEN = "search_chosen.json"
#: Files of a training cell's final checkpoint that a transfer cell may start from.
MODEL_FILES = ("model.pt", "encoder.pt", "dce.pt", "scc/dce.pt")


def _resources(configs: dict[str, dict]):
    """Per trial from its cell's ``scaling`` (:func:`medxfer.tune.sweep.trial_resources`)."""
    from ray.tune import PlacementGroupFactory

    from medxfer.tune.sweep import trial_resources

    def resources(config: dict) -> PlacementGroupFactory:
        return PlacementGroupFactory([trial_resources(configs[cell_key(config["cell"])])])

    return resources


def make_cell_fn(configs: dict[str, dict]):
    """The Tune function trainable of a cell grid: the cell's experiment, run by
    :func:`medxfer.train.launcher.run_trial`. Picklable; the launcher is imported in the trial."""

    def medxfer_cell(config: dict) -> None:
        from medxfer.train.launcher import run_trial

        run_trial(configs[cell_key(config["cell"])])

    return medxfer_cell


def _fast(configs) -> bool:
    from medxfer.tune.sweep import trial_resources

    return all(trial_resources(c).get("CPU", 0) > 0 for c in configs)


def _fit(run: PhaseRun, tuner):
    """``tuner.fit()``; a phase the watchdog stopped ends the study (its runs KILLED, the
    driver's own frozen raylet stopped so the shutdown cannot hang) with the ``--resume``
    command, instead of going on to the next phase."""
    from medxfer.tracking.store import client as mlflow_client
    from medxfer.tune.stalled import clear_stalled, end_if_stalled, stalled_error

    client = mlflow_client(run.uri)
    clear_stalled(client, client.get_run(run.parent_id))  # a resumed study runs again
    results = tuner.fit()
    if end_if_stalled(client, run.exp_id, run.parent_id):
        from medxfer.cluster_config import stop_own_raylets

        stop_own_raylets()
        raise stalled_error(client, run.parent_id, run.name, run.study.path, run.uri,
                            run.address, run.num_cpus, verb="study")
    return results


def _tuner(path: Path, fn, new_tuner):
    """``Tuner.restore`` of an interrupted phase (unfinished and errored trials run), else a
    new one."""
    from ray import tune

    if tune.Tuner.can_restore(str(path)):
        log.info("resuming %s", path)
        return tune.Tuner.restore(str(path), trainable=fn, resume_errored=True)
    return new_tuner()


# ---------------------------------------------------------------------------- phases


@dataclass
class PhaseRun:
    """What every phase needs."""

    study: Study
    plan: StudyPlan
    name: str
    dir: Path
    uri: str
    exp_id: str
    parent_id: str
    verbose: int
    #: how the driver reached Ray (``--address``, ``--num-cpus``): the resume line repeats them
    address: str | None = None
    num_cpus: int | None = None
    n_trials: int = 0
    n_errored: int = 0
    concurrency: dict[str, int] = field(default_factory=dict)

    def callback(self, **kw):
        from medxfer.tune.study_callback import StudyCallback

        return StudyCallback(self.uri, self.exp_id, self.name, self.parent_id, **kw)

    def watchdog(self) -> list:
        """The stall watchdog of a sweep (:mod:`medxfer.tune.stall`) for a phase's Tuner:
        ``search.stall_timeout_s`` of the study's search, else the default (300 s)."""
        import functools

        from medxfer.tune.stall import DEFAULT_STALL_TIMEOUT_S, StallCallback
        from medxfer.tune.stalled import mark_stalled

        s = self.study.search
        timeout = s.stall_timeout_s if s is not None else DEFAULT_STALL_TIMEOUT_S
        if timeout is None:
            return []
        return [StallCallback(timeout, functools.partial(mark_stalled, self.uri,
                                                         self.parent_id))]

    def count(self, phase: str, results) -> None:
        self.n_trials += len(results)
        self.n_errored += sum(1 for r in results if r.error is not None)
        self.concurrency[phase] = max(self.concurrency.get(phase, 0), _overlap(results))


#: Tune's result ``timestamp`` is whole seconds (``int(time.mktime(now))``): a trial's end is
#: known to within this, so spans that overlap by less cannot be told from back-to-back trials.
TIMESTAMP_RESOLUTION_S = 1.0


def _overlap(results) -> int:
    """Most trials of ``results`` that ran at the same time (from Tune's result timestamps).

    Each trial spans ``[timestamp - time_total_s, timestamp]`` with ``timestamp`` truncated to the
    second, so every start is moved :data:`TIMESTAMP_RESOLUTION_S` later (never past its end):
    back-to-back short trials are otherwise counted as running together."""
    spans = []
    for r in results:
        df = getattr(r, "metrics_dataframe", None)
        if df is not None and len(df) and "timestamp" in df and "time_total_s" in df:
            end = float(df["timestamp"].max())
            start = end - float(df["time_total_s"].max()) + TIMESTAMP_RESOLUTION_S
            spans.append((min(start, end), end))
    # at equal times an end (-1) sorts before a start (+1): touching spans do not overlap
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    best = cur = 0
    for _, d in edges:
        cur += d
        best = max(best, cur)
    return best


def _grid(run: PhaseRun, phase: str, cells, configs: dict[str, dict], chosen=None):
    from ray import tune

    p = run.study.protocol
    fn = tune.with_resources(make_cell_fn(configs), _resources(configs))

    def new():
        return tune.Tuner(
            fn, param_space={"cell": tune.grid_search([c.model_dump() for c in cells])},
            tune_config=tune.TuneConfig(max_concurrent_trials=p.max_concurrent,
                                        reuse_actors=_fast(configs.values())),
            run_config=tune.RunConfig(
                name=phase, storage_path=str(run.dir), verbose=run.verbose,
                callbacks=[run.callback(phase=phase, configs=configs, chosen=chosen),
                           *run.watchdog()],
                failure_config=tune.FailureConfig(max_failures=p.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2)))

    results = _fit(run, _tuner(run.dir / phase, fn, new))
    run.count(phase, results)
    return results


def done(run: PhaseRun, phase: str) -> bool:
    return (run.dir / f"{phase}.done.json").is_file()


def _mark_done(run: PhaseRun, phase: str, results) -> None:
    if all(r.error is None for r in results):
        (run.dir / f"{phase}.done.json").write_text(json.dumps(
            {"cells": len(results), "finished": time.time()}))


def make_search_fn(bases: dict[str, dict]):
    """The Tune function trainable of a joint search: the searched cell's experiment (trial
    config ``cell``) with the sampled values merged in. Picklable."""

    def medxfer_search(config: dict) -> None:
        from medxfer.train.launcher import run_trial
        from medxfer.tune.trainables import merge_sampled

        sampled = {k: v for k, v in config.items() if k != "cell"}
        run_trial(merge_sampled(bases[cell_key(config["cell"])], sampled))

    return medxfer_search


def _search_tuner(run: PhaseRun, name: str, fn, setup, callback, fast: bool):
    from ray import tune

    from medxfer.tune.search import make_scheduler, make_stopper

    s = run.study.search

    def new():
        return tune.Tuner(
            fn, param_space=setup.param_space,
            tune_config=tune.TuneConfig(
                metric=s.metric, mode=s.mode, search_alg=setup.search_alg,
                scheduler=make_scheduler(s), num_samples=setup.num_samples,
                max_concurrent_trials=s.max_concurrent, reuse_actors=fast),
            run_config=tune.RunConfig(
                name=name, storage_path=str(run.dir), callbacks=[callback, *run.watchdog()],
                stop=make_stopper(s), verbose=run.verbose,
                failure_config=tune.FailureConfig(max_failures=s.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=s.checkpoints_to_keep)))

    results = _fit(run, _tuner(run.dir / name, fn, new))
    run.count("search", results)
    return results


def _best(run: PhaseRun, results, callback) -> dict[str, Any] | None:
    """The result with the best ``search.metric`` as ``{config, value, metric, run_id}``."""
    s = run.study.search
    scored = [r for r in results if r.error is None and s.metric in (r.metrics or {})]
    if not scored:
        return None
    sign = 1 if s.mode == "min" else -1
    best = min(scored, key=lambda r: sign * float(r.metrics[s.metric]))
    found = callback.find_child(best.metrics["trial_id"])
    return {"config": {k: v for k, v in best.config.items() if k != "cell"},
            "value": float(best.metrics[s.metric]), "metric": s.metric,
            "run_id": found.info.run_id if found else None}


def search(run: PhaseRun) -> dict[str, Any]:
    """Per training cell, the best configuration of a sweep on its validation rows: one Tune
    experiment over cells x grid for ``search.algorithm: grid`` (cells in parallel), else one
    per cell (a searcher learns from one cell's trials)."""
    from ray import tune

    from medxfer.tune.search import make_searcher
    from medxfer.tune.sweep import trial_resources
    from medxfer.tune.trainables import make_trial_fn

    s = run.study.search
    path = run.dir / CHOSEN
    chosen = json.loads(path.read_text()) if path.is_file() else {}
    todo = [c for c in run.plan.train if cell_key(c) not in chosen]
    searched = {cell_key(c): c.model_copy(update={"phase": "search"}) for c in todo}
    bases = {cell_key(c): cell_config(run.study, c) for c in searched.values()}
    flag = run.plan.id_name
    if todo and s.algorithm == "grid":
        setup = make_searcher(s, tracking_uri=run.uri, target=flag)
        setup.param_space = {**setup.param_space, "cell": tune.grid_search(
            [c.model_dump() for c in searched.values()])}
        fn = tune.with_resources(make_search_fn(bases), _resources(bases))
        callback = run.callback(phase="search", configs=bases)
        results = _search_tuner(run, "search", fn, setup, callback, _fast(bases.values()))
        for key, cell in searched.items():
            mine = [r for r in results if cell_key(r.config["cell"]) == cell_key(cell)]
            if (best := _best(run, mine, callback)) is not None:
                chosen[key] = best
    else:
        for key, cell in searched.items():
            base = bases[cell_key(cell)]
            setup = make_searcher(s, tracking_uri=run.uri, target=flag)
            fn = tune.with_resources(make_trial_fn(None, base), trial_resources(base))
            callback = run.callback(phase="search", base_config=base)
            results = _search_tuner(run, f"search-{slug(key)}", fn, setup, callback,
                                    _fast([base]))
            if (best := _best(run, results, callback)) is not None:
                chosen[key] = best
            path.write_text(json.dumps(chosen, indent=1, default=str))
    missing = [cell_key(c) for c in todo if cell_key(c) not in chosen]
    if missing:
        log.warning("search: no trial of %s reported %s; they run as configured", missing,
                    s.metric)
    path.write_text(json.dumps(chosen, indent=1, default=str))
    return chosen


def _copy_models(run: PhaseRun, results) -> None:
    """Each finished training cell's model files to ``models/<cell>/`` (transfer's input)."""
    for r in results:
        if r.error is not None or r.checkpoint is None:
            continue
        dest = run.dir / "models" / slug(cell_key(r.config["cell"]))
        dest.mkdir(parents=True, exist_ok=True)
        with r.checkpoint.as_directory() as d:
            for name in MODEL_FILES:
                if (Path(d) / name).is_file():
                    shutil.copy2(Path(d) / name, dest / Path(name).name)


def train(run: PhaseRun, chosen: dict[str, Any]) -> None:
    cells = run.plan.train
    configs = {cell_key(c): cell_config(run.study, c, chosen=(chosen.get(cell_key(c)) or
                                                             {}).get("config"))
               for c in cells}
    results = _grid(run, "train", cells, configs, chosen)
    _copy_models(run, results)
    _mark_done(run, "train", results)


def transfer(run: PhaseRun) -> None:
    configs, cells = {}, []
    for cell in run.plan.transfer:
        trained = run.plan.trained_by(cell)
        model_dir = run.dir / "models" / slug(cell_key(trained))
        if not model_dir.is_dir():
            log.warning("%s: its training cell %s has no model; skipped", cell_key(cell),
                        cell_key(trained))
            continue
        configs[cell_key(cell)] = cell_config(run.study, cell, model_dir=model_dir)
        cells.append(cell)
    if cells:
        _mark_done(run, "transfer", _grid(run, "transfer", cells, configs))
