"""Shared fixtures.

* ``tracking_uri``: a fresh absolute sqlite MLflow store per test.
* ``ray_runtime``: ONE local Ray runtime for the whole session (``num_cpus=2``), shut down at the
  end. Tests that need a runtime of their own (multi-node, killed driver) run it in a subprocess.
* ``shared_dir`` / ``benchmark_dir``: ``../shared`` beside the checkout. Absent: the tests that
  need it skip on a developer's machine, but fail under CI (``CI`` set), where it must exist.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEDXFER_SHARED", REPO.parent / "shared"))


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def _missing(what: str) -> None:
    """Skip locally, fail under CI: CI runs on a clean clone with ../shared beside it."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} (CI is set: ../shared must be beside the checkout)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        _missing(f"shared directory not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def benchmark_dir(shared_dir) -> Path:
    d = shared_dir / "benchmark" / "medmnist-transfer"
    if not d.is_dir():
        _missing(f"benchmark not found at {d}")
    return d


@pytest.fixture(scope="session")
def ray_runtime(tmp_path_factory):
    """One local Ray runtime per test session; always shut down."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    from medxfer.cluster_config import init_local_ray

    ctx = init_local_ray(log_to_driver=False, _temp_dir=str(tmp_path_factory.mktemp("ray")))
    try:
        yield ctx
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def benchmark_store(benchmark_dir, tmp_path_factory):
    """The full published benchmark imported once per session into a sqlite store."""
    from medxfer.tracking.benchmark_import import import_benchmark

    uri = f"sqlite:///{tmp_path_factory.mktemp('benchmark') / 'mlruns.db'}"
    result = import_benchmark(benchmark_dir, name="medmnist-transfer", tracking_uri=uri)
    return uri, result


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """One ``mlflow server`` on 127.0.0.1 (sqlite store) shared by the session; stops itself.

    Tests sharing it must use experiment names of their own. It also stops if the test run is
    killed (see ``medxfer.tracking.server``).
    """
    from medxfer.tracking.server import MlflowServer

    d = tmp_path_factory.mktemp("mlflow_server")
    with MlflowServer(f"sqlite:///{d / 'server.db'}", d / "artifacts",
                      log_path=d / "server.log") as server:
        yield server


@pytest.fixture
def export_dir(tmp_path):
    """Two small benchmark exports (dataset + architecture file): FINISHED, FAILED and RUNNING
    rows, empty metric cells, several duration units."""
    from benchmark_csvs import run_row, write_export

    d = tmp_path / "bench"
    write_export(d / "fined_blood.csv", [
        run_row("imagenet", "bloodmnist", val_loss=0.5, test_auc=0.91, lr="0.1"),
        run_row("imagenet", "bloodmnist", val_loss=0.3, test_auc=0.88, lr="0.01"),
        run_row("pathmnist", "bloodmnist", val_loss=0.7, test_auc=0.80),
    ])
    write_export(d / "fined_blood_imnet.csv", [
        run_row("convnext", "bloodmnist", val_loss=0.2, test_auc=0.95, duration="11.7s"),
        run_row("vgg", "bloodmnist", val_loss=None, test_auc=None, status="FAILED",
                duration="3.0min"),
        run_row("vgg", "bloodmnist", val_loss=None, test_auc=None, status="RUNNING",
                duration=""),
        run_row("vgg", "bloodmnist", val_loss=0.4, test_auc=0.90, duration="1.5h"),
    ])
    return d
