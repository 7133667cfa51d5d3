"""Run a sweep: Ray Tune over an experiment's search space, every trial an MLflow child run.

:func:`run_sweep` is what ``medxfer sweep`` calls:

1. resolve the tracking URI (absolute) and create the store and experiment ``sweep/<name>``
   once, in this process, before any trial starts; find or create the parent run;
2. start (or join) Ray: ``--address`` connects to a cluster, else a local runtime with
   ``num_cpus`` CPUs and ``trial_slot`` resources;
3. wrap the trainable (:mod:`medxfer.tune.trainables`; the configured method through
   :func:`medxfer.train.launcher.run_trial`): single-CPU-worker trials run the method directly
   in the function trainable with ``{"CPU": 1}``; several workers or GPUs run a 0-CPU trial
   driver holding one ``trial_slot`` so the ``TorchTrainer``'s workers can be scheduled
   (RAY-MLFLOW-NOTES.md);
4. ``Tuner(...).fit()`` — or ``Tuner.restore(..., resume_errored=True)`` with ``resume`` — with
   :class:`~medxfer.tune.mlflow_callback.MlflowSweepCallback` writing the child runs from the
   driver, ``FailureConfig(max_failures)`` retrying trials from their last checkpoint;
5. log the result (the ground-truth row of ``medxfer.tracking.query``, best config) to the
   parent run and return it.

With ``search.sources`` the source model is searched too: the zoo is scored once Ray is up,
before the first trial, and the ``joint`` searcher proposes (source, configuration) pairs
(:mod:`medxfer.tune.zoo_sweep`).

The effective experiment (config + search, after ``--smoke-test``) is saved as
``<storage_path>/<name>/medxfer_sweep.json``; ``--resume`` reads it from there, so a resumed
sweep runs exactly what the interrupted one started.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from medxfer.cluster_config import start_ray
from medxfer.errors import MedxferInputError
from medxfer.tracking import schema
from medxfer.tune import zoo_sweep
from medxfer.tune.experiment import (Experiment, experiment_from_dict, safe_name, scaling_of,
                                     trial_params)

if TYPE_CHECKING:
    from medxfer.tune.zoo_sweep import ZooSources

log = logging.getLogger(__name__)

SNAPSHOT = "medxfer_sweep.json"


@dataclass
class SweepResult:
    name: str
    experiment: str
    tracking_uri: str
    parent_run_id: str
    storage_dir: str
    n_trials: int
    n_errored: int
    seconds: float
    best: dict[str, Any] = field(default_factory=dict)       # ground-truth row
    best_config: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"sweep {self.name}: {self.n_trials} trials ({self.n_errored} errored) in "
                 f"{self.seconds:.1f} s",
                 f"MLflow: {self.tracking_uri} experiment {self.experiment} parent run "
                 f"{self.parent_run_id}",
                 f"Tune: {self.storage_dir}"]
        if self.best:
            b = self.best
            lines.append(f"ground truth: source={b.get('source')} target={b.get('target')} "
                         f"arch={b.get('arch')} method={b.get('method')} "
                         f"{b.get('metric')}={b.get('value'):.4f} (selected by "
                         f"{b.get('select_by')}={b.get('select_value'):.4f}, run "
                         f"{b.get('run_id')})")
            lines.append("best config: " + json.dumps(self.best_config, sort_keys=True))
        return "\n".join(lines)


# --------------------------------------------------------------------------- names and paths


def default_name(exp: Experiment) -> str:
    return safe_name(f"{exp.default_name}-{datetime.now():%Y%m%d-%H%M%S}")


def latest_sweep_dir(storage: Path, stem: str) -> Optional[Path]:
    cands = [p for p in storage.glob(f"{stem}*") if (p / SNAPSHOT).is_file()]
    return max(cands, key=lambda p: (p / SNAPSHOT).stat().st_mtime) if cands else None


def _snapshot(exp: Experiment) -> dict:
    return {"config": exp.config, "search": exp.search.model_dump(mode="json"),
            "source": str(exp.path) if exp.path else None}


def _from_snapshot(path: Path) -> Experiment:
    snap = json.loads(path.read_text())
    raw = dict(snap["config"])
    raw["search"] = snap["search"]
    exp = experiment_from_dict(raw, source=str(path))
    exp.config = snap["config"]
    return exp


# --------------------------------------------------------------------------- MLflow parent


def _find_parent(client, exp_id: str, name: str):
    runs = client.search_runs([exp_id], filter_string=(
        f"tags.`{schema.KIND}` = '{schema.KIND_SWEEP}' and tags.`{schema.SWEEP}` = '{name}'"),
        max_results=5)
    return runs[0] if runs else None


def _target(exp: Experiment) -> str | None:
    """The experiment's target (``data.flag``): what a warm-start prior leaves out."""
    return str((exp.config.get("data") or {}).get("flag") or "") or None


