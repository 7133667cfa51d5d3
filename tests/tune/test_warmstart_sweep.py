"""``search.algorithm: warmstart`` in real sweeps: validation, the config-key adapter, and sweeps
on the session Ray runtime (``tests/toy_trainable.py``) warm-started from a tiny imported
benchmark.

The tiny benchmark (hand-made CSVs, one source ``imagenet``; wd 0, momentum 0.9; lr {0.001,
0.01, 0.1} x two batch sizes per target, compared by position small/large):

* dermamnist (bs 64/128) and pathmnist (bs 128/256) rank, best first: (0.01, large),
  (0.1, large), (0.01, small), (0.1, small), (0.001, large), (0.001, small). So the prior of a
  sweep on synthpneumonia over lr {0.1, 0.01, 0.001} x batch size {32, 64} ranks
  (0.01, 64) first, then (0.1, 64), (0.01, 32), ...
* synthpneumonia (the sweep's own target, bs 32/64) ranks (0.001, small) best — a leak of the
  target's own runs into the prior would pull that configuration forward. ``OWN_FLIPPED``
  logs the opposite ranking for it; neither may change the first proposal.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from benchmark_csvs import run_row, write_export

from medxfer.errors import MedxferInputError
from medxfer.tracking.benchmark_import import import_benchmark
from medxfer.tune.experiment import experiment_from_dict
from medxfer.tune.search import make_searcher
from medxfer.tune.space import expected_trials, to_param_space
from medxfer.tune.sweep import run_sweep
from medxfer.tune.warmstart import ConfigKeyPrior, WarmStartPrior, WarmStartSearcher, load_prior

from sweep_helpers import experiment, sweep_runs
from toy_trainable import Toy

pytestmark = pytest.mark.timeout(300)

TARGET = "synthpneumonia"  # sweep_helpers.BASE data.flag
BS = {TARGET: ("32", "64"), "dermamnist": ("64", "128"), "pathmnist": ("128", "256")}
OTHERS_ORDER = [("0.01", 1), ("0.1", 1), ("0.01", 0), ("0.1", 0), ("0.001", 1), ("0.001", 0)]
OWN_ORDER = [("0.001", 0), ("0.001", 1), ("0.1", 0), ("0.1", 1), ("0.01", 0), ("0.01", 1)]
OWN_FLIPPED = list(reversed(OWN_ORDER))
FIRST = {"train.lr": 0.01, "train.batch_size": 64}
SPACE = {"train.lr": {"grid": [0.1, 0.01, 0.001]}, "train.batch_size": {"choice": [32, 64]}}


def _store(directory, uri, own_order=OWN_ORDER, name="tiny"):
    for target, order in ((TARGET, own_order), ("dermamnist", OTHERS_ORDER),
                          ("pathmnist", OTHERS_ORDER)):
        rows = [run_row("imagenet", target, val_loss=0.1 * (rank + 1), test_auc=0.9 - rank / 100,
                        lr=lr, batch_size=BS[target][pos])
                for rank, (lr, pos) in enumerate(order)]
        write_export(directory / f"fined_{target}.csv", rows)
    import_benchmark(directory, name=name, tracking_uri=uri)
    return uri


def _search(**over):
    s = {"algorithm": "warmstart", "num_samples": 4, "max_concurrent": 1, "seed": 0,
         "space": SPACE, "warmstart": {"benchmark": "tiny"}}
    s.update(over)
    return s


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("search, message", [
    (_search(space={"train.lr": {"loguniform": [1e-4, 1e-1]}}),
     "search.space.train.lr.loguniform: algorithm warmstart needs grid or choice leaves"),
    (_search(warmstart={"params": {"lr": "train.lr", "wd": "train.weight_decay"}}),
     "search.warmstart.params.wd: 'train.weight_decay' is not a key of search.space"),
    (_search(space={"train.epochs": {"choice": [1, 2]}}),
     "search.space: algorithm warmstart needs at least one searched key"),
    (_search(warmstart={"benchmark_kind": "arch"}),
     "search.warmstart.benchmark_kind: Input should be 'dataset' or 'architecture'"),
    (_search(warmstart={"params": {}}), "search.warmstart.params: expected a non-empty mapping"),
    (_search(warmstart={"bench": "tiny"}), "search.warmstart.bench: unknown key"),
    (_search(points_to_evaluate=[{"train.lr": 0.1}]),
     "search.points_to_evaluate: not used by algorithm warmstart"),
    ({"algorithm": "grid", "space": SPACE, "warmstart": {"benchmark": "tiny"}},
     "search.warmstart: only used by the searchers with a prior (joint, prior, warmstart), not "
     "grid"),
])
def test_warmstart_errors_name_yaml_paths(search, message):
    with pytest.raises(MedxferInputError) as exc:
        experiment_from_dict(experiment(search), source="exp.yaml")
    assert message in str(exc.value)
    assert str(exc.value).startswith("exp.yaml: ")


def test_space_and_trials_of_a_warmstart_search():
    from ray.tune.search.sample import Categorical

    s = experiment_from_dict(experiment(_search(num_samples=50))).search
    space = to_param_space(s)
    assert all(isinstance(v, Categorical) for v in space.values())  # no grid_search for Tune
    assert expected_trials(s) == 6  # never more than the space: nothing repeats
    assert s.warmstart_params() == {"lr": "train.lr", "batch_size": "train.batch_size"}


def test_store_errors_name_yaml_paths(tmp_path, tracking_uri):
    _store(tmp_path / "csv", tracking_uri)
    s = experiment_from_dict(experiment(_search(warmstart={"benchmark": "nosuch"}))).search
    with pytest.raises(MedxferInputError, match=r"^search\.warmstart\.benchmark: .*nosuch"):
        make_searcher(s, tracking_uri=tracking_uri, target=TARGET)
    s = experiment_from_dict(experiment(_search(
        space={"train.lr": {"grid": [0.5, 0.05]}}))).search
    with pytest.raises(MedxferInputError, match=r"^search\.warmstart: the prior knows none.*"
                                                 r"lr -> train\.lr: 0\.001, 0\.01, 0\.1"):
        make_searcher(s, tracking_uri=tracking_uri, target=TARGET)


# --------------------------------------------------------------------------- the adapter


def test_config_key_prior_is_the_prior_under_config_keys(tmp_path, tracking_uri):
    _store(tmp_path / "csv", tracking_uri)
    s = experiment_from_dict(experiment(_search())).search
    mapped = load_prior(s, to_param_space(s), tracking_uri=tracking_uri, target=TARGET)
    assert isinstance(mapped, ConfigKeyPrior) and mapped.excluded_target == TARGET
    assert sorted(t for _, t in mapped.tasks) == ["dermamnist", "pathmnist"]
    by_config = [dict(zip(("train.lr", "train.batch_size"), c))
                 for c in itertools.product((0.1, 0.01, 0.001), (32, 64))]
    by_param = [{"lr": c["train.lr"], "batch_size": c["train.batch_size"]} for c in by_config]
    np.testing.assert_array_equal(mapped.matrix(by_config), mapped.prior.matrix(by_param))
    # Hand-computed order: both other targets rank (lr, bs position) as OTHERS_ORDER.
    assert [(str(by_config[i]["train.lr"]), by_config[i]["train.batch_size"])
            for i in mapped.order(by_config)] == [(lr, (32, 64)[pos]) for lr, pos in OTHERS_ORDER]
    # Unmapped searched keys do not enter the prior; the adapter needs every prior param.
    wider = [{**c, "train.epochs": 3} for c in by_config]
    np.testing.assert_array_equal(mapped.matrix(wider), mapped.matrix(by_config))
    with pytest.raises(MedxferInputError, match="batch_size have no config key"):
        ConfigKeyPrior(mapped.prior, {"lr": "train.lr"})


def test_target_defaults_to_data_flag_and_is_left_out(tmp_path, tracking_uri):
    _store(tmp_path / "csv", tracking_uri)
    s = experiment_from_dict(experiment(_search())).search
    alg = make_searcher(s, tracking_uri=tracking_uri, target=TARGET).search_alg
    assert isinstance(alg, WarmStartSearcher)
    assert alg.suggest("t0") == FIRST
    # Control: the target's own runs WOULD matter if they were not left out (another target
    # excluded instead: the prior then contains synthpneumonia's runs and its ranking).
    leaky = WarmStartPrior.from_mlflow(tracking_uri, "tiny", exclude_target="pathmnist",
                                       params=("lr", "batch_size"))
    assert ("imagenet", TARGET) in leaky.tasks
    # An explicit target overrides data.flag.
    other = experiment_from_dict(experiment(_search(warmstart={
        "benchmark": "tiny", "target": "dermamnist"}))).search
    assert load_prior(other, to_param_space(other), tracking_uri=tracking_uri,
                      target=TARGET).excluded_target == "dermamnist"


# --------------------------------------------------------------------------- real sweeps


def _proposals(uri, name):
    """Child runs' (lr, batch size) in the order the sweep started them (one at a time)."""
    _, children = sweep_runs(uri, name)
    children.sort(key=lambda c: c.info.start_time)
    return [(float(c.data.params["lr"]), int(c.data.params["batch_size"])) for c in children]


