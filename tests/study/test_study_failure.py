"""A study whose driver fails after its parent run was written leaves no run RUNNING."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from medxfer.tracking import schema
from medxfer.tune.study import run_study
from medxfer.tune.study_config import load_study

from study_helpers import EXAMPLE


def test_a_driver_failure_ends_the_study_run_failed(study_data, tmp_path, monkeypatch):
    # The study's storage folder cannot be created (a file is in the way): the driver fails
    # after the parent run exists, before Ray starts.
    monkeypatch.chdir(study_data)
    blocker = tmp_path / "studies"
    blocker.write_text("not a folder")
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    with pytest.raises(OSError):
        run_study(load_study(EXAMPLE), name="broken", tracking_uri=uri, verbose=0,
                  storage_path=str(blocker))
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(schema.experiment_name("study", "broken"))
    runs = client.search_runs([exp.experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
