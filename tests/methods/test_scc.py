"""scc: stage markers and global epochs in checkpoints; a restart resumes in the right stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from train_helpers import load_state, make_config

from medxfer.errors import MedxferInputError
from medxfer.methods.experiment import parse_experiment
from medxfer.methods.scc import STAGE_FILE
from medxfer.train.launcher import run_local

MC = {"dce_epochs": 1, "simclr_epochs": 1}


def _stage(ckpt) -> dict:
    return json.loads((Path(ckpt) / STAGE_FILE).read_text())


@pytest.fixture(scope="module")
def full(synth_root, tmp_path_factory):
    cfg = make_config(synth_root, "scc", method_config=MC, epochs=4)
    return run_local(cfg, storage_dir=tmp_path_factory.mktemp("scc-full"))


def test_stages_report_one_global_step_and_the_finetune_selection_last(full):
    assert [h["epoch"] for h in full.history] == [1, 2, 3, 4, 5]
    assert [h["stage"] for h in full.history] == [0, 1, 2, 2, 2]
    assert "train_lcl_exact" in full.history[0]  # DCE's metrics at step 1
    final = full.history[-1]
    assert final["selected_epoch"] in (3, 4) and "test_auc" in final
    assert [_stage(c)["stage"] for c in full.checkpoints] == ["dce", "simclr", "finetune",
                                                             "finetune", "finetune"]
    assert [load_state(c)["progress"]["epoch"] for c in full.checkpoints] == [1, 2, 3, 4, 4]
    last = Path(full.checkpoints[-1])
    for f in ("model.pt", "scc/dce.pt", "scc/encoder.pt"):
        assert (last / f).is_file(), f


@pytest.mark.parametrize("handover,first_stage", [(0, 1), (2, 2)])
def test_restart_resumes_in_the_right_stage_and_ends_identically(full, synth_root, tmp_path,
                                                                 handover, first_stage):
    cfg = make_config(synth_root, "scc", method_config=MC, epochs=4)
    second = run_local(cfg, storage_dir=tmp_path, resume_from=full.checkpoints[handover])
    assert second.history[0]["stage"] == first_stage
    assert second.history[0]["epoch"] == handover + 2
    assert second.history[-1]["epoch"] == 5
    a = torch.load(Path(full.checkpoints[-1]) / "model.pt", weights_only=True)
    b = torch.load(Path(second.checkpoints[-1]) / "model.pt", weights_only=True)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert second.history[-1]["test_auc"] == pytest.approx(full.history[-1]["test_auc"])


def test_dce_star_skips_simclr_and_fine_tunes_the_runs_weights(synth_root, tmp_path):
    """``simclr_epochs: 0`` (seed 000 Table 2's DCE*): DCE, then fine-tuning; no SimCLR step
    or encoder, and fine-tuning starts from ``model.weights`` (at lr 1e-12 the fine-tuned
    backbone still equals that file)."""
    from medxfer.models.backbones import create_backbone

    start = tmp_path / "start.pt"
    torch.manual_seed(7)
    torch.save(create_backbone("tiny_cnn", in_chans=1).state_dict(), start)
    cfg = make_config(synth_root, "scc", method_config={"dce_epochs": 1, "simclr_epochs": 0},
                      epochs=2, optimizer="adam", lr=1e-12)
    cfg["model"]["weights"] = str(start)
    run = run_local(cfg, storage_dir=tmp_path / "run")
    assert [h["stage"] for h in run.history] == [0, 2, 2]
    assert [_stage(c)["stage"] for c in run.checkpoints] == ["dce", "finetune", "finetune"]
    assert not any(k.startswith(("simclr", "train_nt_xent")) for h in run.history for k in h)
    last = Path(run.checkpoints[-1])
    assert (last / "scc/dce.pt").is_file() and not (last / "scc/encoder.pt").exists()
    assert "test_auc" in run.history[-1]
    tuned = torch.load(last / "model.pt", map_location="cpu", weights_only=True)
    given = torch.load(start, map_location="cpu", weights_only=True)
    weights = [k for k, v in given.items() if v.dtype.is_floating_point and "running" not in k]
    matched = 0
    for key in weights:
        found = [t for t in tuned if t.endswith("." + key) or t == key]
        if found:
            matched += 1
            assert torch.allclose(tuned[found[0]], given[key], atol=1e-6), key
    assert matched == len(weights), (sorted(tuned)[:5], weights[:5])


def test_stage_lengths_must_leave_finetuning_epochs(synth_root, tmp_path):
    cfg = make_config(synth_root, "scc", method_config=MC, epochs=2)
    with pytest.raises(MedxferInputError, match=r"train.epochs \(2\) must exceed"):
        run_local(cfg, storage_dir=tmp_path)


def test_example_configs_validate(synth_root):
    root = Path(__file__).resolve().parents[2] / "examples"
    for name in ("train_scc.yaml", "train_dce.yaml", "train_swav.yaml"):
        raw = yaml.safe_load((root / name).read_text())
        raw["data"]["root"] = str(synth_root)
        parse_experiment(raw, source=name)
