"""Run a study: its cells as Ray Tune trials, every cell an MLflow child run of the study's run.

:func:`run_study` is what ``medxfer study`` calls:

1. :func:`~medxfer.tune.study_preflight.preflight` checks the protocol against the data and
   expands the cells, before anything is written or Ray starts;
2. the experiment ``study/<name>`` and its parent run (``medxfer.kind=study``) are created (or
   found, with ``resume``) in this process; Ray starts (or ``--address`` joins a cluster);
3. phases, each one Tune experiment under ``<protocol.storage_path>/<name>/``:

   * ``search`` (only with a ``search:`` section): per training cell a sweep of its
     hyperparameters (the registered searcher of ``search.algorithm``), each trial training on
     the cell's training rows and scored on its validation rows only (no test set is built);
     the best ``search.metric`` gives the cell's configuration (``search_chosen.json``). A
     grid search is one Tune experiment over cells x grid (cells in parallel); other searchers
     run one experiment per cell (``search-<cell>``), since they learn from its trials;
   * ``train``: a grid over the training cells (rows x folds x label fractions x seeds), each
     trial the row's method through :func:`medxfer.train.launcher.run_trial` (``scaling``
     per trial: the fast path takes one CPU, a ``TorchTrainer`` trial a ``trial_slot`` and
     its workers' CPUs/GPUs), evaluated on its test part and, zero-shot, on every test set's;
     each cell's saved model is copied to ``models/<cell>/``;
   * ``transfer`` (with ``few_shot``): a grid over the few-shot cells, ``finetune`` from the
     training cell's model on a fraction of a test set's training part;

4. the cells' runs are read back (:func:`cell_records`) for the table (``medxfer.reports``).

Every phase resumes: ``resume`` restores an interrupted phase with ``Tuner.restore`` (only
unfinished and errored trials run) and skips finished ones (``<phase>.done.json``); cells keep
their MLflow runs (:mod:`medxfer.tune.study_callback`), so each is recorded once. The study as
started is saved as ``medxfer_study.json`` and a resume runs that.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medxfer.errors import MedxferInputError
from medxfer.tracking import schema
from medxfer.tune.experiment import safe_name, schema_tags
from medxfer.tune.study_config import (Study, cell_config, cell_key, slug, study_from_dict)
from medxfer.tune.study_preflight import StudyPlan, preflight

log = logging.getLogger(__name__)

SNAPSHOT = "medxfer_study.json"
CHOSEN = "search_chosen.json"
#: Files of a training cell's final checkpoint that a transfer cell may start from.
MODEL_FILES = ("model.pt", "encoder.pt", "dce.pt", "scc/dce.pt")


@dataclass
class StudyResult:
    """What :func:`run_study` did; ``records``: the cells' runs (:func:`cell_records`)."""

    name: str
    experiment: str
    tracking_uri: str
    parent_run_id: str
    storage_dir: str
    records: list[dict]
    n_trials: int
    n_errored: int
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)
    chosen: dict[str, Any] = field(default_factory=dict)
    concurrency: dict[str, int] = field(default_factory=dict)


# ----------------------------------------------------------------------- MLflow parent


def _find_parent(client, exp_id: str, name: str):
    runs = client.search_runs([exp_id], filter_string=(
        f"tags.`{schema.KIND}` = '{schema.KIND_STUDY}' and tags.`{schema.STUDY}` = '{name}'"),
        max_results=5)
    return runs[0] if runs else None


def _create_parent(client, exp_id: str, name: str, study: Study, plan: StudyPlan) -> str:
    from mlflow.entities import Param

    tags = {schema.KIND: schema.KIND_STUDY, schema.STUDY: name,
            **{k: v for k, v in schema_tags(study.rows[0].config).items()
               if k != schema.METHOD}}
    run = client.create_run(exp_id, tags=tags, run_name=name)
    p = study.protocol
    params = {"rows": ",".join(r.name for r in study.rows),
              "methods": ",".join(r.config["method"] for r in study.rows),
              "cells.train": str(len(plan.train)), "cells.transfer": str(len(plan.transfer)),
              "protocol.folds": str(p.cv.folds if p.cv else len(plan.sites or [])),
              "protocol.split": ("cv" if p.cv else "leave_one_site_out"
                                 if p.leave_one_site_out else "own"),
              "protocol.seeds": ",".join(map(str, p.seeds)),
              "protocol.test_sets": ",".join(p.test_sets) or "-",
              "protocol.metric": p.metric, "search": str(study.search is not None)}
    if p.label_fractions or p.n_labelled:
        params["protocol.labels"] = ",".join(map(str, p.label_fractions or p.n_labelled))
    if p.few_shot:
        params["protocol.few_shot"] = ",".join(f"{f:g}" for f in p.few_shot.fractions)
    client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()])
    client.log_dict(run.info.run_id, study.raw, "study.json")
    return run.info.run_id


