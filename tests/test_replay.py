"""Benchmark replay: grid query, searchers driven in-process, leave-target-out prior, CLI, Tuner.

The tiny store (hand-made CSVs) has three targets x two sources x 6 configurations
(lr {0.001, 0.01, 0.1} x batch size {two per target}; wd 0, momentum 0.9):

* imagenet -> bloodmnist, the replayed pair (ground truth: lr 0.1 / bs 32, test AUC 0.90):

  ======  ====  ========  ========
  lr      bs    val_loss  test_auc
  ======  ====  ========  ========
  0.001   32    0.90      0.70
  0.001   64    (FAILED run only: no metrics)
  0.01    32    0.50      0.897   <- within 0.005 of 0.90
  0.01    64    0.60      0.95
  0.1     32    0.40      0.90    <- ground truth
  0.1     64    0.70      0.85
  ======  ====  ========  ========

* every dermamnist / pathmnist task ranks, best first: (0.1, big bs), (0.01, big), (0.1, small),
  (0.01, small), (0.001, big), (0.001, small) — so bloodmnist's leave-target-out warm-start
  order is 0.1/64, 0.01/64, 0.1/32, 0.01/32, 0.001/64, 0.001/32.
* radimagenet -> bloodmnist ranks the other way round (a leak would show in the prior).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from benchmark_csvs import run_row, write_export

from medxfer.cli import main
from medxfer.tracking.benchmark_import import import_benchmark
from medxfer.tracking.query import grid_runs
from medxfer.errors import MedxferInputError
from medxfer.tune.replay import load_grids, replay, replay_pair, summarize
from medxfer.tune.searchers import SearchRequest, build_searcher
from medxfer.tune.warmstart import WarmStartPrior, WarmStartSearcher

BS = {"bloodmnist": ("32", "64"), "dermamnist": ("64", "128"), "pathmnist": ("128", "256")}
FILES = {"bloodmnist": "fined_blood.csv", "dermamnist": "fined_derma.csv",
         "pathmnist": "fined_path.csv"}
LRS = ("0.001", "0.01", "0.1")
# (lr, batch-size position) best first, for the dermamnist / pathmnist tasks
OTHER_ORDER = [("0.1", 1), ("0.01", 1), ("0.1", 0), ("0.01", 0), ("0.001", 1), ("0.001", 0)]
PAIR = {  # imagenet -> bloodmnist: (lr, bs) -> (val_loss, test_auc); None = FAILED only
    ("0.001", "32"): (0.90, 0.70), ("0.001", "64"): None,
    ("0.01", "32"): (0.50, 0.897), ("0.01", "64"): (0.60, 0.95),
    ("0.1", "32"): (0.40, 0.90), ("0.1", "64"): (0.70, 0.85),
}
WARM_ORDER = [("0.1", "64"), ("0.01", "64"), ("0.1", "32"), ("0.01", "32"), ("0.001", "64"),
              ("0.001", "32")]


def _rows(*, other_losses=None, blood_losses=None):
    """Rows of the tiny benchmark; ``*_losses`` override val losses by (lr, bs position)."""
    rows = {t: [] for t in FILES}
    for (lr, bs), res in PAIR.items():
        if res is None:
            rows["bloodmnist"].append(run_row("imagenet", "bloodmnist", val_loss=None,
                                              test_auc=None, lr=lr, wd="0.0", batch_size=bs,
                                              status="FAILED"))
        else:
            vl = res[0] if blood_losses is None else blood_losses[(lr, BS["bloodmnist"].index(bs))]
            rows["bloodmnist"].append(run_row("imagenet", "bloodmnist", val_loss=vl,
                                              test_auc=res[1], lr=lr, wd="0.0", batch_size=bs))
    for rank, (lr, pos) in enumerate(reversed(OTHER_ORDER)):  # reversed ranking
        rows["bloodmnist"].append(run_row("radimagenet", "bloodmnist", val_loss=0.1 * (rank + 1),
                                          test_auc=0.8, lr=lr, wd="0.0",
                                          batch_size=BS["bloodmnist"][pos]))
    for target in ("dermamnist", "pathmnist"):
        for source in ("imagenet", "radimagenet"):
            for rank, (lr, pos) in enumerate(OTHER_ORDER):
                vl = 0.1 * (rank + 1)
                if other_losses is not None and target == "dermamnist":
                    vl = other_losses[(lr, pos)]
                rows[target].append(run_row(source, target, val_loss=vl, test_auc=0.8 + rank / 100,
                                            lr=lr, wd="0.0", batch_size=BS[target][pos]))
    return rows


def _store(path, uri, **kw):
    for target, rows in _rows(**kw).items():
        write_export(path / FILES[target], rows)
    import_benchmark(path, name="tiny", tracking_uri=uri)
    return uri


@pytest.fixture
def tiny(tmp_path, tracking_uri):
    return _store(tmp_path / "tiny", tracking_uri)


def _grid(uri, row="imagenet", target="bloodmnist"):
    grids, runs = load_grids(uri)
    return next(g for g in grids if (g.row, g.target) == (row, target)), runs


def _lr_bs(trials):
    return [(str(t["lr"]), str(t["batch_size"])) for t in trials]


def test_grid_runs_one_row_per_run_with_params_and_metrics(tiny):
    runs = grid_runs(tiny)
    assert len(runs) == 6 + 6 + 2 * 6 * 2
    assert list(runs.columns) == ["run_id", "row", "target", "lr", "wd", "momentum",
                                  "batch_size", "val_loss", "test_auc"]
    pair = runs[(runs.row == "imagenet") & (runs.target == "bloodmnist")]
    failed = pair[(pair.lr == "0.001") & (pair.batch_size == "64")]
    assert len(failed) == 1 and failed.val_loss.isna().all() and failed.test_auc.isna().all()
    best = pair.loc[pair.val_loss.idxmin()]
    assert (best.lr, best.batch_size, best.test_auc) == ("0.1", "32", pytest.approx(0.90))


def test_grid_order_and_trials_to_within_counted_by_hand(tiny):
    g, _ = _grid(tiny)
    assert g.truth == pytest.approx(0.90)
    assert len(g.results) == 5  # the FAILED-only configuration is not a result
    tr = replay_pair(g, "grid", seed=0, budget=50, stop_when_within=False)
    # Ray's grid order (lr outer, batch size inner); the FAILED configuration is a failed trial.
    assert _lr_bs(tr.trials) == [("0.001", "32"), ("0.001", "64"), ("0.01", "32"),
                                 ("0.01", "64"), ("0.1", "32"), ("0.1", "64")]
    assert math.isnan(tr.trials[1]["val_loss"])
    # t1 selects AUC .70, t2 fails, t3 selects .897: |.897 - .90| <= .005.
    assert tr.trials_to_within == 3
    # Tighter: .897 stays selected through t4 (val loss .60 > .50); t5 selects the truth.
    assert replay_pair(g, "grid", seed=0, budget=50, tolerance=0.001).trials_to_within == 5
    # Budget too small: never reached.
    assert replay_pair(g, "grid", seed=0, budget=2).trials_to_within == math.inf


def test_prior_order_is_the_other_targets_mean_rank(tiny):
    g, runs = _grid(tiny)
    prior = WarmStartPrior.from_runs(runs, exclude_target="bloodmnist")
    assert sorted({t for _, t in prior.tasks}) == ["dermamnist", "pathmnist"]
    configs = [dict(zip(g.params, k)) for k in
               [(float(lr), 0.0, 0.9, int(bs)) for lr, bs in PAIR]]
    assert _lr_bs([configs[i] for i in prior.order(configs)]) == [
        (str(float(lr)), bs) for lr, bs in WARM_ORDER]
    tr = replay_pair(g, "prior", seed=0, budget=50, prior=prior, stop_when_within=False)
    assert _lr_bs(tr.trials) == [(str(float(lr)), bs) for lr, bs in WARM_ORDER]
    # .85 (t1), .95 (t2: val loss .60 < .70), then the truth itself at t3.
    assert tr.trials_to_within == 3


def test_leave_target_out_prior_ignores_the_targets_own_runs(tmp_path, tiny):
    _, runs = _grid(tiny)
    base = WarmStartPrior.from_runs(runs, exclude_target="bloodmnist")
    # Same benchmark, but bloodmnist's own imagenet run val losses reversed.
    flipped = {(lr, pos): 1.0 - 0.1 * r for r, (lr, pos) in enumerate(OTHER_ORDER)}
    uri2 = _store(tmp_path / "flip", f"sqlite:///{tmp_path / 'flip.db'}", blood_losses=flipped)
    g2, runs2 = _grid(uri2)
    assert not runs2[runs2.target == "bloodmnist"].val_loss.equals(
        runs[runs.target == "bloodmnist"].val_loss)
    other = WarmStartPrior.from_runs(runs2, exclude_target="bloodmnist")
    assert other.tasks == base.tasks and other.keys == base.keys
    np.testing.assert_array_equal(other.ranks, base.ranks)
    configs = g2.configs()
    assert other.order(configs) == base.order(configs)
    first = WarmStartSearcher(prior=other, candidates=configs, seed=0, metric="val_loss",
                              mode="min").suggest("t1")
    assert (first["lr"], first["batch_size"]) == (0.1, 64)
    # Control: the same change to another target's runs does move bloodmnist's prior, and
    # without leaving the target out its own runs would enter the prior.
    uri3 = _store(tmp_path / "derma", f"sqlite:///{tmp_path / 'derma.db'}", other_losses=flipped)
    _, runs3 = _grid(uri3)
    moved = WarmStartPrior.from_runs(runs3, exclude_target="bloodmnist")
    assert not np.array_equal(moved.ranks, base.ranks)
    leaky = WarmStartPrior.from_runs(runs, exclude_target=None)
    assert ("imagenet", "bloodmnist") in leaky.tasks
    assert ("imagenet", "bloodmnist") not in base.tasks


def test_warmstart_never_repeats_a_grid_point_and_finishes(tiny):
    g, runs = _grid(tiny)
    prior = WarmStartPrior.from_runs(runs, exclude_target="bloodmnist")
    for seed in range(3):
        tr = replay_pair(g, "warmstart", seed=seed, budget=100, prior=prior,
                         stop_when_within=False)
        keys = [g.key(t) for t in tr.trials]
        assert len(keys) == len(set(keys)) == 6  # the whole 3 x 2 grid once, then FINISHED
        assert tr.trials_to_within == 3


def test_warmstart_adapts_to_the_tasks_that_agree(tiny):
    # Two kinds of logged tasks disagree; after two observations that match the second kind,
    # the searcher follows the second kind's ranking rather than the first's.
    configs = [{"x": i} for i in range(6)]
    a = [0, 1, 2, 3, 4, 5]
    b = [1, 0, 5, 4, 3, 2]  # agrees with a on nothing past the first two... in rank order
    ranks = np.array([a, a, b], dtype=float) / 5
    prior = WarmStartPrior(("x",), (), [("s", "t1"), ("s", "t2"), ("s", "t3")],
                           [(float(i),) for i in range(6)], ranks, "t0")
    s = WarmStartSearcher(prior=prior, candidates=configs, metric="loss", mode="min",
                          local_every=0)  # the prior's order alone (local steps: below)
    assert s.suggest("1") == {"x": 0}   # mean rank: x0 (0+0+.2)/3 best
    s.on_trial_complete("1", {"loss": 0.9})
    assert s.suggest("2") == {"x": 1}
    s.on_trial_complete("2", {"loss": 0.1})   # x1 < x0: as task b says, against a
    # Task b now outweighs a: b's next best is x5, a's is x2.
    assert s.suggest("3") == {"x": 5}
    fixed = WarmStartSearcher(prior=prior, candidates=configs, metric="loss", mode="min",
                              adaptive=False)
    for i in ("1", "2"):
        fixed.suggest(i)
        fixed.on_trial_complete(i, {"loss": 0.9 if i == "1" else 0.1})
    assert fixed.suggest("3") == {"x": 2}


def _agreement_by_hand(R, observed):
    """Net agreement of every task with every observed pair, counted pair by pair."""
    out = np.zeros(len(R))
    for (i, yi), (j, yj) in itertools.combinations(observed, 2):
        for t in range(len(R)):
            if np.isnan(R[t, i]) or np.isnan(R[t, j]) or yi == yj or R[t, i] == R[t, j]:
                continue
            out[t] += 1 if (R[t, i] < R[t, j]) == (yi < yj) else -1
    return out


def test_task_weights_count_agreements_as_the_pairs_say():
    """TaskWeights (shared by the warm-start and joint searchers) against a pair-by-pair loop:
    incremental agreement, weights conf/(1-conf) ** agreement x base, weighted mean ranks."""
    from medxfer.tune.warmstart import TaskWeights

    rng = np.random.default_rng(0)
    R = rng.random((7, 9))
    R[rng.random(R.shape) < 0.2] = np.nan
    tw = TaskWeights(R, confidence=0.8)
    observed = [(3, 0.5), (1, 0.2), (7, 0.9), (0, 0.2), (5, float("nan")), (8, 0.1)]
    for c, y in observed:
        tw.observe(c, y)
    finite = [(c, y) for c, y in observed if not math.isnan(y)]
    agree = _agreement_by_hand(R, finite)
    np.testing.assert_array_equal(tw.agreement, agree)
    base = rng.random(7) + 0.5
    w = 4.0 ** (agree - agree.max()) * base
    np.testing.assert_allclose(tw.weights(base), w)
    want = [np.nansum(R[:, c] * w) / w[~np.isnan(R[:, c])].sum() for c in range(9)]
    np.testing.assert_allclose(tw.scores(base), want)
    # Groups (the joint searcher's sources) are never compared with each other.
    grouped = TaskWeights(R)
    grouped.observe(3, 0.5, group="a")
    grouped.observe(1, 0.2, group="b")
    assert not grouped.agreement.any()


def _agreement_near_the_top(R, observed, top):
    """Net agreement counted pair by pair over the pairs with one of the ``top`` best."""
    best = sorted(range(len(observed)), key=lambda i: observed[i][1])[:top]
    pairs = [(observed[a], observed[b]) for a, b in itertools.combinations(range(len(observed)), 2)
             if a in best or b in best]
    out = np.zeros(len(R))
    for (i, yi), (j, yj) in pairs:
        for t in range(len(R)):
            if np.isnan(R[t, i]) or np.isnan(R[t, j]) or yi == yj or R[t, i] == R[t, j]:
                continue
            out[t] += 1 if (R[t, i] < R[t, j]) == (yi < yj) else -1
    return out


def test_task_weights_near_the_top_count_only_pairs_with_a_best_result():
    """``top``: only pairs involving one of the best results so far count, recounted as the
    best ones change (a new best result drops the pairs of the one it pushed out)."""
    from medxfer.tune.warmstart import TaskWeights

    rng = np.random.default_rng(1)
    R = rng.random((6, 10))
    R[rng.random(R.shape) < 0.2] = np.nan
    tw = TaskWeights(R, top=2)
    observed = [(3, 0.5), (1, 0.7), (7, 0.9), (0, 0.2), (5, 0.8), (8, 0.1), (2, 0.6)]
    for n, (c, y) in enumerate(observed, 1):
        tw.observe(c, y)
        np.testing.assert_array_equal(tw.agreement,
                                      _agreement_near_the_top(R, observed[:n], 2))
    # With every result among the top, it is the all-pairs count.
    full = TaskWeights(R, top=len(observed))
    for c, y in observed:
        full.observe(c, y)
    np.testing.assert_array_equal(full.agreement, _agreement_by_hand(R, observed))
    assert not np.array_equal(tw.agreement, full.agreement)


def test_acceptable_picks_are_the_top_val_losses_near_the_tasks_pick():
    """21 configurations of one task: the top 5 % by val loss are ranks 0 and 1 (1/20); of
    those, acceptable where test AUC is within 0.005 of the best-val-loss run's."""
    n = 21
    loss = np.linspace(0.1, 0.5, n)
    auc = np.full(n, 0.80)
    auc[0], auc[1], auc[2] = 0.90, 0.896, 0.90   # rank 2 is near, but not in the top 5 %
    runs = pd.DataFrame({"row": "s", "target": "t1", "x": np.arange(n).astype(float),
                         "val_loss": loss, "test_auc": auc})
    prior = WarmStartPrior.from_runs(runs, exclude_target=None, params=("x",), ordinal=())
    got = prior.acceptable_matrix([{"x": float(i)} for i in range(n)])[0]
    np.testing.assert_array_equal(np.flatnonzero(got), [0, 1])
    auc[1] = 0.894                                 # 0.006 off the pick: no longer acceptable
    runs["test_auc"] = auc
    prior = WarmStartPrior.from_runs(runs, exclude_target=None, params=("x",), ordinal=())
    np.testing.assert_array_equal(np.flatnonzero(prior.acceptable[0]), [0])
    # Without a logged test metric: the top 5 % by val loss.
    bare = WarmStartPrior.from_runs(runs.drop(columns="test_auc"), exclude_target=None,
                                    params=("x",), ordinal=())
    np.testing.assert_array_equal(np.flatnonzero(bare.acceptable[0]), [0, 1])