def _row(exp: Experiment) -> str | None:
    """The benchmark row of the sweep's trials (``medxfer.source``, or ``medxfer.arch`` for an
    architecture prior): the prior's logged tasks of that row weigh more."""
    from medxfer.tune.experiment import schema_tags

    ws = exp.search.warmstart
    arch = ws is not None and ws.benchmark_kind == "architecture"
    return schema_tags(exp.config).get(schema.ARCH if arch else schema.SOURCE)


def _create_parent(client, exp_id: str, name: str, exp: Experiment) -> str:
    from mlflow.entities import Param

    from medxfer.tune.experiment import schema_tags
    from medxfer.tune.space import expected_trials

    tags = {schema.KIND: schema.KIND_SWEEP, schema.SWEEP: name, **schema_tags(exp.config)}
    run = client.create_run(exp_id, tags=tags, run_name=name)
    s = exp.search
    params = trial_params(exp.config, {})
    params.update({"search.algorithm": s.algorithm, "search.metric": s.metric,
                   "search.mode": s.mode, "search.num_samples": str(s.num_samples),
                   "search.trials": str(expected_trials(s)),
                   "search.max_concurrent": str(s.max_concurrent),
                   "search.max_failures": str(s.max_failures), "search.seed": str(s.seed),
                   "search.select_by": s.select_by, "search.select_mode": s.select_mode})
    if s.searcher.uses_prior and (s.warmstart is not None or s.sources is None):
        ws = s.warmstart
        params.update({
            "search.warmstart.benchmark": str(ws.benchmark if ws else None),
            "search.warmstart.benchmark_kind": ws.benchmark_kind if ws else "dataset",
            "search.warmstart.target": str((ws.target if ws else None) or _target(exp)),
            "search.warmstart.params": ",".join(f"{p}:{k}" for p, k in
                                                s.warmstart_params().items())})
    client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()])
    client.log_dict(run.info.run_id, {"config": exp.config,
                                      "search": s.model_dump(mode="json")}, "experiment.json")
    return run.info.run_id


def _finish_parent(client, uri: str, experiment: str, parent_id: str, exp: Experiment,
                   results, n_errored: int) -> tuple[dict, dict]:
    from mlflow.entities import Metric, RunTag

    from medxfer.tracking.query import selected_runs
    from medxfer.tune.experiment import schema_tags

    tags = schema_tags(exp.config)
    bench = tags.get(schema.BENCHMARK, schema.BENCHMARK_DATASET)
    s = exp.search
    rows = selected_runs(uri, experiment, benchmark=bench, metric="test_auc",
                         select_by=s.select_by, mode=s.select_mode)
    best: dict[str, Any] = {}
    best_config: dict[str, Any] = {}
    if not rows.empty:
        # A sweep normally has one (source, target); if it spans several, report the best.
        r = rows.sort_values("select_by", ascending=s.select_mode == "min").iloc[0]
        run = client.get_run(r["run_id"])
        t = run.data.tags
        trial_id = t.get(schema.TRIAL_ID)
        best = {"source": t.get(schema.SOURCE), "target": t.get(schema.TARGET),
                "arch": t.get(schema.ARCH), "method": t.get(schema.METHOD),
                "metric": "test_auc", "value": float(r["value"]), "select_by": s.select_by,
                "select_value": float(r["select_by"]), "run_id": r["run_id"],
                "trial_id": trial_id, "n_runs": int(r["n_runs"])}
        for res in results:
            if (res.metrics or {}).get("trial_id") == trial_id:
                best_config = dict(res.config)
        if not best_config:
            best_config = {k: v for k, v in run.data.params.items()}
        ts = int(time.time() * 1000)
        client.log_batch(parent_id, metrics=[
            Metric("best_test_auc", best["value"], ts, 0),
            Metric(f"best_{s.select_by}", best["select_value"], ts, 0)], tags=[
            RunTag(schema.BEST_RUN_ID, best["run_id"]),
            RunTag(schema.BEST_TRIAL_ID, str(trial_id))])
        client.log_dict(parent_id, {"ground_truth": best, "best_config": best_config,
                                    "all_pairs": rows.to_dict(orient="records")},
                        "sweep_result.json")
    client.log_batch(parent_id, metrics=[
        Metric("trials", float(len(results)), int(time.time() * 1000), 0),
        Metric("trials_errored", float(n_errored), int(time.time() * 1000), 0)])
    client.set_terminated(parent_id, "FINISHED" if n_errored < len(results) else "FAILED")
    return best, best_config


