"""The joint (source x configuration) searcher: belief, proposals, final pick, the
leave-target-out guard, and the searcher inside a real Ray Tune run.

Hand-made prior used throughout: configurations ``x`` in {0, 1, 2}; two logged tasks of other
targets, one per source kind —

* ``("imagenet", "dermamnist")`` ranks x = 2 best, then 1, then 0;
* ``("medmnist", "dermamnist")`` ranks x = 0 best, then 1, then 2.

So with the same-source weight, ``imagenet`` starts at x = 2 and ``medmnist`` at x = 0.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from medxfer.errors import MedxferInputError
from medxfer.tune.joint import JointSearcher, build, select
from medxfer.tune.joint_prior import JointPrior, SourcePrior, combine_scores, normal_scores
from medxfer.tune.warmstart import WarmStartPrior

SOURCES = ["imagenet", "medmnist", "radimagenet"]
SPACE = {"source": SOURCES, "x": [0, 1, 2]}


def _config_prior(excluded="bloodmnist", tasks=(("imagenet", "dermamnist"),
                                               ("medmnist", "dermamnist"))):
    ranks = np.array([[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]])[:len(tasks)]
    return WarmStartPrior(("x",), (), list(tasks), [(0.0,), (1.0,), (2.0,)], ranks, excluded)


def _prior(scores=None, **kw):
    scores = {"imagenet": 0.2, "medmnist": 0.9, "radimagenet": 0.5} if scores is None else scores
    return JointPrior("bloodmnist", scores, _config_prior(), **kw)


def _drive(searcher, table, n):
    """Propose ``n`` trials; ``table[(source, x)]`` is the val loss (None: failed trial)."""
    out = []
    for t in range(n):
        cfg = searcher.suggest(f"t{t}")
        if cfg == JointSearcher.FINISHED:
            break
        v = table.get((cfg["source"], cfg["x"]))
        searcher.on_trial_complete(f"t{t}", None if v is None else {"val_loss": v},
                                   error=v is None)
        out.append((cfg["source"], cfg["x"]))
    return out


def test_normal_scores_rank_values_and_leave_nan_in_the_middle():
    z = normal_scores([0.1, 5.0, math.nan, 2.0])
    # ranks 1, 3, -, 2 of n = 3: Phi^-1(0.5/3), Phi^-1(2.5/3), 0, Phi^-1(0.5) = 0
    assert z == pytest.approx([-0.96742157, 0.96742157, 0.0, 0.0])
    assert normal_scores([1.0, 1.0, 1.0]).tolist() == [0.0, 0.0, 0.0]  # no information


def test_combine_scores_is_the_mean_normal_score_over_metrics():
    a = pd.DataFrame({"t": [1.0, 2.0, 3.0]}, index=["s1", "s2", "s3"])
    b = pd.DataFrame({"t": [30.0, 20.0, 10.0]}, index=["s1", "s2", "s3"])  # reversed, other scale
    c = combine_scores({"a": a, "b": b})
    assert c["t"].tolist() == pytest.approx([0.0, 0.0, 0.0])
    c = combine_scores({"a": a, "b": a * 100})
    assert c["t"].tolist() == pytest.approx(normal_scores([1, 2, 3]).tolist())
    with pytest.raises(MedxferInputError, match="no score tables"):
        combine_scores({})


def test_source_prior_is_the_mean_percentile_on_the_other_targets():
    sel = pd.DataFrame({"row": ["a", "b", "a", "b", "a", "b"],
                        "target": ["t1", "t1", "t2", "t2", "own", "own"],
                        "value": [0.9, 0.8, 0.7, 0.75, 0.1, 0.99]})
    p = SourcePrior.from_selected(sel, exclude_target="own")
    # t1: a best (1.0), b 0.5; t2: b best. Mean: a 0.75, b 0.75; "own" never counted.
    assert p.values == {"a": 0.75, "b": 0.75} and p.targets == ("t1", "t2")
    leaky = SourcePrior.from_selected(sel, exclude_target=None)
    assert leaky.values["b"] > leaky.values["a"]


def test_belief_adds_the_weighted_source_prior_to_the_score_ranks():
    sp = SourcePrior({"imagenet": 0.9, "medmnist": 0.5, "radimagenet": 0.1}, "bloodmnist",
                     ("dermamnist",))
    z = normal_scores([1, 3, 2])  # score ranks: medmnist > radimagenet > imagenet
    assert _prior().belief(SOURCES) == pytest.approx(z)
    q = _prior(sources=sp, prior_weight=2.0).belief(SOURCES)
    assert q == pytest.approx(z + 2.0 * normal_scores([3, 2, 1]))
    # A source without a score sits in the middle of the score ranking.
    assert _prior({"medmnist": 1.0, "imagenet": 0.0}).belief(SOURCES)[2] == 0.0


def test_round_robin_over_the_best_believed_sources_in_same_source_prior_order():
    s = JointSearcher(metric="val_loss", mode="min", prior=_prior(), explore=2, seed=0)
    s.set_search_properties("val_loss", "min", SPACE)
    table = {(src, x): 0.5 for src in SOURCES for x in range(3)}
    # belief: medmnist, radimagenet (explore 2); medmnist follows its own task (x = 0 first),
    # radimagenet has no task of its own: the mean of both tasks ties, broken by the seed.
    got = _drive(s, table, 9)
    assert got[0] == ("medmnist", 0) and got[2] == ("medmnist", 1) and got[4] == ("medmnist", 2)
    assert [src for src, _ in got[:5]] == ["medmnist", "radimagenet"] * 2 + ["medmnist"]
    # medmnist's grid is exhausted after 5 trials: imagenet joins, starting at its own task's
    # best x = 2, and being the least tried it goes first until it has caught up.
    assert got[5:7] == [("imagenet", 2), ("imagenet", 1)]
    assert got[7][0] == "radimagenet" and got[8] == ("imagenet", 0)  # tie: belief order
    assert len(set(got)) == 9 and s.suggest("end") == JointSearcher.FINISHED


def test_results_of_one_source_reorder_the_others_configurations():
    s = JointSearcher(metric="val_loss", mode="min", prior=_prior(), explore=2, seed=0)
    s.set_search_properties("val_loss", "min", SPACE)
    # Without results radimagenet (no task of its own) ties everywhere; seed 0 breaks the tie
    # as x = 1, 2, 0 (permutation [2, 0, 1]).
    table = {("medmnist", 0): 0.2, ("medmnist", 1): 0.3, ("radimagenet", 1): 0.5,
             ("radimagenet", 0): 0.6, ("radimagenet", 2): 0.7}
    got = _drive(s, table, 4)
    # medmnist x0 < x1 agrees with the medmnist task (+1) and not with the imagenet task (-1):
    # weights 1 : e^(2 ln 3) = 1 : 9, so radimagenet's next is x = 0 (mean rank 0.1), not 2.
    assert got == [("medmnist", 0), ("radimagenet", 1), ("medmnist", 1), ("radimagenet", 0)]


def test_failed_trials_count_and_are_never_repeated():
    s = JointSearcher(metric="val_loss", mode="min", prior=_prior(), explore=1, seed=0)
    s.set_search_properties("val_loss", "min", SPACE)
    got = _drive(s, {("medmnist", 1): 0.3}, 3)  # x = 0 and 2 fail
    assert got == [("medmnist", 0), ("medmnist", 1), ("medmnist", 2)]
    assert [math.isnan(t["value"]) for t in s.trials] == [True, False, True]
    assert s.selected()["config"] == {"x": 1}


def test_select_weighs_belief_against_the_log_ratio_of_val_losses():
    sources = ["a", "a", "b"]
    values = [0.50, 0.40, 0.30]       # a's best 0.40, b's best 0.30
    belief = {"a": 1.0, "b": 0.0}
    gap = math.log(0.40 / 0.30)       # 0.2877: a's evidence against it
    assert select(sources, values, belief, evidence=1.0 / gap - 0.1) == 1   # belief wins: a's best
    assert select(sources, values, belief, evidence=1.0 / gap + 0.1) == 2   # val loss wins
    assert select(sources, values, belief, evidence=0.0) == 1
    assert select(sources, [0.5, math.nan, math.nan], belief) == 0
    assert select(sources, [math.nan] * 3, belief) is None
    # mode max: the largest value is the best
    assert select(["a", "b"], [0.9, 0.95], {"a": 0.0, "b": 0.0}, mode="max") == 1


def test_the_searchers_pick_is_select_over_its_trials():
    s = JointSearcher(metric="val_loss", mode="min", prior=_prior(), explore=2, evidence=10.0,
                      seed=0)
    s.set_search_properties("val_loss", "min", SPACE)
    table = {("medmnist", 0): 0.50, ("medmnist", 1): 0.45, ("medmnist", 2): 0.60,
             ("radimagenet", 0): 0.20, ("radimagenet", 1): 0.90, ("radimagenet", 2): 0.95,
             ("imagenet", 0): 0.80, ("imagenet", 1): 0.85, ("imagenet", 2): 0.90}
    _drive(s, table, 9)
    pick = s.selected()
    # log(0.45 / 0.20) * 10 = 8.1 outweighs a belief gap of 0.97: radimagenet's x = 0.
    assert (pick["source"], pick["config"]) == ("radimagenet", {"x": 0})
    s2 = JointSearcher(metric="val_loss", mode="min", prior=_prior(), explore=2, evidence=0.0,
                       seed=0)
    s2.set_search_properties("val_loss", "min", SPACE)
    _drive(s2, table, 9)
    assert (s2.selected()["source"], s2.selected()["config"]) == ("medmnist", {"x": 1})


def test_leave_target_out_guard_rejects_a_prior_with_the_targets_own_runs():
    with pytest.raises(MedxferInputError, match="exclude_target='bloodmnist'"):
        JointPrior("bloodmnist", {}, _config_prior(excluded=None))
    own = _config_prior(tasks=(("imagenet", "dermamnist"), ("medmnist", "bloodmnist")))
    with pytest.raises(MedxferInputError, match="holds its own runs"):
        JointPrior("bloodmnist", {}, own)
    with pytest.raises(MedxferInputError, match="source prior"):
        JointPrior("bloodmnist", {}, _config_prior(),
                   SourcePrior({"a": 1.0}, None, ("bloodmnist", "dermamnist")))
    JointPrior("bloodmnist", {}, _config_prior(),
               SourcePrior({"a": 1.0}, "bloodmnist", ("dermamnist",)))  # accepted


def test_without_a_source_dimension_it_is_the_warm_start_search():
    s = JointSearcher({"x": [0, 1, 2]}, metric="val_loss", mode="min",
                      prior=_config_prior(tasks=(("medmnist", "dermamnist"),)), seed=0)
    got = [s.suggest(f"t{i}") for i in range(4)]
    assert got == [{"x": 2}, {"x": 1}, {"x": 0}, JointSearcher.FINISHED]  # the task's order
    with pytest.raises(MedxferInputError, match="leave-target-out"):  # a bare prior is guarded
        JointSearcher(prior=_config_prior(excluded="dermamnist"))


def test_save_and_restore_continue_the_same_search(tmp_path):
    a = JointSearcher(metric="val_loss", mode="min", prior=_prior(), seed=0)
    a.set_search_properties("val_loss", "min", SPACE)
    table = {(src, x): 0.1 * (x + 1) for src in SOURCES for x in range(3)}
    first = _drive(a, table, 4)
    a.save(str(tmp_path / "ckpt"))
    b = JointSearcher(metric="val_loss", mode="min")
    b.restore(str(tmp_path / "ckpt"))
    rest_a, rest_b = _drive(a, table, 5), _drive(b, table, 5)
    assert rest_a == rest_b and not set(first) & set(rest_b)


def test_registry_and_factory_build_the_searcher_over_choices():
    from ray import tune

    from medxfer.tune.search_config import Leaf
    from medxfer.tune.searchers import SearchRequest, build_searcher

    leaves = {"source": Leaf(choice=SOURCES), "x": Leaf(choice=[0, 1, 2])}
    setup = build_searcher("joint", leaves, SearchRequest(num_samples=5, seed=0, prior=_prior()))
    setup.search_alg.set_search_properties("val_loss", "min", setup.param_space)
    assert setup.search_alg.suggest("t0") == {"source": "medmnist", "x": 0}

    made = build({"source": tune.choice(SOURCES), "x": tune.choice([0, 1, 2])},
                 SearchRequest(num_samples=5, seed=0, prior=_prior()))
    assert isinstance(made.search_alg, JointSearcher) and made.num_samples == 5
    made.search_alg.set_search_properties("val_loss", "min", made.param_space)
    assert made.search_alg.suggest("t0") == {"source": "medmnist", "x": 0}


FLOOR = {"imagenet": 0.30, "medmnist": 0.20, "radimagenet": 0.50}
BEST_X = {"imagenet": 2, "medmnist": 0, "radimagenet": 1}


def _toy_loss(source, x):
    return FLOOR[source] + (x - BEST_X[source]) ** 2 / 10


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_joint_searcher_in_a_real_tune_run(ray_runtime, tmp_path):
    """A real Tuner drives the searcher: the same proposals as in-process, the kept model."""
    from ray import tune

    def toy(config):
        tune.report({"val_loss": _toy_loss(config["source"], config["x"])})

    class Order(tune.Callback):
        def __init__(self):
            self.trials = []

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.trials.append((trial.config["source"], trial.config["x"], result["val_loss"]))

    searcher = JointSearcher(metric="val_loss", mode="min", prior=_prior(), explore=2, seed=0)
    order = Order()
    tuner = tune.Tuner(
        tune.with_resources(toy, {"CPU": 0, "trial_slot": 1}),
        param_space={"source": tune.choice(SOURCES), "x": tune.choice([0, 1, 2])},
        tune_config=tune.TuneConfig(search_alg=searcher, metric="val_loss", mode="min",
                                    num_samples=4, max_concurrent_trials=1),
        run_config=tune.RunConfig(name="joint", storage_path=str(tmp_path), verbose=0,
                                  callbacks=[order],
                                  failure_config=tune.FailureConfig(max_failures=0)))
    grid = tuner.fit()
    assert not grid.errors and len(order.trials) == 4
    in_process = JointSearcher(metric="val_loss", mode="min", prior=_prior(), explore=2, seed=0)
    in_process.set_search_properties("val_loss", "min", SPACE)
    table = {(s, x): _toy_loss(s, x) for s in SOURCES for x in range(3)}
    assert [(s, x) for s, x, _ in order.trials] == _drive(in_process, table, 4)
    assert order.trials[0] == ("medmnist", 0, pytest.approx(0.20))
    # The kept model: medmnist x = 0 (belief and the lowest val loss agree).
    i = select([t[0] for t in order.trials], [t[2] for t in order.trials],
               dict(zip(SOURCES, _prior().belief(SOURCES))))
    assert order.trials[i][:2] == ("medmnist", 0)
    assert in_process.selected()["config"] == {"x": 0}


def _selected(truth):
    """selected_runs-like rows from {target: {source: test AUC}}."""
    return pd.DataFrame([(s, t, v) for t, col in truth.items() for s, v in col.items()],
                        columns=["row", "target", "value"])


def test_prior_weight_is_calibrated_on_the_other_targets_only():
    from medxfer.tune.joint_prior import calibrate_prior_weight

    # On t1..t3 the sources rank a > b > c > d; the scores put b first and a last there.
    truth = {t: {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6} for t in ("t1", "t2", "t3")}
    wrong = pd.DataFrame({t: {"a": 0.1, "b": 0.4, "c": 0.3, "d": 0.2} for t in ("t1", "t2", "t3")})
    # belief a: -1.15 + 1.15 w, b: 1.15 + 0.32 w (normal scores of 4 ranks): a wins for w > 2.77
    assert calibrate_prior_weight("t0", wrong, _selected(truth)) == 4.0
    right = pd.DataFrame({t: {"a": 0.4, "b": 0.3, "c": 0.2, "d": 0.1} for t in ("t1", "t2", "t3")})
    assert calibrate_prior_weight("t0", right, _selected(truth)) == 0.0  # ties: scores first
    # The target's own ground truth is never read: changing it changes nothing.
    own = dict(truth, t0={"a": 0.1, "b": 0.99, "c": 0.2, "d": 0.3})
    scores = wrong.assign(t0=[0.1, 0.4, 0.3, 0.2])
    assert calibrate_prior_weight("t0", scores, _selected(own)) == 4.0
    assert calibrate_prior_weight("t0", scores[["t0"]], _selected(truth)) is None
