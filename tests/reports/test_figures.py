"""``reports.figures`` at the sizes the report meets: text no smaller than 9 pt, figures no wider
than the report's column, facets that wrap, no text drawn over other text, and a reason for
every figure that cannot be drawn."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from medxfer.reports import figures
from medxfer.reports.sweeps import best_so_far
from medxfer.transferability.evaluation import evaluate

TARGETS = ["bloodmnist", "breastmnist", "chestmnist", "dermamnist", "octmnist", "organamnist",
           "organcmnist", "organsmnist", "pathmnist", "pneumoniamnist", "retinamnist",
           "tissuemnist"]
SOURCES = TARGETS + ["imagenet", "medmnist", "radimagenet"]  # the dataset benchmark's 15 x 12
METRICS = ("logme", "leep", "nleep", "parc", "sfda", "ncti", "gbc", "lp", "fu")  # + lp_fu


def _frame(rng, lo, hi, targets=TARGETS):
    return pd.DataFrame(rng.uniform(lo, hi, (len(SOURCES), len(targets))), index=SOURCES,
                        columns=list(targets))


@pytest.fixture(scope="module")
def truth():
    return _frame(np.random.default_rng(0), 0.6, 1.0)


def _evaluation(truth, targets):
    rng = np.random.default_rng(1)
    scores = {m: _frame(rng, -3.0, 120.0, targets) for m in METRICS}
    return evaluate(scores, truth[list(targets)])


def _hidden_ticks(fig) -> set[int]:
    """Ids of tick labels outside their axis' view limits: they exist but are not drawn."""
    out = set()
    for ax in fig.axes:
        for axis, (lo, hi) in ((ax.xaxis, sorted(ax.get_xlim())),
                               (ax.yaxis, sorted(ax.get_ylim()))):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                at = tick.get_loc()
                if not lo - 1e-9 * abs(hi - lo) <= at <= hi + 1e-9 * abs(hi - lo):
                    out |= {id(tick.label1), id(tick.label2)}
    return out


def _drawn(build, *args, **kwargs):
    """The figure as saved (rc sizes applied) and its drawn, non-empty texts with their
    boxes in pixels."""
    plt = figures._pyplot()
    with plt.rc_context(figures._RC):
        fig = build(*args, **kwargs)
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    hidden = _hidden_ticks(fig)
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()
             and id(t) not in hidden and (t.axes is None or t.axes.get_visible())]
    boxes = [(t, t.get_window_extent(renderer)) for t in texts]
    plt.close(fig)
    return fig, boxes


def _assert_readable(fig, boxes):
    width_px = fig.get_figwidth() * figures.DPI
    assert width_px <= figures.MAX_WIDTH_IN * figures.DPI <= 1280
    small = [(t.get_text(), t.get_fontsize()) for t, _ in boxes
             if t.get_fontsize() < figures.MIN_FONT_PT]
    assert not small, small
    for (a, ba), (b, bb) in itertools.combinations(boxes, 2):
        if a.get_rotation() % 90 and b.get_rotation() % 90:
            continue  # the upright boxes of parallel slanted labels overlap; the glyphs do not
        # Overlap of more than a pixel each way: text drawn over text.
        dx = min(ba.x1, bb.x1) - max(ba.x0, bb.x0)
        dy = min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
        assert dx <= 1 or dy <= 1, (a.get_text(), b.get_text())
    for t, box in boxes:  # nothing cut at the figure's edge
        assert box.x0 >= -1 and box.x1 <= width_px + 1, t.get_text()


def test_scores_grid_wraps_ten_metrics_of_one_target(truth):
    """The figure that was one 2200 x 190 px row of ten panels: two rows of five."""
    ev = _evaluation(truth, ["octmnist"])
    fig, boxes = _drawn(figures.scores_vs_ground_truth_figure, ev, truth)
    _assert_readable(fig, boxes)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 10
    rows = sorted({round(ax.get_position().y0, 3) for ax in axes})
    assert len(rows) == 2
    titles = sorted(ax.get_title() for ax in axes)
    assert titles[0].startswith("fu: tau=") and any(t.startswith("lp_fu: tau=") for t in titles)
    assert fig.get_figheight() * figures.DPI > 400


def test_scores_grid_of_three_targets_is_a_block_each(truth):
    ev = _evaluation(truth, ["octmnist", "dermamnist", "bloodmnist"])
    fig, boxes = _drawn(figures.scores_vs_ground_truth_figure, ev, truth)
    _assert_readable(fig, boxes)
    assert len(fig.axes) == 30
    heads = [t.get_text() for t, _ in boxes if t.get_text().startswith("target ")]
    assert heads == ["target bloodmnist", "target dermamnist", "target octmnist"]


def test_heatmap_of_the_full_benchmark_writes_readable_cells(truth):
    gt = truth.copy()
    for s in gt.index.intersection(gt.columns):
        gt.loc[s, s] = np.nan
    fig, boxes = _drawn(figures.heatmap_figure, gt, title="benchmark/x: test AUC")
    _assert_readable(fig, boxes)
    cells = fig.axes[0].texts  # the values written into the cells (tick labels are not texts)
    assert len(cells) == int(gt.notna().sum().sum()) == 15 * 12 - 12  # none for a NaN cell
    assert {t.get_fontsize() for t in cells} == {figures.MIN_FONT_PT}
    first = next(t for t in cells if t.get_position() == (1, 0))
    assert first.get_text() == f"{gt.iloc[0, 1]:.2f}"