def test_warmstart_prefers_the_configuration_acceptable_on_more_tasks():
    """x0 has the best mean rank, but only task t1 would have accepted it; x1 was an
    acceptable pick on t2 and t3: the first proposal is x1 (by the mean rank alone: x0)."""
    configs = [{"x": i} for i in range(4)]
    ranks = np.array([[0, 3, 1, 2], [1, 0, 2, 3], [1, 0, 3, 2]]) / 3
    accept = (ranks == 0).astype(float)  # t1 accepts x0; t2 and t3 accept x1
    tasks = [("s", "t1"), ("s", "t2"), ("s", "t3")]
    keys = [(float(i),) for i in range(4)]
    with_accept = WarmStartPrior(("x",), (), tasks, keys, ranks, "t0", acceptable=accept)
    plain = WarmStartPrior(("x",), (), tasks, keys, ranks, "t0")
    # mean ranks x0 2/9, x1 3/9, x2 6/9, x3 7/9; acceptable shares x0 1/3, x1 2/3, x2 = x3 = 0
    assert plain.order(configs) == [0, 1, 2, 3]
    assert with_accept.order(configs) == [1, 0, 2, 3]


def _two_rows_prior():
    """Row s1 (three tasks) ranks x0 < x1 < ... < x5; row s2 (one task) the other way round."""
    up, down = np.arange(6) / 5, np.arange(6)[::-1] / 5
    return WarmStartPrior(("x",), (), [("s1", "t1"), ("s1", "t2"), ("s1", "t3"), ("s2", "t1")],
                          [(float(i),) for i in range(6)], np.array([up, up, up, down]), "t0")