def _end_open_runs(client, exp_id: str, parent_id: str, exc: BaseException) -> None:
    """The driver stopped on ``exc``: no run of this sweep may stay RUNNING. The parent and its
    open children end KILLED (Ctrl-C, a stall) or FAILED; ``--resume`` sets them running
    again."""
    from medxfer.tune.stall import SweepStalledInLoop
    from medxfer.tune.stalled import SweepStalled

    stopped = (KeyboardInterrupt, SweepStalled, SweepStalledInLoop)  # stopped, not broken
    status = "KILLED" if isinstance(exc, stopped) else "FAILED"
    try:
        children = client.search_runs([exp_id], filter_string=(
            f"tags.`{schema.PARENT_RUN_ID}` = '{parent_id}' and attributes.status = 'RUNNING'"),
            max_results=10000)
        for run in children:
            client.set_terminated(run.info.run_id, status)
        client.set_terminated(parent_id, status)
    except Exception:  # noqa: BLE001 - the store may be what failed; keep the first error
        log.warning("sweep: could not mark the runs of parent %s %s", parent_id, status,
                    exc_info=True)


def _preflight(exp: Experiment, tracking_uri: str | None, trainable) -> None:
    """Bad input fails here, once, before Ray starts or a run is written (a caller's own
    ``trainable`` reads none of the config's data, so only the store and space are checked)."""
    from medxfer.tune.preflight import check_experiment

    check_experiment(exp.config, source=str(exp.path) if exp.path else None,
                     space=exp.search.space, sweep=True, cli_tracking_uri=tracking_uri,
                     inputs=trainable is None)


def trial_resources(config: dict) -> dict[str, float]:
    """The fast path takes one CPU; a TorchTrainer trial driver takes 0 CPUs + a trial slot."""
    workers, use_gpu = scaling_of(config)
    if workers > 1 or use_gpu:
        return {"CPU": 0, "trial_slot": 1}
    return {"CPU": 1}


# --------------------------------------------------------------------------- the sweep