def cell_records(tracking_uri: str, experiment_id: str, parent_run_id: str) -> list[dict]:
    """The study's cell runs: coordinates (from the ``medxfer.cell.*`` tags), status and the
    latest value of each metric (the last step: the selected model)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=(
            f"tags.`{schema.PARENT_RUN_ID}` = '{parent_run_id}' and "
            f"tags.`{schema.KIND}` = '{schema.KIND_CELL}'"), max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            break
    out = []
    for r in runs:
        t = r.data.tags

        def num(key: str, cast, t=t):
            return None if t.get(key) is None else cast(t[key])

        out.append({"run_id": r.info.run_id, "status": r.info.status,
                    "key": t.get(schema.CELL_KEY), "row": t.get(schema.CELL_ROW),
                    "phase": t.get(schema.CELL_PHASE), "fold": num(schema.CELL_FOLD, int),
                    "fraction": num(schema.CELL_FRACTION, float),
                    "n_labelled": num(schema.CELL_N_LABELLED, int),
                    "test_set": t.get(schema.CELL_TEST_SET),
                    "seed": num(schema.CELL_SEED, int), "metrics": dict(r.data.metrics),
                    "params": dict(r.data.params)})
    return sorted(out, key=lambda r: r["key"] or "")


# ----------------------------------------------------------------------------- Ray


def _start_ray(address: str | None, num_cpus: int | None, slots: int) -> bool:
    """Connect or start Ray; True when this call started it (and so shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=True)
        return True
    from medxfer.cluster_config import TRIAL_SLOT, init_local_ray

    init_local_ray(num_cpus=num_cpus or os.cpu_count() or 1, resources={TRIAL_SLOT: slots},
                   object_store_memory=512 * 1024 * 1024)
    return True


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
class _Run:
    """What every phase needs."""

    study: Study
    plan: StudyPlan
    name: str
    dir: Path
    uri: str
    exp_id: str
    parent_id: str
    verbose: int
    n_trials: int = 0
    n_errored: int = 0
    concurrency: dict[str, int] = field(default_factory=dict)

    def callback(self, **kw):
        from medxfer.tune.study_callback import StudyCallback

        return StudyCallback(self.uri, self.exp_id, self.name, self.parent_id, **kw)

    def count(self, phase: str, results) -> None:
        self.n_trials += len(results)
        self.n_errored += sum(1 for r in results if r.error is not None)
        self.concurrency[phase] = max(self.concurrency.get(phase, 0), _overlap(results))


def _overlap(results) -> int:
    """Most trials of ``results`` that ran at the same time (from Tune's result timestamps)."""
    spans = []
    for r in results:
        df = getattr(r, "metrics_dataframe", None)
        if df is not None and len(df) and "timestamp" in df and "time_total_s" in df:
            end = float(df["timestamp"].max())
            spans.append((end - float(df["time_total_s"].max()), end))
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    best = cur = 0
    for _, d in edges:
        cur += d
        best = max(best, cur)
    return best


def _grid(run: _Run, phase: str, cells, configs: dict[str, dict], chosen=None):
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
                callbacks=[run.callback(phase=phase, configs=configs, chosen=chosen)],
                failure_config=tune.FailureConfig(max_failures=p.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2)))

    results = _tuner(run.dir / phase, fn, new).fit()
    run.count(phase, results)
    return results


def _done(run: _Run, phase: str) -> bool:
    return (run.dir / f"{phase}.done.json").is_file()


def _mark_done(run: _Run, phase: str, results) -> None:
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


def _search_tuner(run: _Run, name: str, fn, setup, callback, fast: bool):
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
                name=name, storage_path=str(run.dir), callbacks=[callback],
                stop=make_stopper(s), verbose=run.verbose,
                failure_config=tune.FailureConfig(max_failures=s.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=s.checkpoints_to_keep)))

    results = _tuner(run.dir / name, fn, new).fit()
    run.count("search", results)
    return results


def _best(run: _Run, results, callback) -> dict[str, Any] | None:
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


def _search(run: _Run) -> dict[str, Any]:
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


