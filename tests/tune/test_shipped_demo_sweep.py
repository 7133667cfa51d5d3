"""The shipped search_spaces/demo.yaml through the real launcher (finetune), --smoke-test."""

from __future__ import annotations

from pathlib import Path

from sweep_helpers import sweep_runs

from medxfer.cli import main
from medxfer.data.synth import synthesize

REPO = Path(__file__).resolve().parents[2]


def test_demo_yaml_smoke_sweep_runs_the_method(tmp_path, tracking_uri, ray_runtime,
                                               monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # demo.yaml reads data/synth relative to the working directory
    synthesize(tmp_path / "data" / "synth", size=28, n_per_class=20,
               modalities=["synthpneumonia"])
    code = main(["sweep", str(REPO / "search_spaces" / "demo.yaml"), "--smoke-test",
                 "--name", "shipped-demo", "--tracking-uri", tracking_uri])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0 errored" in out or "errored" not in out
    parents, children = sweep_runs(tracking_uri, "shipped-demo")
    assert len(parents) == 1 and len(children) == 2
    for run in children:
        assert run.info.status == "FINISHED"
        assert run.data.tags["medxfer.method"] == "finetune"
        assert run.data.tags["medxfer.target"] == "synthpneumonia"
        assert "test_auc" in run.data.metrics and "lr" in run.data.params
        # subsample: thesis keeps min(100, 20) images per class: 2 classes x 20, as before
        assert run.data.params["n_train"] == "40" and "n_train" not in run.data.metrics