def run_sweep(exp: Experiment | None = None, *, name: str | None = None,
              tracking_uri: str | None = None, address: str | None = None,
              resume: bool = False, trainable: Callable[[dict], None] | None = None,
              num_cpus: int | None = None, verbose: int = 1,
              storage_path: str | None = None,
              sources: ZooSources | None = None) -> SweepResult:
    """Run (or ``resume``) a sweep and return its result (see module docstring).

    ``trainable``: what each trial runs, ``fn(config)`` with the contract of
    :func:`medxfer.train.launcher.run_trial` (the default: the configured method). A resumed
    sweep must be given the same one. ``sources``: the zoo of ``search.sources``
    (:mod:`medxfer.tune.zoo_sweep`; built by the layer that scores zoos), scored once Ray is
    up and before the first trial; not needed to resume.
    """
    t0 = time.monotonic()
    if exp is None and not resume:
        raise MedxferInputError("an experiment is needed unless resuming")
    if not resume:  # before Ray or MLflow is imported
        _preflight(exp, tracking_uri, trainable)

    from ray import tune

    from medxfer.tracking.store import client as mlflow_client, ensure_experiment
    from medxfer.tracking.uri import resolve_tracking_uri
    from medxfer.tune.mlflow_callback import MlflowSweepCallback
    from medxfer.tune.search import make_scheduler, make_searcher, make_stopper
    from medxfer.tune.stall import StallCallback
    from medxfer.tune.stalled import clear_stalled, end_if_stalled, mark_stalled, stalled_error
    from medxfer.tune.trainables import make_trial_fn

    storage = Path(storage_path or (exp.search.resolved_storage_path() if exp else
                                    Path("ray_results").resolve()))
    if resume:
        if name:
            sweep_dir = storage / safe_name(name)
        else:
            stem = safe_name(exp.default_name) if exp else ""
            sweep_dir = latest_sweep_dir(storage, stem)
            if sweep_dir is None:
                raise MedxferInputError(f"--resume: no sweep '{stem}*' under {storage}; pass "
                                        "--name", field="name")
        if not (sweep_dir / SNAPSHOT).is_file() or not tune.Tuner.can_restore(str(sweep_dir)):
            raise MedxferInputError(f"--resume: no restorable sweep at {sweep_dir}",
                                    field="name")
        exp = _from_snapshot(sweep_dir / SNAPSHOT)
        name = sweep_dir.name
        _preflight(exp, tracking_uri, trainable)
    else:
        name = safe_name(name) if name else default_name(exp)
        sweep_dir = storage / name
        if tune.Tuner.can_restore(str(sweep_dir)):
            raise MedxferInputError(f"sweep {name!r} already exists at {sweep_dir}; continue it "
                                    "with --resume or choose another --name", field="name")
    assert exp is not None

    cfg_tracking = exp.config.get("tracking") or {}
    uri = resolve_tracking_uri(tracking_uri, cfg_tracking.get("uri"))
    plan = None
    if not resume:
        # Before anything is recorded: a searcher that cannot be built (e.g. a warm-start
        # benchmark missing from the store) leaves no half-made sweep behind.
        try:
            if exp.search.sources is None:
                setup = make_searcher(exp.search, tracking_uri=uri, target=_target(exp),
                                      row=_row(exp))
            else:
                plan = zoo_sweep.prepare(exp.search, sources, tracking_uri=uri,
                                         target=_target(exp))
        except MedxferInputError as exc:
            if exp.path is None:
                raise
            raise MedxferInputError(str(exc), path=str(exp.path)) from None
    experiment = schema.experiment_name("sweep", name)
    artifact_root = cfg_tracking.get("artifact_root")
    if artifact_root and "://" not in artifact_root:
        artifact_root = str(Path(artifact_root).expanduser().resolve())
    exp_id = ensure_experiment(uri, experiment, artifact_root=artifact_root)
    client = mlflow_client(uri)

    parent = _find_parent(client, exp_id, name)
    if parent is not None and not resume:
        raise MedxferInputError(f"{experiment} in {uri} already has a sweep run; resume it with "
                                "--resume or choose another --name", field="name")
    parent_id = (parent.info.run_id if parent is not None
                 else _create_parent(client, exp_id, name, exp))
    if parent is not None and parent.info.status != "RUNNING":
        client.update_run(parent_id, status="RUNNING")

    if parent is not None:
        clear_stalled(client, parent)

    s = exp.search
    started = False
    try:
        started = start_ray(address, num_cpus, s.max_concurrent)
        if plan is not None:  # score the zoo (Ray tasks), then the joint searcher
            try:
                setup = plan.searcher(name, uri, parent_run_id=parent_id)
            except BaseException:
                client.delete_run(parent_id)  # no trial ran: the name stays free
                parent_id = None
                raise
        resources = trial_resources(exp.config)
        fn = tune.with_resources(make_trial_fn(trainable, exp.config), resources)
        if resume:
            tuner = tune.Tuner.restore(str(sweep_dir), trainable=fn, resume_errored=True)
        else:
            sweep_dir.mkdir(parents=True, exist_ok=True)
            (sweep_dir / SNAPSHOT).write_text(json.dumps(_snapshot(exp), indent=1,
                                                         default=str))
            callbacks = [MlflowSweepCallback(uri, exp_id, name, parent_id, exp.config,
                                             s.select_by, s.select_mode)]
            if s.stall_timeout_s is not None:
                callbacks.append(StallCallback(s.stall_timeout_s, functools.partial(
                    mark_stalled, uri, parent_id)))
            tuner = tune.Tuner(
                fn, param_space=setup.param_space,
                tune_config=tune.TuneConfig(
                    metric=s.metric, mode=s.mode, search_alg=setup.search_alg,
                    scheduler=make_scheduler(s), num_samples=setup.num_samples,
                    max_concurrent_trials=s.max_concurrent,
                    reuse_actors=resources.get("CPU", 0) > 0),
                run_config=tune.RunConfig(
                    name=name, storage_path=str(storage), callbacks=callbacks,
                    stop=make_stopper(s), verbose=verbose,
                    failure_config=tune.FailureConfig(max_failures=s.max_failures),
                    checkpoint_config=tune.CheckpointConfig(
                        num_to_keep=s.checkpoints_to_keep)))
        log.info("sweep %s: resume with `medxfer sweep %s --name %s --resume`", name,
                 exp.path or "CONFIG", name)
        results = tuner.fit()
    except BaseException as exc:
        if parent_id is not None:
            _end_open_runs(client, exp_id, parent_id, exc)
        raise
    finally:
        # The stall is recorded before the shutdown, which a frozen node may hold up.
        stalled = (s.stall_timeout_s is not None and parent_id is not None
                   and end_if_stalled(client, exp_id, parent_id))
        if started:
            import ray

            if stalled:  # ray.shutdown() would wait for a frozen raylet
                from medxfer.cluster_config import stop_own_raylets

                stop_own_raylets()
            ray.shutdown()
        if stalled:  # replaces the watchdog's SweepStalledInLoop, if fit() raised it
            raise stalled_error(client, parent_id, name, exp.path, uri, address, num_cpus)
    n_errored = sum(1 for r in results if r.error is not None)
    try:
        best, best_config = _finish_parent(client, uri, experiment, parent_id, exp, results,
                                           n_errored)
    except BaseException as exc:
        if parent_id is not None:
            _end_open_runs(client, exp_id, parent_id, exc)
        raise
    return SweepResult(name=name, experiment=experiment, tracking_uri=uri,
                       parent_run_id=parent_id, storage_dir=str(sweep_dir),
                       n_trials=len(results), n_errored=n_errored,
                       seconds=time.monotonic() - t0, best=best, best_config=best_config)
