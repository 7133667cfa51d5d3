"""The driver's preflight (``medxfer.tune.preflight``): problems collected into one message by
the key the user wrote, searched values checked one by one, extra checks plugged in."""

from __future__ import annotations

import pytest

from medxfer.errors import MedxferInputError
from medxfer.tune.experiment import experiment_from_dict
from medxfer.tune.preflight import check_experiment, check_inputs, check_paths

from sweep_helpers import experiment


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from medxfer.data import synthesize

    root = tmp_path_factory.mktemp("preflight") / "synth"
    synthesize(root, size=28, n_per_class=4, seed=0, modalities=["synthpneumonia"])
    return root


def _exp(root, search, **over):
    raw = experiment(search, **over)
    raw["data"] = {**raw["data"], "root": str(root), **over.get("data", {})}
    return experiment_from_dict(raw, source="exp.yaml")


def test_every_problem_of_the_first_pass_in_one_message(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    raw = {"method": "finetune", "data": {"root": str(tmp_path / "nope"), "flag": "x"},
           "model": {"weights": str(tmp_path)}, "tracking": {"uri": "foo://bar"}}
    with pytest.raises(MedxferInputError) as err:
        check_paths(raw, source="exp.yaml", overrides={"model.weights": str(tmp_path)})
    lines = str(err.value).splitlines()
    assert lines[0] == "exp.yaml: 3 problems, found before anything started:"
    assert lines[1] == (f"  data.root: no such folder {tmp_path / 'nope'}; expected the folder "
                        "of MedMNIST-layout .npz files holding x.npz (`medxfer data synth --out "
                        "DIR` writes synthetic ones)")
    assert lines[2].startswith(f"  --set model.weights: is a folder: {tmp_path}; expected a "
                               "state dict")
    assert lines[3].startswith("  tracking.uri: 'foo://bar': unknown scheme 'foo'")


def test_every_searched_value_is_checked(data):
    exp = _exp(data, {"algorithm": "grid", "space": {
        "data.flag": {"grid": ["synthpneumonia", "synthnope"]},
        "model.backbone": {"grid": ["tiny_cnn", "tiny_cnnn"]}}})
    with pytest.raises(MedxferInputError) as err:
        check_inputs(exp.config, source="exp.yaml", space=exp.search.space, sweep=True)
    first, *lines = str(err.value).splitlines()
    assert first == "exp.yaml: 2 problems, found before anything started:"
    assert sorted(line.split(":")[0] for line in lines) == [
        "  search.space.data.flag (value 'synthnope')",
        "  search.space.model.backbone (value 'tiny_cnnn')"]
    assert (f"  search.space.data.flag (value 'synthnope'): no synthnope.npz or synthnope_28.npz "
            f"in {data}; the folder holds synthpneumonia (`medxfer data synth --out DIR` writes "
            "synthetic ones)") in lines
    assert any(line.startswith("  search.space.model.backbone (value 'tiny_cnnn'): unknown "
                               "backbone 'tiny_cnnn'") for line in lines)


def test_a_good_sweep_passes_and_an_empty_space_does_not(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    good = _exp(data, {"algorithm": "grid", "space": {"train.lr": {"grid": [0.1, 0.01]}}})
    check_experiment(good.config, space=good.search.space, sweep=True)
    empty = _exp(data, {"algorithm": "random", "num_samples": 3})
    with pytest.raises(MedxferInputError, match=r"^exp.yaml: search.space: is empty"):
        check_experiment(empty.config, source="exp.yaml", space=empty.search.space, sweep=True)
    # A caller's own trainable reads no data: only the store and the space are checked.
    elsewhere = _exp(data, good.raw["search"], data={"root": str(tmp_path / "none")})
    check_experiment(elsewhere.config, space=elsewhere.search.space, sweep=True, inputs=False)
    with pytest.raises(MedxferInputError, match="data.root: no such folder"):
        check_experiment(elsewhere.config, space=elsewhere.search.space, sweep=True)
    assert list(tmp_path.iterdir()) == []  # checking wrote nothing (no default store)


def test_an_extra_check_joins_the_message_without_repeating_the_file(data):
    """How ``study`` plugs its protocol check in: ``fn(config)`` raising MedxferInputError."""
    seen = []

    def protocol(config: dict) -> None:
        seen.append(config["data"]["flag"])
        raise MedxferInputError("3 folds need >= 3 images of every class; synthpneumonia has 2",
                                path="exp.yaml", field="protocol.folds")

    exp = _exp(data, {"algorithm": "grid", "space": {"train.lr": {"grid": [0.1]}}},
               model={"backbone": "tiny_cnn", "in_chans": 3})
    with pytest.raises(MedxferInputError) as err:
        check_inputs(exp.config, source="exp.yaml", space=exp.search.space, extra=[protocol])
    assert seen == ["synthpneumonia"]
    assert str(err.value).splitlines()[1:] == [
        "  model.in_chans: is 3 but synthpneumonia images have 1 channel(s) (data.as_rgb: true "
        "feeds 3)",
        "  protocol.folds: 3 folds need >= 3 images of every class; synthpneumonia has 2"]


def test_weight_files_must_hold_a_state_dict(data, tmp_path):
    import torch

    from medxfer.models import create_backbone

    good, bad = tmp_path / "good.pt", tmp_path / "bad.pt"
    torch.save(create_backbone("tiny_cnn", in_chans=1).state_dict(), good)
    torch.save([1, 2, 3], bad)
    for path, problem in ((good, None), (bad, f"model.weights: {bad} holds list, not a state "
                                              "dict")):
        exp = _exp(data, {"algorithm": "grid", "space": {"train.lr": {"grid": [0.1]}}},
                   model={"backbone": "tiny_cnn", "weights": str(path)})
        if problem is None:
            check_inputs(exp.config, space=exp.search.space)
        else:
            with pytest.raises(MedxferInputError, match=f"^{problem}"):
                check_inputs(exp.config, space=exp.search.space)


def test_searched_values_are_validated_as_trials_see_them(data):
    """A value the schema refuses would fail every trial that samples it; a range is checked at
    its two ends (the upper one just inside, as Tune samples [lower, upper))."""
    exp = _exp(data, {"algorithm": "random", "num_samples": 4, "space": {
        "train.batch_size": {"choice": [0, 32]},
        "train.momentum": {"uniform": [0.5, 1.5]},
        "train.lambda_lr": {"uniform": [0.6, 1.0]},
        "train.scheduler": {"choice": ["lambda"]}}})  # a searched lambda needs LambdaLR
    with pytest.raises(MedxferInputError) as err:
        check_inputs(exp.config, source="exp.yaml", space=exp.search.space, sweep=True)
    assert str(err.value).splitlines()[1:] == [
        "  search.space.train.batch_size (value 0): train.batch_size: must be >= 1",
        "  search.space.train.momentum (value 1.4999999999999998): train.momentum: must be < "
        "1.0"]


def test_a_bad_value_and_a_missing_folder_are_reported_together(tmp_path):
    """The typed models run in the first pass too (pydantic only, no method registry)."""
    raw = {"method": "finetune", "data": {"root": str(tmp_path / "nope"), "flag": "x"},
           "train": {"lr": -1}, "trian": {}}
    with pytest.raises(MedxferInputError) as err:
        check_paths(raw, source="exp.yaml", overrides={"train.batch_size": 0})
    lines = str(err.value).splitlines()
    assert lines[0] == "exp.yaml: 4 problems, found before anything started:"
    assert lines[1:4] == ["  --set train.batch_size: must be >= 1", "  train.lr: must be > 0.0",
                          "  trian: unknown field"]
    assert lines[4].startswith(f"  data.root: no such folder {tmp_path / 'nope'}")