def test_warmstart_weighs_the_searched_rows_tasks_first():
    configs = [{"x": i} for i in range(6)]
    prior = _two_rows_prior()
    first = {row: WarmStartSearcher(prior=prior, candidates=configs, metric="loss",
                                    mode="min", row=row).suggest("1")
             for row in (None, "s1", "s2")}
    # All tasks alike: s1's three tasks outvote s2's one; s2's own task decides for s2.
    assert first == {None: {"x": 0}, "s1": {"x": 0}, "s2": {"x": 5}}
    # The replay searches each pair as its row: same-row tasks first there too.
    setup = build_searcher("warmstart", {"x": _Leaf(list(range(6)))},
                           SearchRequest(prior=prior, row="s2", num_samples=6))
    setup.search_alg.set_search_properties("loss", "min", setup.param_space)
    assert setup.search_alg.suggest("1") == {"x": 5}


class _Leaf:
    kind = "choice"

    def __init__(self, values):
        self.values = values


def test_every_third_proposal_stays_near_the_best_so_far():
    """Hand-made: the prior ranks x9, x1, x2, ..., x8, x0 best first (all tasks alike). After
    x9: 0.5 and x1: 0.9 the third proposal is the best-ranked untried configuration within two
    grid steps of x9, the best so far: x7 (not x2, the prior's next)."""
    from medxfer.tune.warmstart import grid_levels

    configs = [{"x": float(i)} for i in range(10)]
    position = [9, 1, 2, 3, 4, 5, 6, 7, 8, 0]  # position[k] = the config at rank k
    ranks = np.empty(10)
    ranks[position] = np.arange(10) / 9
    prior = WarmStartPrior(("x",), (), [("s", "t1"), ("s", "t2")],
                           [(float(i),) for i in range(10)], np.array([ranks, ranks]), "t0")

    def proposals(**kw):
        s = WarmStartSearcher(prior=prior, candidates=configs, metric="loss", mode="min", **kw)
        out = []
        for i, loss in enumerate((0.5, 0.9, None)):
            out.append(s.suggest(str(i))["x"])
            if loss is not None:
                s.on_trial_complete(str(i), {"loss": loss})
        return out

    assert proposals() == [9.0, 1.0, 7.0]
    assert proposals(local_every=0) == [9.0, 1.0, 2.0]
    assert proposals(local_steps=1) == [9.0, 1.0, 8.0]
    # Grid steps: numbers by value, other values in order of appearance.
    lv = grid_levels([{"a": 0.1, "b": "x"}, {"a": 0.01, "b": "y"}, {"a": 1.0, "b": "x"}])
    np.testing.assert_array_equal(lv, [[1, 0], [0, 1], [2, 0]])


