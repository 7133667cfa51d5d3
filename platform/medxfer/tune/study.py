"""Run a study: its cells as Ray Tune trials, every cell an MLflow child run of the study's run.

:func:`run_study` is what ``medxfer study`` calls:

1. a ``synthesize:`` section's data is written if its folder is absent
   (:func:`medxfer.data.synth_studies.ensure_synthetic`), then
   :func:`~medxfer.tune.study_preflight.preflight` checks the protocol against the data and
   expands the cells, before anything is written or Ray starts;
2. the experiment ``study/<name>`` and its parent run (``medxfer.kind=study``) are created (or
   found, with ``resume``) in this process; Ray starts (or ``--address`` joins a cluster);
3. the phases (:mod:`medxfer.tune.study_phases`), each one Tune experiment under
   ``<protocol.storage_path>/<name>/``: ``search`` (with a ``search:`` section: each training
   cell's hyperparameters from its validation rows), ``train`` (a grid over the training
   cells: rows x folds x label fractions x seeds, each evaluated on its test part and,
   zero-shot, on every test set's), ``transfer`` (with ``few_shot``: a grid over the few-shot
   cells, ``finetune`` from the training cell's model);
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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medxfer.cluster_config import start_ray as _start_ray  # a module name tests can patch
from medxfer.errors import MedxferInputError
from medxfer.tracking import schema
from medxfer.tune import study_phases as phases
from medxfer.tune.experiment import safe_name, schema_tags
from medxfer.tune.study_config import Study, study_from_dict
from medxfer.tune.study_phases import PhaseRun
from medxfer.tune.study_preflight import StudyPlan, preflight

log = logging.getLogger(__name__)

SNAPSHOT = "medxfer_study.json"


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
    if p.shortcut:
        params["protocol.shortcut"] = (f"{p.shortcut.confounder} in class "
                                       f"{p.shortcut.target_class}, p_art "
                                       + ",".join(f"{f:g}" for f in p.shortcut.p_art))
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
                    "p_art": num(schema.CELL_P_ART, float),
                    "seed": num(schema.CELL_SEED, int), "metrics": dict(r.data.metrics),
                    "params": dict(r.data.params)})
    return sorted(out, key=lambda r: r["key"] or "")





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
    if study.synth is not None:  # before the preflight reads it and before Ray starts
        from medxfer.data.synth_studies import ensure_synthetic

        folder, written = ensure_synthetic(study.synth, source=study.source)
        if written:
            log.info("study %s: wrote its synthetic data to %s", name, folder)
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
    try:
        if parent is not None and parent.info.status != "RUNNING":
            client.update_run(parent_id, status="RUNNING")
        study_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            source = str(study.path.resolve()) if study.path else None
            (study_dir / SNAPSHOT).write_text(json.dumps(
                {"raw": study.raw, "source": source, "base_dir": str(Path.cwd())},
                indent=1, default=str))
        run = PhaseRun(study, plan, name, study_dir, uri, exp_id, parent_id, verbose,
                       address=address, num_cpus=num_cpus)
        seconds: dict[str, float] = {}
        started = _start_ray(address, num_cpus, study.protocol.max_concurrent or 2)
        try:
            lap = time.monotonic()
            chosen = phases.search(run) if study.search is not None else {}
            seconds["search"] = time.monotonic() - lap
            for phase, step in (("train", lambda: phases.train(run, chosen)),
                                ("transfer", lambda: phases.transfer(run))):
                lap = time.monotonic()
                if not phases.done(run, phase):
                    step()
                seconds[phase] = time.monotonic() - lap
        finally:
            if started:
                ray.shutdown()
    except BaseException as exc:
        # no run of a study that stopped may stay RUNNING (--resume sets them running again)
        from medxfer.tune.sweep import _end_open_runs

        _end_open_runs(client, exp_id, parent_id, exc)
        raise
    log.info("study %s: resume with `medxfer study %s --name %s --resume`", name,
             study.source, name)
    return StudyResult(name, experiment, uri, parent_id, str(study_dir),
                       cell_records(uri, exp_id, parent_id), run.n_trials, run.n_errored,
                       time.monotonic() - t0, seconds, chosen, run.concurrency)
