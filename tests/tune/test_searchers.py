"""Registry-wide tests: every registered searcher gets them (the transferability registry's
style). Each searcher is built from the registry and driven in-process through Tune's searcher
protocol (:func:`medxfer.tune.replay.drive`), on a hand-made space and prior."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from medxfer.errors import MedxferInputError
from medxfer.tune.replay import drive
from medxfer.tune.search_config import Leaf
from medxfer.tune.searchers import (
    SEARCHERS,
    SearchRequest,
    _register,
    build_searcher,
    expected_trials,
    list_searchers,
    searcher_info,
)
from medxfer.tune.warmstart import WarmStartPrior

EXPECTED = {"grid", "random", "shuffled", "hyperopt", "prior", "warmstart", "joint"}
FINITE = {"a": Leaf(choice=[1, 2, 3]), "b": Leaf(choice=["x", "y"])}
SPACE = set(itertools.product([1, 2, 3], ["x", "y"]))
# The logged task's losses, best first: (3, y), (3, x), (2, y), (2, x), (1, y), (1, x).
LOGGED = {(a, b): 1.0 - 0.3 * a - 0.1 * (b == "y") for a, b in SPACE}


def _prior() -> WarmStartPrior:
    runs = pd.DataFrame([{"row": "s", "target": "t1", "a": a, "b": b, "loss": v}
                         for (a, b), v in LOGGED.items()])
    return WarmStartPrior.from_runs(runs, exclude_target="t0", params=("a", "b"), ordinal=(),
                                    metric="loss")


def _request(name: str, num_samples: int, seed: int = 0) -> SearchRequest:
    prior = _prior() if SEARCHERS[name].uses_prior else None
    return SearchRequest(metric="loss", mode="min", seed=seed, num_samples=num_samples,
                         prior=prior)


def _run(name: str, leaves, request: SearchRequest, cap: int | None = None) -> list[dict]:
    """Proposals until the searcher stops or ``cap`` were made (what Tune stops a
    ``Searcher`` at: the expected trials; by default 5 more for searchers that enumerate the
    space, which must stop by themselves); each completed with LOGGED's loss."""
    info = SEARCHERS[name]
    if cap is None:
        cap = expected_trials(leaves, info, request.num_samples)
        cap += 5 if info.needs_finite_space else 0
    propose, complete = drive(build_searcher(name, leaves, request), "loss", "min")
    out = []
    for t in range(cap):
        cfg = propose(f"t{t}")
        if cfg is None:
            break
        out.append(cfg)
        complete(f"t{t}", {"loss": LOGGED.get((cfg["a"], cfg.get("b")), 0.5)})
    return out


def test_every_searcher_is_registered_and_classified():
    assert set(list_searchers()) == EXPECTED and list_searchers() == sorted(EXPECTED)
    for name in list_searchers():
        info = searcher_info(name)
        assert info.name == name and info.description
        assert info.tune_space in ("domains", "grid", "choices")
        assert info.needs_finite_space == (info.tune_space != "domains")
    assert {n for n in EXPECTED if SEARCHERS[n].uses_prior} == {"prior", "warmstart", "joint"}
    assert {n for n in EXPECTED if not SEARCHERS[n].needs_finite_space} == {"random",
                                                                             "hyperopt"}
    assert {n for n in EXPECTED if SEARCHERS[n].points_to_evaluate} == {"random", "hyperopt"}


def test_duplicate_name_raises():
    with pytest.raises(ValueError, match="searcher 'grid' is already registered"):
        _register(SEARCHERS["grid"])
    assert list_searchers() == sorted(EXPECTED)


@pytest.mark.parametrize("field", ["search.algorithm", "--searcher"])
def test_unknown_name_names_the_field_and_lists_valid_names(field):
    with pytest.raises(MedxferInputError) as exc:
        searcher_info("bayes", field=field)
    assert str(exc.value) == (f"{field}: unknown searcher 'bayes'; valid: grid, hyperopt, "
                              "joint, prior, random, shuffled, warmstart")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_searcher_searches_a_finite_space(name):
    info = SEARCHERS[name]
    passes = 2 if info.tune_space == "grid" else 6  # a grid's num_samples counts passes
    got = _run(name, FINITE, _request(name, passes))
    keys = [(c["a"], c["b"]) for c in got]
    assert len(got) == expected_trials(FINITE, info, passes) == (12 if name == "grid" else 6)
    assert set(keys) <= SPACE
    if info.needs_finite_space:  # enumerating searchers cover the space, once per pass
        assert sorted(keys) == sorted(list(SPACE) * (2 if name == "grid" else 1))
    if info.uses_prior:  # the prior's best configuration first
        assert keys[0] == (3, "y")
    if name == "prior":  # and then exactly the prior's order (not adaptive)
        assert keys == sorted(SPACE, key=LOGGED.get)


@pytest.mark.parametrize("name", ["random", "shuffled", "hyperopt", "warmstart"])
def test_seed_reproduces_and_matters(name):
    runs = {seed: [(c["a"], c["b"]) for c in _run(name, FINITE, _request(name, 6, seed))]
            for seed in (0, 1, 2, 3)}
    again = [(c["a"], c["b"]) for c in _run(name, FINITE, _request(name, 6, 0))]
    assert again == runs[0]
    if name != "warmstart":  # the prior decides warmstart's order; the seed only breaks ties
        assert len({tuple(v) for v in runs.values()}) > 1


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_continuous_space_only_where_the_searcher_takes_one(name):
    leaves = {"a": Leaf(loguniform=[1e-3, 1e-1]), "b": Leaf(choice=["x", "y"])}
    if SEARCHERS[name].needs_finite_space:
        with pytest.raises(MedxferInputError, match=rf"space\.a\.loguniform: algorithm {name} "
                                                    "needs grid or choice leaves"):
            build_searcher(name, leaves, _request(name, 4))
        return
    got = _run(name, leaves, _request(name, 4))
    assert len(got) == 4
    assert all(1e-3 <= c["a"] <= 1e-1 and c["b"] in ("x", "y") for c in got)
    assert len({c["a"] for c in got}) == 4  # sampled, not enumerated


def test_grid_leaves_where_the_searcher_cannot_search_them():
    leaves = {"a": Leaf(grid=[1, 2, 3])}
    with pytest.raises(MedxferInputError, match=r"space\.a\.grid: algorithm hyperopt cannot "
                                                "search a grid leaf"):
        build_searcher("hyperopt", leaves, _request("hyperopt", 3))
    # random crosses a grid leaf with its samples: num_samples x the grid
    assert sorted(c["a"] for c in _run("random", leaves, _request("random", 2))) == [1, 1, 2, 2,
                                                                                      3, 3]


@pytest.mark.parametrize("name", ["prior", "warmstart", "joint"])
def test_a_searcher_that_uses_a_prior_needs_one(name):
    with pytest.raises(MedxferInputError, match=rf"searcher '{name}' needs a prior"):
        build_searcher(name, FINITE, SearchRequest(num_samples=6))