@pytest.mark.parametrize("searcher", ["random", "shuffled", "hyperopt", "warmstart"])
def test_seeds_reproducible(tiny, searcher):
    g, runs = _grid(tiny)
    prior = WarmStartPrior.from_runs(runs, exclude_target="bloodmnist")
    a = replay_pair(g, searcher, seed=7, budget=6, prior=prior, stop_when_within=False)
    b = replay_pair(g, searcher, seed=7, budget=6, prior=prior, stop_when_within=False)
    assert a.trials == b.trials or _nan_equal(a.trials, b.trials)
    if searcher in ("random", "shuffled", "hyperopt"):
        seqs = {tuple(_lr_bs(replay_pair(g, searcher, seed=s, budget=6,
                                         stop_when_within=False).trials)) for s in range(6)}
        assert len(seqs) > 1  # the seed matters


def _nan_equal(x, y):
    return pd.DataFrame(x).equals(pd.DataFrame(y))


def test_replay_and_summary(tiny):
    res = replay(tiny, searchers=["grid", "warmstart"], seeds=2, budget=10)
    assert set(res.searcher) == {"grid", "warmstart"}
    assert len(res) == 2 * 6 * 2  # searchers x pairs x seeds
    one = res[(res.searcher == "grid") & (res.row == "imagenet") & (res.target == "bloodmnist")]
    assert list(one.trials) == [3, 3]
    summ = summarize(pd.DataFrame({"searcher": ["s"] * 10,
                                   "trials": [1, 2, 3, 4, 5, 6, 7, 8, 9, math.inf]}))
    assert summ.loc["s", "median"] == 5.5 and summ.loc["s", "p90"] == math.inf
    assert summ.loc["s", "unreached"] == 1 and summ.loc["s", "mean"] == math.inf