def _copy_models(run: _Run, results) -> None:
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


def _train(run: _Run, chosen: dict[str, Any]) -> None:
    cells = run.plan.train
    configs = {cell_key(c): cell_config(run.study, c, chosen=(chosen.get(cell_key(c)) or
                                                             {}).get("config"))
               for c in cells}
    results = _grid(run, "train", cells, configs, chosen)
    _copy_models(run, results)
    _mark_done(run, "train", results)


def _transfer(run: _Run) -> None:
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


# ------------------------------------------------------------------------------- entry


def _locate(study: Study | None, name: str | None, storage: Path | None,
            resume: bool) -> tuple[Study, str, Path]:
    if study is None:
        raise MedxferInputError("a study is needed (the YAML it was started from)")
    name = safe_name(name or study.default_name)
    root = Path(storage or study.protocol.storage_path)
    study_dir = root / name
    snap = study_dir / SNAPSHOT
    if resume:
        if not snap.is_file():
            raise MedxferInputError(f"--resume: no study {name!r} under {root} (expected "
                                    f"{snap}); pass the --name it was started with",
                                    field="name")
        saved = json.loads(snap.read_text())
        study = study_from_dict(saved["raw"], source=saved.get("source") or str(snap),
                                path=Path(saved["source"]) if saved.get("source") else None,
                                base_dir=saved.get("base_dir"))
    elif snap.is_file():
        raise MedxferInputError(f"study {name!r} already exists at {study_dir}; continue it "
                                "with --resume or choose another --name", field="name")
    return study, name, study_dir


def run_study(study: Study | None, *, name: str | None = None,
              tracking_uri: str | None = None, address: str | None = None,
              resume: bool = False, num_cpus: int | None = None, verbose: int = 1,
              storage_path: str | None = None) -> StudyResult:
    """Run (or ``resume``) a study and return its cells' records (module docstring).

    Raises:
        MedxferInputError: a protocol the data cannot satisfy, an existing study without
            ``resume`` (or a missing one with it), a bad tracking URI; before Ray starts.
    """
    import ray

    from medxfer.tracking.store import client as mlflow_client, ensure_experiment
    from medxfer.tracking.uri import resolve_tracking_uri

    t0 = time.monotonic()
    # many small trials checkpoint often; Tune's warning about it is noise here
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    study, name, study_dir = _locate(study, name, Path(storage_path) if storage_path else None,
                                     resume)
    plan = preflight(study)
    uri = resolve_tracking_uri(tracking_uri, study.rows[0].config["tracking"].get("uri"))
    experiment = schema.experiment_name("study", name)
    artifact_root = study.rows[0].config["tracking"].get("artifact_root")
    exp_id = ensure_experiment(uri, experiment, artifact_root=artifact_root)
    client = mlflow_client(uri)
    parent = _find_parent(client, exp_id, name)
    if parent is not None and not resume:
        raise MedxferInputError(f"{experiment} in {uri} already has a study run; resume it with "
                                "--resume or choose another --name", field="name")
    parent_id = parent.info.run_id if parent else _create_parent(client, exp_id, name, study,
                                                                 plan)
    if parent is not None and parent.info.status != "RUNNING":
        client.update_run(parent_id, status="RUNNING")
    study_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        (study_dir / SNAPSHOT).write_text(json.dumps({"raw": study.raw, "source": (
            str(study.path.resolve()) if study.path else None), "base_dir": str(Path.cwd())},
            indent=1, default=str))
    run = _Run(study, plan, name, study_dir, uri, exp_id, parent_id, verbose)
    phases: dict[str, float] = {}
    started = _start_ray(address, num_cpus, study.protocol.max_concurrent or 2)
    try:
        lap = time.monotonic()
        chosen = _search(run) if study.search is not None else {}
        phases["search"] = time.monotonic() - lap
        for phase, step in (("train", lambda: _train(run, chosen)), ("transfer",
                                                                     lambda: _transfer(run))):
            lap = time.monotonic()
            if not _done(run, phase):
                step()
            phases[phase] = time.monotonic() - lap
    finally:
        if started:
            ray.shutdown()
    log.info("study %s: resume with `medxfer study %s --name %s --resume`", name,
             study.source, name)
    return StudyResult(name, experiment, uri, parent_id, str(study_dir),
                       cell_records(uri, exp_id, parent_id), run.n_trials, run.n_errored,
                       time.monotonic() - t0, phases, chosen, run.concurrency)
