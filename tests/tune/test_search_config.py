"""Search YAML validation (errors name YAML paths), space conversion, shipped YAMLs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from medxfer.errors import MedxferInputError
from medxfer.tune.experiment import experiment_from_dict, load_experiment, smoke_test
from medxfer.tune.search_config import parse_search
from medxfer.tune.space import expected_trials, to_param_space

from sweep_helpers import experiment

REPO = Path(__file__).resolve().parents[2]
# sweeps; the shipped studies (a top-level protocol:) are tests/study's
SHIPPED = sorted(p for p in (REPO / "search_spaces").glob("*.yaml")
                 if "protocol" not in (yaml.safe_load(p.read_text()) or {}))


@pytest.mark.parametrize("search, message", [
    ({"space": {"train.lr": {"loguniform": [0, 1e-3]}}},
     "search.space.train.lr.loguniform: lower bound must be > 0"),
    ({"space": {"train": {"lr": {"uniform": [1, 0.5]}}}},
     "search.space.train.lr.uniform: lower bound 1 must be < upper bound 0.5"),
    ({"space": {"train.lr": {"choice": []}}}, "search.space.train.lr.choice: expected a non-empty"),
    ({"space": {"train.lr": {"between": [1, 2]}}}, "search.space.train.lr"),
    ({"algorithm": "grid", "space": {"train.lr": {"loguniform": [1e-4, 1e-2]}}},
     "search.space.train.lr.loguniform: algorithm grid needs grid or choice leaves"),
    ({"algorithm": "hyperopt", "space": {"train.lr": {"grid": [1e-4, 1e-2]}}},
     "search.space.train.lr.grid: algorithm hyperopt cannot search a grid leaf"),
    ({"algorithm": "bayes"},
     "search.algorithm: unknown searcher 'bayes'; valid: grid, hyperopt, joint, prior, "
     "random, shuffled, warmstart"),
    ({"algorithm": "shuffled", "space": {"train.lr": {"uniform": [0.1, 0.5]}}},
     "search.space.train.lr.uniform: algorithm shuffled needs grid or choice leaves"),
    ({"algorithm": "grid", "space": {"train.lr": {"grid": [0.1]}},
      "points_to_evaluate": [{"train.lr": 0.1}]},
     "search.points_to_evaluate: not used by algorithm grid"),
    ({"mode": "low"}, "search.mode:"),
    ({"num_samples": 0}, "search.num_samples: Input should be greater than or equal to 1"),
    ({"scheduler": {"type": "asha", "grace_period": 0}}, "search.scheduler.grace_period:"),
    ({"spaces": {}}, "search.spaces: unknown key"),
    ({"space": {"train.lr": {"loguniform": [1e-6, 1e-3]}},
      "points_to_evaluate": [{"train.lr": 0.5}]},
     "search.points_to_evaluate.0.train.lr: 0.5 is outside"),
    ({"space": {"nosuch.lr": {"choice": [1, 2]}}},
     "search.space.nosuch.lr: 'nosuch' is not a section"),
    ({"stall_timeout_s": 0}, "search.stall_timeout_s: Input should be greater than 0"),
    ({"stall_timeout_s": -5}, "search.stall_timeout_s: Input should be greater than 0"),
    ({"stall_timeout_s": "soon"}, "search.stall_timeout_s: Input should be a valid number"),
])
def test_errors_name_yaml_paths(search, message):
    with pytest.raises(MedxferInputError) as exc:
        experiment_from_dict(experiment(search), source="exp.yaml")
    assert message in str(exc.value)
    assert str(exc.value).startswith("exp.yaml: ")


def test_yaml_1_1_exponents_are_numbers():
    """``1e-6`` without a dot is a string in YAML 1.1; the space accepts it as a number."""
    s = parse_search(yaml.safe_load("space: {train.lr: {loguniform: [1e-6, 1e-3]}}"))
    assert s.space["train.lr"].values == [1e-6, 1e-3]


def test_stall_timeout_default_and_off():
    """The watchdog's timeout: 300 s unless set; ``null`` turns it off."""
    assert parse_search({}).stall_timeout_s == 300
    assert parse_search({"stall_timeout_s": 20}).stall_timeout_s == 20
    assert parse_search({"stall_timeout_s": None}).stall_timeout_s is None


def test_cli_exits_2_with_yaml_path(tmp_path, capsys):
    from medxfer.cli import main

    bad = tmp_path / "bad.yaml"
    # The data root and a flag file exist: the preflight would report missing ones first.
    (tmp_path / "synthpneumonia.npz").write_bytes(b"")
    bad.write_text(yaml.safe_dump(experiment({"space": {"train.lr": {"loguniform": [-1, 1]}}},
                                             data={"root": str(tmp_path)})))
    assert main(["sweep", str(bad)]) == 2
    assert "search.space.train.lr.loguniform: lower bound must be > 0" in capsys.readouterr().err


def test_param_space_per_algorithm():
    from ray.tune.search.sample import Categorical, Float

    hyper = parse_search({"algorithm": "hyperopt", "space": {
        "train.lr": {"loguniform": [1e-4, 1e-1]}, "train.batch_size": {"choice": [16, 32]}}})
    space = to_param_space(hyper)
    assert isinstance(space["train.lr"], Float) and isinstance(space["train.batch_size"],
                                                                Categorical)
    grid = parse_search({"algorithm": "grid", "space": {
        "train.lr": {"grid": [1, 0.1, 0.01]}, "train.momentum": {"choice": [0.9, 0]}}})
    assert to_param_space(grid)["train.momentum"] == {"grid_search": [0.9, 0]}
    assert expected_trials(grid) == 6 and grid.num_samples == 1


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_yamls_validate(path):
    exp = load_experiment(path)
    assert exp.search.space, "a shipped sweep searches something"
    small = smoke_test(exp)
    assert expected_trials(small.search) == 2 and small.config["train"]["epochs"] == 1


def test_shipped_yamls_cover_the_issue():
    names = {p.stem for p in SHIPPED}
    assert {"scc_hyperopt", "thesis_grid", "demo", "finetune", "simclr", "supcon", "cltci",
            "swav", "dce", "scc"} <= names
    scc = load_experiment(REPO / "search_spaces" / "scc_hyperopt.yaml")
    sp = {k: (v.kind, v.values) for k, v in scc.search.space.items()}
    assert sp["train.lr"] == ("loguniform", [1e-6, 1e-3])
    assert sp["train.weight_decay"][1] == [1e-5, 1e-2]
    assert sp["train.lambda_lr"] == ("uniform", [0.6, 1.0])
    assert sp["train.batch_size"] == ("choice", [32, 64, 128])
    assert scc.config["train"]["optimizer"] == "adam"
    grid = load_experiment(REPO / "search_spaces" / "thesis_grid.yaml")
    assert expected_trials(grid.search) == 120
    assert grid.config["train"]["epochs"] == 400 and grid.search.early_stopping.patience == 50
    assert grid.search.select_by == "val_loss"


def test_trial_resources_fast_path_and_trainer_driver():
    from medxfer.tune.sweep import trial_resources

    assert trial_resources({"scaling": {"num_workers": 1, "use_gpu": False}}) == {"CPU": 1}
    assert trial_resources({"scaling": {"num_workers": 2}}) == {"CPU": 0, "trial_slot": 1}
    assert trial_resources({"scaling": {"num_workers": 1, "use_gpu": True}}) == {
        "CPU": 0, "trial_slot": 1}