def test_cli(tiny, capsys):
    assert main(["benchmark", "replay", "--searcher", "grid", "--searcher", "warmstart",
                 "--seeds", "1", "--format", "csv"]) == 0
    out = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out)).set_index("searcher")
    assert list(out.index) == ["grid", "warmstart"] and (out["n"] == 6).all()
    assert main(["benchmark", "replay", "--searcher", "grid", "--per-pair", "--format", "csv"]) == 0
    per = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    row = per[(per.row == "imagenet") & (per.target == "bloodmnist")].iloc[0]
    assert row.trials == 3
    assert main(["benchmark", "replay", "--searcher", "nope"]) == 2
    assert main(["benchmark", "replay", "--searcher", "grid", "--budget", "0"]) == 2
    assert "searcher 'nope'" in capsys.readouterr().err


def test_replay_rejects_unknown_searcher_naming_the_option(tiny):
    with pytest.raises(MedxferInputError, match=r"^--searcher: unknown searcher 'nope'; valid: "
                                                r"grid, hyperopt, joint, prior, random"):
        replay(tiny, searchers=["grid", "nope"])


@pytest.mark.slow
def test_full_benchmark_warmstart_reduced(benchmark_store):
    uri, _ = benchmark_store
    targets = ("breastmnist", "pneumoniamnist", "retinamnist", "dermamnist")
    grids, runs = load_grids(uri)
    pairs = [(g.row, g.target) for g in grids if g.target in targets]
    assert len(pairs) == 4 * 14 and ("imagenet", "pneumoniamnist") in pairs
    pneu = next(g for g in grids if (g.row, g.target) == ("imagenet", "pneumoniamnist"))
    assert len(pneu.results) == 117  # 3 of the 120 grid points were never logged
    res = replay(uri, searchers=["warmstart"], seeds=1, budget=120, pairs=pairs)
    summ = summarize(res).loc["warmstart"]
    assert summ["unreached"] == 0
    assert summ["median"] <= 10, summ