def test_heatmap_leaves_values_out_when_cells_get_too_narrow():
    rng = np.random.default_rng(2)
    wide = pd.DataFrame(rng.uniform(0.5, 1, (3, 40)), index=["a", "b", "c"],
                        columns=[f"t{i}" for i in range(40)])
    fig, boxes = _drawn(figures.heatmap_figure, wide, title="wide")
    assert fig.get_figwidth() == figures.MAX_WIDTH_IN
    assert len(fig.axes[0].texts) == 0


def _curves(trials):
    """Long trial rows (sweep, run_id, start_time, source, target, key, value)."""
    rows = [("s", f"r{i}", i, src, tgt, "val_loss", v)
            for i, (src, tgt, v) in enumerate(trials)]
    frame = pd.DataFrame(rows, columns=["sweep", "run_id", "start_time", "source", "target",
                                        "key", "value"])
    return best_so_far(frame, "val_loss", "min")


def test_best_so_far_one_chart_with_a_panel_per_target_and_one_legend():
    rng = np.random.default_rng(3)
    trials = [(src, tgt, float(rng.uniform(0.2, 1.0)))
              for tgt in ("bloodmnist", "dermamnist", "octmnist", "pathmnist")
              for src in ("imagenet", "radimagenet") for _ in range(4)]
    curves = _curves(trials)
    assert figures.best_so_far_unavailable(curves, "s") is None
    fig, boxes = _drawn(figures.best_so_far_figure, curves, "s", metric="val_loss")
    _assert_readable(fig, boxes)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["bloodmnist", "dermamnist", "octmnist",
                                                 "pathmnist"]
    assert len({round(ax.get_position().y0, 3) for ax in panels}) == 2  # wrapped after three
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in panels)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert sorted(labels) == ["all sources", "imagenet", "radimagenet"]
    # Every source keeps its colour in every panel.
    colours = {}
    for ax in panels:
        for line in ax.get_lines():
            colours.setdefault(line.get_label(), set()).add(line.get_color())
    assert all(len(c) == 1 for c in colours.values())


def test_one_trial_per_target_draws_no_chart_and_says_why(tmp_path):
    curves = _curves([("imagenet", "bloodmnist", 0.61), ("imagenet", "octmnist", 0.4)])
    reason = figures.best_so_far_unavailable(curves, "s")
    assert reason == ("sweep/s has one trial per target (2 in all; best 0.4, imagenet -> "
                      "octmnist): a best-so-far curve needs two or more")
    with pytest.raises(ValueError, match="needs two or more"):
        figures.best_so_far_png(curves, "s", tmp_path / "x.png", metric="val_loss")
    assert not (tmp_path / "x.png").exists()
    assert figures.best_so_far_unavailable(curves, "other") == (
        "sweep/other has no trial that logged the metric")


def test_cd_diagram_text_is_readable(truth):
    ev = _evaluation(truth, TARGETS)
    fig, boxes = _drawn(figures.critical_difference_figure, ev)
    _assert_readable(fig, boxes)
    labels = [t.get_text() for t, _ in boxes]
    assert sum(label.count("(") for label in labels if "ncti" in label or "logme" in label) == 2


def _shortcut_curves():
    from medxfer.evaluation.shortcut import shortcut_curves

    recs = []
    for source, slope in (("imagenet", 0.5), ("radimagenet", 0.2)):
        for p_art in (0.0, 0.1, 0.2, 0.5, 0.8, 1.0):
            for fold in range(5):
                wobble = 0.01 * (fold - 2)
                recs.append({"row": source, "phase": "train", "p_art": p_art, "fold": fold,
                             "metrics": {"test_auc": 0.8 + 0.15 * p_art + wobble,
                                         "ood_test_auc": 0.8 - slope * p_art + wobble}})
    return shortcut_curves(recs)


def test_shortcut_figure_ood_above_iid_with_bands_and_one_legend(tmp_path):
    curves = _shortcut_curves()
    fig, boxes = _drawn(figures.shortcut_figure, curves, title="study/x: tag in class 1")
    _assert_readable(fig, boxes)
    ood, iid = fig.axes[:2]
    assert ood.get_title().startswith("o.o.d.") and iid.get_title().startswith("i.i.d.")
    assert ood.get_position().y0 > iid.get_position().y0
    lines = {ln.get_label(): ln for ln in ood.get_lines() if not ln.get_label().startswith("_")}
    assert sorted(lines) == ["imagenet", "radimagenet"]
    # the drawn means are the curves' means: imagenet's o.o.d. AUC falls 0.8 -> 0.3
    y = lines["imagenet"].get_ydata()
    assert y[0] == pytest.approx(0.8) and y[-1] == pytest.approx(0.3)
    assert len(ood.collections) == 2 and len(iid.collections) == 2  # one CI band per source
    assert len(fig.legends) == 1
    assert figures.shortcut_png(curves, tmp_path / "s.png", title="t").stat().st_size > 0


def test_shortcut_figure_needs_two_shares(tmp_path):
    curves = _shortcut_curves()
    one = curves[curves.p_art == 0.5]
    assert figures.shortcut_unavailable(one) == ("the study has one share p_art = 0.5: a curve "
                                                 "needs two or more")
    with pytest.raises(ValueError, match="two or more"):
        figures.shortcut_png(one, tmp_path / "x.png", title="t")
    assert figures.shortcut_unavailable(curves.iloc[0:0]).startswith("the study has no")
