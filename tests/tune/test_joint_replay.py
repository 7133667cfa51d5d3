"""``benchmark replay --joint`` on a tiny benchmark with answers counted by hand.

Three sources x six configurations (lr {0.001, 0.01, 0.1} x two batch sizes per target; wd 0,
momentum 0.9) on three targets. The other targets (dermamnist, pathmnist) say:

* imagenet transfers best (test AUC 0.95), then medmnist (0.90), then radimagenet (0.85);
* imagenet's runs rank (0.1, large batch) best; medmnist's and radimagenet's (0.001, small).

The replayed target, bloodmnist (val loss / test AUC of each source's runs, best first):

* imagenet: (0.1, 64) 0.30 / 0.95 <- the oracle (best ground truth), and its own first
  warm-start configuration;
* medmnist: (0.001, 32) 0.40 / 0.93;
* radimagenet: (0.001, 32) 0.28 / 0.90 (val AUC 0.99) <- the lowest val loss of the target.

Scores on bloodmnist: medmnist 0.9, imagenet 0.5, radimagenet 0.1. So, regret = 0.95 - kept:

* all: keeps radimagenet's 0.28 -> 0.05;
* ranked: B = 6 trains medmnist's grid -> 0.02; B = 12 adds imagenet's (0.30 < 0.40) -> 0;
  B = 18 adds radimagenet's -> 0.05, whatever the seed;
* joint: belief medmnist = imagenet (0.97) > radimagenet (-1.93); its first three trials are
  each source's first warm-start configuration; radimagenet's 7 % lower val loss
  (10 x log(0.30 / 0.28) = 0.69) does not outweigh a belief gap of 2.9 -> keeps imagenet -> 0.
"""

from __future__ import annotations

import io

import pandas as pd
import pytest
from benchmark_csvs import run_row, write_export

from medxfer.cli import main
from medxfer.errors import MedxferInputError
from medxfer.tracking.benchmark_import import import_benchmark
from medxfer.tune.joint_prior import JointPrior
from medxfer.tune.joint_replay import (
    joint_prior,
    joint_table,
    load_targets,
    replay_joint,
    run_joint,
    summarize_joint,
)
from medxfer.tune.warmstart import WarmStartPrior

BS = {"bloodmnist": ("32", "64"), "dermamnist": ("64", "128"), "pathmnist": ("128", "256")}
FILES = {"bloodmnist": "fined_blood.csv", "dermamnist": "fined_derma.csv",
         "pathmnist": "fined_path.csv"}
SOURCES = ("imagenet", "medmnist", "radimagenet")
# (lr, batch-size position) best first
IMAGENET_ORDER = [("0.1", 1), ("0.01", 1), ("0.1", 0), ("0.01", 0), ("0.001", 1), ("0.001", 0)]
MEDMNIST_ORDER = [("0.001", 0), ("0.001", 1), ("0.01", 0), ("0.01", 1), ("0.1", 0), ("0.1", 1)]
OTHER_TRUTH = {"imagenet": 0.95, "medmnist": 0.90, "radimagenet": 0.85}
BLOOD = {  # source -> (val loss, val AUC, test AUC) of its runs in that source's order
    "imagenet": [(0.30, 0.95, 0.95), (0.35, 0.94, 0.92), (0.40, 0.93, 0.91), (0.45, 0.92, 0.90),
                 (0.50, 0.91, 0.89), (0.60, 0.90, 0.85)],
    "medmnist": [(0.40, 0.96, 0.93), (0.45, 0.95, 0.90), (0.50, 0.94, 0.90), (0.55, 0.93, 0.89),
                 (0.65, 0.92, 0.88), (0.70, 0.91, 0.87)],
    "radimagenet": [(0.28, 0.99, 0.90), (0.50, 0.93, 0.88), (0.60, 0.92, 0.87),
                    (0.70, 0.91, 0.86), (0.80, 0.90, 0.85), (0.90, 0.89, 0.84)],
}
SCORES = {"imagenet": 0.5, "medmnist": 0.9, "radimagenet": 0.1}


def _order(source):
    return IMAGENET_ORDER if source == "imagenet" else MEDMNIST_ORDER


def _rows():
    rows = {t: [] for t in FILES}
    for source in SOURCES:
        for (lr, pos), (vl, va, te) in zip(_order(source), BLOOD[source]):
            rows["bloodmnist"].append(run_row(source, "bloodmnist", val_loss=vl, test_auc=te,
                                              lr=lr, batch_size=BS["bloodmnist"][pos],
                                              extra_metrics={"val_auc": str(va)}))
        for target in ("dermamnist", "pathmnist"):
            for rank, (lr, pos) in enumerate(_order(source)):
                rows[target].append(run_row(
                    source, target, val_loss=0.1 * (rank + 1),
                    test_auc=OTHER_TRUTH[source] - 0.01 * rank, lr=lr,
                    batch_size=BS[target][pos]))
    return rows


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("joint")
    for target, rows in _rows().items():
        write_export(d / "csv" / FILES[target], rows)
    uri = f"sqlite:///{d / 'mlruns.db'}"
    import_benchmark(d / "csv", name="tiny", tracking_uri=uri)
    return uri