def test_warmstart_sweep_starts_with_the_other_targets_best(ray_runtime, tmp_path,
                                                            tracking_uri):
    """A real sweep on the session runtime: first trial = the prior's best on the OTHER targets;
    num_samples child runs; no configuration twice. Then, in a second store whose target runs
    rank the other way round, the first proposal is unchanged (leave-target-out)."""
    _store(tmp_path / "csv", tracking_uri)
    exp = experiment_from_dict(experiment(_search()))
    res = run_sweep(exp, name="warm", tracking_uri=tracking_uri, trainable=Toy(n=192),
                    verbose=0, storage_path=str(tmp_path / "ray_results"))
    assert res.n_trials == 4 and res.n_errored == 0
    got = _proposals(tracking_uri, "warm")
    assert len(got) == 4 and len(set(got)) == 4
    assert got[0] == (FIRST["train.lr"], FIRST["train.batch_size"])
    parents, _ = sweep_runs(tracking_uri, "warm")
    p = parents[0].data.params
    assert (p["search.algorithm"], p["search.warmstart.target"],
            p["search.warmstart.benchmark"]) == ("warmstart", TARGET, "tiny")

    # Same benchmark, the target's own runs ranked the opposite way; a store of its own.
    uri2 = f"sqlite:///{tmp_path / 'flipped.db'}"
    _store(tmp_path / "csv-flipped", uri2, own_order=OWN_FLIPPED)
    exp2 = experiment_from_dict(experiment(_search(num_samples=1)))
    res2 = run_sweep(exp2, name="warm-flipped", tracking_uri=uri2, trainable=Toy(n=192),
                     verbose=0,
                     storage_path=str(tmp_path / "ray_results"))
    assert res2.n_trials == 1
    assert _proposals(uri2, "warm-flipped") == [got[0]]


def test_the_sweeps_row_is_its_source_or_its_arch():
    """The prior's tasks of the sweep's own row weigh more (WarmStartSearcher ``row``): the
    source of the trials, or their arch when the prior is the architecture benchmark."""
    from medxfer.tune.sweep import _row

    dataset = experiment_from_dict(experiment(_search(), data={"source": "imagenet"},
                                              model={"arch": "densenet"}))
    assert _row(dataset) == "imagenet"
    arch = experiment_from_dict(experiment(
        _search(warmstart={"benchmark": "tiny", "benchmark_kind": "architecture"}),
        data={"source": "imagenet"}, model={"arch": "densenet"}))
    assert _row(arch) == "densenet"
