"""A sweep whose driver fails after its parent run was written leaves no run RUNNING."""

from __future__ import annotations

import pytest

from medxfer.tune.experiment import experiment_from_dict
from medxfer.tune.sweep import run_sweep

from sweep_helpers import experiment, sweep_runs
from toy_trainable import Toy

pytestmark = pytest.mark.timeout(300)


def test_a_driver_failure_ends_the_parent_failed(ray_runtime, tmp_path, tracking_uri):
    # The Tune storage folder cannot be created (a file is in the way): the driver fails after
    # the parent run exists, before any trial starts.
    blocker = tmp_path / "ray_results"
    blocker.write_text("not a folder")
    exp = experiment_from_dict(experiment({"algorithm": "grid",
                                           "space": {"train.lr": {"grid": [0.05]}}}))
    with pytest.raises(OSError):
        run_sweep(exp, name="broken", tracking_uri=tracking_uri, trainable=Toy(n=64),
                  verbose=0, storage_path=str(blocker))
    parents, children = sweep_runs(tracking_uri, "broken")
    assert [p.info.status for p in parents] == ["FAILED"]
    assert children == []
