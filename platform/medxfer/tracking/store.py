"""Opening the MLflow store: create it once, experiments with absolute artifact roots and the
tags the MLflow UI needs to show their runs.

A brand-new sqlite store opened by several processes at once fails while creating its tables
(``RAY-MLFLOW-NOTES.md``), so every driver calls :func:`ensure_experiment` before any worker
starts.
"""

from __future__ import annotations

import os
from pathlib import Path

from medxfer.tracking import schema
from medxfer.tracking.uri import resolve_tracking_uri, sqlite_path

ARTIFACT_ROOT_ENV = "MEDXFER_ARTIFACT_ROOT"


def default_artifact_root(tracking_uri: str) -> str:
    """``$MEDXFER_ARTIFACT_ROOT``, else ``mlartifacts/`` beside a sqlite file, else cwd."""
    if os.environ.get(ARTIFACT_ROOT_ENV):
        return str(Path(os.environ[ARTIFACT_ROOT_ENV]).resolve())
    db = sqlite_path(tracking_uri)
    base = db.parent if db is not None else Path.cwd()
    return str((base / "mlartifacts").resolve())


def _is_server_uri(uri: str) -> bool:
    return uri.split("://", 1)[0].lower() in ("http", "https")


def client(tracking_uri: str | None = None):
    """An ``MlflowClient`` on the resolved (absolute) tracking URI; creates a sqlite store."""
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    db = sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri)


#: The primary metric the MLflow UI charts first, by experiment kind (``benchmark/...``):
#: runs of benchmarks and sweeps are compared by their test AUC (the ground truth's metric).
PRIMARY_METRICS = {"benchmark": "test_auc", "sweep": "test_auc"}


def experiment_tags(name: str, primary_metric: str | None = None) -> dict[str, str]:
    """The MLflow UI tags of experiment ``name``: the training-runs view
    (``mlflow.experimentKind``) and, where one applies, the primary metric."""
    tags = {schema.EXPERIMENT_KIND: schema.EXPERIMENT_KIND_TRAINING}
    metric = primary_metric or PRIMARY_METRICS.get(name.split("/", 1)[0])
    if metric:
        tags[schema.PRIMARY_METRIC] = metric
    return tags


def ensure_experiment(tracking_uri: str, name: str, *, artifact_root: str | None = None,
                      primary_metric: str | None = None) -> str:
    """Return the id of experiment ``name``, creating it (and the store) if needed.

    Every medxfer experiment is created here and carries :func:`experiment_tags`, so the MLflow
    UI opens it on its runs; an existing experiment missing them gets them now. New experiments
    get an absolute artifact location ``<artifact_root>/<name>``; a deleted experiment of that
    name is restored. On a tracking *server* (``http(s)://``) with no ``artifact_root`` and no
    ``$MEDXFER_ARTIFACT_ROOT``, the server chooses the location (its
    ``--default-artifact-root`` / ``--artifacts-destination``): a path on the calling machine
    would be unreachable for the server, the UI and workers on other nodes.
    """
    c = client(tracking_uri)
    tags = experiment_tags(name, primary_metric)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            c.restore_experiment(exp.experiment_id)
        _add_missing_tags(c, exp, tags)
        return exp.experiment_id
    if artifact_root is None and _is_server_uri(tracking_uri) and not os.environ.get(
            ARTIFACT_ROOT_ENV):
        location = None
    else:
        root = artifact_root or default_artifact_root(tracking_uri)
        location = root if "://" in root else Path(root, *name.split("/")).resolve().as_uri()
    try:
        return c.create_experiment(name, artifact_location=location, tags=tags)
    except Exception:
        # Another process created it between our lookup and create.
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        _add_missing_tags(c, exp, tags)
        return exp.experiment_id


def _add_missing_tags(c, exp, tags: dict[str, str]) -> None:
    """Set the tags ``exp`` lacks. The kind is always set (the UI may have stored a GenAI kind
    it inferred from an experiment that had no runs yet); a primary metric set by hand stays."""
    for key, value in tags.items():
        if key not in exp.tags or (key == schema.EXPERIMENT_KIND and exp.tags[key] != value):
            c.set_experiment_tag(exp.experiment_id, key, value)