@pytest.mark.slow
def test_tuner_replay_matches_in_process(tiny, ray_runtime, tmp_path):
    """A short replay through a real Tuner: same trials, same order, logged metrics."""
    from ray import tune

    g, runs = _grid(tiny)
    prior = WarmStartPrior.from_runs(runs, exclude_target="bloodmnist")
    results = {k: v for k, v in g.results.items()}
    params = g.params

    def lookup(config):
        key = tuple(float(config[p]) for p in params)
        if key not in results:
            raise RuntimeError(f"configuration {config} has no logged run")
        vl, auc = results[key]
        tune.report({"val_loss": vl, "test_auc": auc})

    class Order(tune.Callback):
        """Records, in the driver, the configurations in the order Tune starts them."""

        def __init__(self):
            self.configs, self.metrics = [], {}

        def on_trial_start(self, iteration, trials, trial, **info):
            self.configs.append((trial.trial_id, {p: trial.config[p] for p in params}))

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.metrics[trial.trial_id] = result

    n = 4
    for searcher in ("warmstart", "hyperopt"):
        setup = build_searcher(searcher, g.leaves(), SearchRequest(
            seed=3, num_samples=n, prior=prior if searcher == "warmstart" else None,
            row=g.row))
        order = Order()
        tuner = tune.Tuner(
            tune.with_resources(lookup, {"CPU": 0, "trial_slot": 1}),
            param_space=setup.param_space,
            tune_config=tune.TuneConfig(search_alg=setup.search_alg, num_samples=n,
                                        max_concurrent_trials=1),
            run_config=tune.RunConfig(name=f"replay-{searcher}", storage_path=str(tmp_path),
                                      verbose=0, callbacks=[order],
                                      failure_config=tune.FailureConfig(max_failures=0)),
        )
        tuner.fit()
        in_process = replay_pair(g, searcher, seed=3, budget=n, stop_when_within=False,
                                 prior=prior if searcher == "warmstart" else None)
        assert len(order.configs) == n
        for trial_id, cfg in order.configs:
            logged = results.get(g.key(cfg))
            if logged is None:
                assert trial_id not in order.metrics  # failed: nothing reported
            else:
                assert order.metrics[trial_id]["val_loss"] == pytest.approx(logged[0])
                assert order.metrics[trial_id]["test_auc"] == pytest.approx(logged[1])
        assert [g.key(c) for _, c in order.configs] == [g.key(t) for t in in_process.trials], \
            searcher