def _scores():
    return pd.DataFrame({"bloodmnist": SCORES})


def test_target_log_and_oracle(tiny):
    logs, _, _ = load_targets(tiny, "tiny", targets=["bloodmnist"])
    (log,) = logs
    assert log.sources == list(SOURCES)
    assert log.truth == {"imagenet": 0.95, "medmnist": 0.93, "radimagenet": 0.90}
    assert log.oracle == 0.95 and len(log.runs()) == 18


def test_procedures_regret_by_hand(tiny):
    rows = replay_joint(tiny, "tiny", scores=_scores(), budgets=[1, 3, 6, 12, 18], seeds=3)
    s = summarize_joint(rows).set_index(["procedure", "budget"])
    assert set(rows.target) == {"bloodmnist"}
    assert s.loc["all", "mean_regret"].tolist() == pytest.approx([0.05] * 5)
    assert s.loc[("random", 18), "mean_regret"] == pytest.approx(0.05)  # every run: as all
    assert s.loc["ranked", "mean_regret"].loc[[6, 12, 18]].tolist() == pytest.approx(
        [0.02, 0.0, 0.05])
    assert s.loc["joint", "mean_regret"].tolist() == pytest.approx([0.0] * 5)
    assert s.loc[("joint", 3), "targets_within"] == 1 and s.loc[("all", 3), "targets_within"] == 0
    joint = rows[rows.procedure == "joint"].set_index(["budget", "seed"])
    assert (joint.loc[3, "source"] == "imagenet").all() and (joint.loc[3, "trials"] == 3).all()
    # The same three trials kept by the highest val AUC: radimagenet's 0.99 -> 0.90.
    assert joint.loc[3, "regret_by_val_auc"].tolist() == pytest.approx([0.05] * 3)
    assert joint.loc[3, "regret_by_val_loss"].tolist() == pytest.approx([0.05] * 3)
    table = joint_table(summarize_joint(rows))
    assert table.loc["all", "B = 3"] == "0.0500 (0/1)" and table.loc["joint", "B = 3"] == \
        "0.0000 (1/1)"


def test_random_is_seeded_and_differs_between_seeds(tiny):
    a = replay_joint(tiny, "tiny", scores=_scores(), budgets=[1], seeds=[0, 1, 2, 3],
                     procedures=["random"])
    b = replay_joint(tiny, "tiny", scores=_scores(), budgets=[1], seeds=[0, 1, 2, 3],
                     procedures=["random"])
    assert a.regret.tolist() == b.regret.tolist()
    assert a.regret.nunique() > 1


def test_leave_target_out_guard(tiny):
    logs, runs, selected = load_targets(tiny, "tiny", targets=["bloodmnist"])
    prior = joint_prior("bloodmnist", runs, selected, _scores())
    assert {t for _, t in prior.configs.tasks} == {"dermamnist", "pathmnist"}
    assert "bloodmnist" not in prior.sources.targets
    assert prior.prior_weight == 1.0  # no other target's scores to calibrate it on
    # A procedure given the target's own runs as prior is rejected...
    leaky = WarmStartPrior.from_runs(runs, exclude_target=None)
    with pytest.raises(MedxferInputError, match="leave-target-out"):
        JointPrior("bloodmnist", SCORES, leaky)
    # ... and so is another target's prior (computed without *that* target, not this one).
    other = joint_prior("dermamnist", runs, selected, _scores())
    with pytest.raises(MedxferInputError, match="each target needs its own"):
        run_joint(logs[0], other, budget=3, seed=0)


def test_cli_csv_and_errors(tiny, tmp_path, capsys):
    scores = tmp_path / "scores"
    scores.mkdir()
    _scores().rename_axis("source").to_csv(scores / "logme_test.csv")
    args = ["benchmark", "replay", "--joint", "--scores", str(scores), "--name", "tiny",
            "--tracking-uri", tiny, "--budgets", "3,12", "--seeds", "2"]
    assert main(args + ["--format", "csv"]) == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(out.columns) == ["procedure", "budget", "mean_regret", "targets_within"]
    assert out.procedure.tolist() == ["all", "all", "random", "random", "ranked", "ranked",
                                      "joint", "joint"]
    got = out.set_index(["procedure", "budget"])
    assert got.loc[("ranked", 12), "mean_regret"] == pytest.approx(0.0)
    assert got.loc[("all", 12), "targets_within"] == 0 and got.loc[("joint", 3),
                                                                    "targets_within"] == 1
    assert main(args) == 0
    assert "B = 12" in capsys.readouterr().out
    assert main(args[:-4] + ["--budgets", "0"]) == 2
    assert "--budgets" in capsys.readouterr().err
    assert main(["benchmark", "replay", "--joint", "--tracking-uri", tiny]) == 2
    assert "--scores" in capsys.readouterr().err
    (scores / "logme_test.csv").write_text("source,nosuchtarget\nimagenet,1\nmedmnist,2\n")
    assert main(args) == 2
    assert "no target in common" in capsys.readouterr().err
