"""``medxfer report``: a static, offline HTML dashboard of one MLflow store.

Sections: ground-truth heatmap (sources x targets) of a benchmark; the estimate scores of a
``transferability/<name>`` experiment (shown with or without a ground truth), the
score-vs-ground-truth figure (thesis Fig. 6.5), tau table with ranks, average ranks, Friedman p
and CD, and the critical-difference diagram; one best-so-far chart per sweep; shortcut studies
and ``medxfer analyze`` runs (:mod:`medxfer.reports.analyses`). Everything is
read through :mod:`medxfer.tracking.query` (and ``scores_io`` for estimates); figures are
matplotlib PNGs (:mod:`medxfer.reports.figures`, sized to be read at 100 % zoom) written to the
output folder *and* inlined as base64 in ``index.html``, so the page works from ``file://``
without network. A section whose data is absent shows a "no data" note, a figure that cannot be
drawn a "not drawn" note with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from medxfer.errors import MedxferInputError
from medxfer.reports import analyses, figures, html
from medxfer.reports.sweeps import best_so_far
from medxfer.tracking import query, schema
from medxfer.tracking.uri import resolve_tracking_uri


@dataclass
class ReportResult:
    """What :func:`write_report` wrote: ``index`` (the page), PNG ``figures``, CSV ``tables``,
    the ``notes`` of sections that had no data, the figures ``not_drawn`` (file -> why) and
    ``warnings`` about the data shown."""

    index: Path
    figures: list[Path] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    not_drawn: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def write_report(output: str | Path, *, tracking_uri: str | None = None, name: str | None = None,
                 estimates: str | None = None, benchmark: str = schema.BENCHMARK_DATASET,
                 sweeps: list[str] | None = None, invert: tuple[str, ...] = (),
                 select_by: str = "val_loss", mode: str = "min",
                 studies: list[str] | None = None) -> ReportResult:
    """Write ``index.html``, the PNG figures and the CSV tables into ``output``.

    Everything is written to a temporary folder first and moved into ``output`` once the whole
    report stands, so bad input (an unknown experiment) leaves nothing behind.

    Args:
        name: benchmark ``<name>`` (or a full ``sweep/<name>``) holding the ground truth; default
            the only ``benchmark/*`` experiment (none: a "no data" note; several: an error).
        estimates: ``transferability/<name>`` (or ``<name>``) with estimate runs to show and
            evaluate; default the only ``transferability/*`` experiment, if there is one.
        sweeps: sweep names for the best-so-far curves; default every ``sweep/*`` experiment.
        studies: study names whose tables to show; default every ``study/*`` experiment.
        invert: metrics scored as 1 - score (as ``estimate evaluate --invert``).
        select_by, mode: the ground truth's run selection, also the curves' metric.

    Raises:
        MedxferInputError: a named benchmark, estimates experiment or sweep is not in the store.
    """
    import shutil
    import tempfile

    uri = resolve_tracking_uri(tracking_uri)
    out = Path(output)
    with tempfile.TemporaryDirectory(prefix="medxfer-report-") as staging:
        res = ReportResult(index=Path(staging) / "index.html")
        meta: dict[str, str] = {"store": uri}
        gt, gt_html = _ground_truth(uri, name, benchmark, select_by, mode, Path(staging), res,
                                    meta)
        eval_html = _evaluation(uri, estimates, benchmark, gt, invert, Path(staging), res, meta)
        sweep_html = _sweeps(uri, sweeps, select_by, mode, Path(staging), res, meta)
        more = [analyses.shortcut_section(uri, Path(staging), res, meta),
                analyses.analyses_section(uri, Path(staging), res, meta),
                _studies(uri, studies, Path(staging), res, meta)]
        meta["generated"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        page = html.page("medxfer report", _header(uri, meta), [gt_html, *eval_html, sweep_html,
                                                            *more])
        res.index.write_text(page, encoding="utf-8")
        out.mkdir(parents=True, exist_ok=True)
        for path in Path(staging).iterdir():
            shutil.move(path, out / path.name)
    res.index = out / res.index.name
    res.figures = [out / p.name for p in res.figures]
    res.tables = [out / p.name for p in res.tables]
    return res


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{html.esc(title)}</h2>{body}</section>'


def _note(res: ReportResult, key: str, text: str) -> str:
    res.notes[key] = text
    return html.no_data(text)


def _figure(res: ReportResult, path: Path, reason: str | None, draw, **figure) -> str:
    """The PNG ``draw(path)`` as a figure, or the note saying why it cannot be drawn."""
    if reason is not None:
        res.not_drawn[path.name] = reason
        return html.not_drawn(path.name, reason)
    res.figures.append(draw(path))
    return html.png_figure(path, **figure)


def _ground_truth(uri, name, benchmark, select_by, mode, out, res, meta):
    title = f"Ground truth ({benchmark} benchmark): test AUC of the run with {mode} {select_by}"
    if name is None and not query.list_experiments(uri, "benchmark"):
        return None, _section("ground-truth", title, _note(
            res, "ground-truth", f"no benchmark/* experiment in {uri} (import one with "
                                 "`medxfer benchmark import DIR`, or pass --name)"))
    experiment = query.resolve_experiment(uri, name, "benchmark")
    long = query.selected_runs(uri, experiment, benchmark=benchmark, select_by=select_by, mode=mode)
    gt = query.ground_truth(uri, experiment, benchmark=benchmark, select_by=select_by, mode=mode)
    meta["benchmark"] = f"{experiment} ({benchmark} table)"
    if gt.empty:
        return None, _section("ground-truth", title, _note(
            res, "ground-truth", f"{experiment} has no runs with tags for the {benchmark} "
                                 f"table and metrics {select_by}, test_auc"))
    row = "arch" if benchmark == schema.BENCHMARK_ARCHITECTURE else "source"
    meta["benchmark counts"] = (f"{gt.shape[0]} {row}s x {gt.shape[1]} targets, "
                                f"{int(long['n_runs'].sum())} runs")
    shown = gt.rename_axis(row)  # the CSV keeps the ground-truth layout's `source` column
    figure = _figure(res, out / "gt_heatmap.png", None,
                     lambda p: figures.heatmap_png(shown, p, title=f"{experiment}: test AUC"),
                     chart="gt-heatmap", caption=f"{experiment}: {title}")
    csv = out / "ground_truth.csv"
    gt.to_csv(csv)
    res.tables.append(csv)
    body = (figure + "<details open><summary>values</summary>"
            + html.table(shown, table_id="ground-truth-table", spec=".3f",
                         cell_style=html.heatmap_style(gt.to_numpy().ravel()))
            .replace('class="data"', 'class="data heatmap"', 1)
            + "</details>")
    return gt, _section("ground-truth", title, body)


_EVALUATION = (("scores", "Transferability scores vs ground truth (thesis Fig. 6.5)"),
               ("taus", "Weighted Kendall's tau per target, ranks, Friedman test"),
               ("critical-difference", "Critical-difference diagram (Nemenyi)"))


def _evaluation(uri, estimates, benchmark, gt, invert, out, res, meta) -> list[str]:
    """The estimates section (scores by target, with or without a ground truth) and the three
    evaluation sections (or their notes)."""
    from medxfer.transferability import scores_io

    exp, reason = _estimates_experiment(uri, estimates)
    scores = None
    if exp is not None:
        meta["estimates"] = f"transferability/{exp}"
        try:
            scores = scores_io.read_scores_mlflow(uri, exp, benchmark=benchmark)
        except MedxferInputError as exc:
            reason = str(exc)
    title = "Transferability scores" + (f" (transferability/{exp})" if exp else "")
    if scores is None:
        estimates_html = _section("estimates", title, _note(res, "estimates", reason))
        return [estimates_html, *(_section(sid, t, _note(res, sid, reason))
                                  for sid, t in _EVALUATION)]
    estimates_html = _section("estimates", title, _score_tables(scores, gt is None, out, res))
    if gt is None:
        reason = "no ground truth to evaluate the estimates against"
    else:
        try:
            scores_io.check_overlap(scores, gt, scores_from=meta["estimates"],
                                    ground_truth_from=meta["benchmark"])
        except MedxferInputError as exc:
            reason = str(exc)
    if reason is not None:
        return [estimates_html, *(_section(sid, t, _note(res, sid, reason))
                                  for sid, t in _EVALUATION)]
    return [estimates_html, *_evaluation_sections(scores, gt, invert, out, res, meta)]


def _estimates_experiment(uri, estimates) -> tuple[str | None, str | None]:
    """(name of the estimates experiment, None) or (None, why there is none)."""
    found = query.list_experiments(uri, "transferability")
    if not estimates:
        if len(found) == 1:
            return found[0], None
        hint = f" (in this store: {', '.join(found)})" if found else ""
        return None, f"no --estimates experiment given{hint}"
    exp = estimates.removeprefix("transferability/")
    if "/" in exp or exp not in found:
        raise MedxferInputError(f"--estimates {estimates!r}: experiment transferability/{exp} "
                                f"not found in {uri}")
    return exp, None


def _score_tables(scores, open_all: bool, out, res) -> str:
    """Per target, the sources x metrics scores as logged (ncti combined from its terms,
    lp_fu = lp x fu, nothing inverted); also written to ``scores.csv``."""
    from medxfer.transferability.evaluation import prepare_scores

    final = prepare_scores(scores)
    long = pd.concat([t.rename_axis(index="source", columns="target").melt(
        ignore_index=False, value_name="score").reset_index().assign(metric=m)
        for m, t in final.items()])
    wide = long.pivot(index=["target", "source"], columns="metric", values="score")
    wide = wide.reindex(columns=list(final)).dropna(how="all")
    csv = out / "scores.csv"
    wide.to_csv(csv)
    res.tables.append(csv)
    intro = ("<p>Scores as logged, one table per target (rows: sources; ncti combined from its "
             "terms, lp_fu = lp x fu, no metric inverted); all of them in "
             "<code>scores.csv</code>.</p>")
    blocks = []
    for k, (target, table) in enumerate(wide.groupby(level="target", sort=True)):
        table = table.droplevel("target").dropna(axis=1, how="all")
        state = " open" if open_all or k == 0 else ""
        blocks.append(f'<details{state} data-target="{html.esc(target)}"><summary>target '
                      f"{html.esc(target)} ({len(table)} sources)</summary>"
                      + html.table(table, table_id=f"scores-{figures.slug(target)}", spec=".4g")
                      + "</details>")
    return intro + "".join(blocks)


def _evaluation_sections(scores, gt, invert, out, res, meta) -> list[str]:
    from medxfer.reports import evaluation as presentation
    from medxfer.transferability.evaluation import evaluate

    ev = evaluate(scores, gt, invert=invert)
    meta["estimate counts"] = (f"{len(ev.scores)} metrics, {ev.taus.shape[0]} targets scored, "
                               f"{ev.ranks.shape[1]} ranked methods")
    res.tables += presentation.write_all(ev, "csv", out / "taus.csv")
    grid = _figure(res, out / "scores_vs_ground_truth.png", figures.scores_unavailable(ev),
                   lambda p: figures.scores_vs_ground_truth_png(ev, gt, p), chart="score-grid",
                   caption="ground truth (x) vs transferability score (y); a block per target, "
                           "a panel per metric; line: least-squares fit")
    few = presentation.few_sources(ev, gt)
    res.warnings += few
    inv = f"<p>inverted (1 - score; lp_fu: eq. 6.8): {html.esc(', '.join(ev.inverted))}</p>" \
        if ev.inverted else ""
    tests = presentation.tables(ev)["tests"].set_index("statistic")
    avg = ev.average_ranks.to_frame("average rank")
    avg.index.name = "method"
    taus = (inv + "".join(html.warning(w) for w in few)
            + "<h3>tau (1 = the score ranks sources as the ground truth does)</h3>"
            + html.table(ev.taus, table_id="tau-table", spec=".3f")
            + "<h3>ranks (1 = best; undefined tau ranks last)</h3>"
            + html.table(ev.ranks, table_id="rank-table", spec="g")
            + "<h3>average ranks</h3>" + html.table(avg, table_id="average-ranks", spec=".2f")
            + "<h3>Friedman test and Nemenyi critical difference</h3>"
            + html.table(tests, table_id="tests-table", spec=".4g"))
    cd = _figure(res, out / "critical_difference.png", figures.cd_unavailable(ev),
                 lambda p: figures.critical_difference_png(ev, p), chart="cd-diagram",
                 caption=f"average ranks; CD = {ev.cd:.3f} at alpha {ev.alpha}")
    return [_section(sid, title, body) for (sid, title), body in zip(_EVALUATION, [grid, taus, cd])]


def _sweeps(uri, sweeps, metric, mode, out, res, meta) -> str:
    title = f"Sweeps: best {metric} so far"
    trials = query.sweep_trials(uri, sweeps, metrics=(metric,))
    curves = best_so_far(trials, metric, mode)
    if curves.empty:
        found = query.list_experiments(uri, "sweep")
        what = f"sweep(s) {', '.join(sweeps)}" if sweeps else \
            (f"sweep/* experiments ({', '.join(found)})" if found else "no sweep/* experiment;")
        return _section("sweeps", title, _note(
            res, "sweeps", f"{what} without trial runs logging {metric}"))
    names = sorted(curves["sweep"].unique())
    meta["sweeps"] = ", ".join(f"sweep/{s}" for s in names)
    n_trials = trials.groupby("sweep")["run_id"].nunique()
    meta["sweep counts"] = ", ".join(f"{s}: {n_trials[s]} trials" for s in names)
    body = []
    for s in names:
        chart = _figure(res, out / f"best_so_far_{figures.slug(s)}.png",
                        figures.best_so_far_unavailable(curves, s),
                        lambda p, s=s: figures.best_so_far_png(curves, s, p, metric=metric),
                        chart="best-so-far", sweep=s,
                        caption=f"sweep/{s}: best {metric} so far, a panel per target")
        body.append(f'<article class="sweep" data-sweep="{html.esc(s)}"><h3>sweep/{html.esc(s)}'
                    f"</h3>{chart}</article>")
    csv = out / "best_so_far.csv"
    curves.to_csv(csv, index=False)
    res.tables.append(csv)
    return _section("sweeps", title, "".join(body))


def _studies(uri, names, out, res, meta) -> str:
    from medxfer.reports.studies import TITLE, studies_body

    body, reason = studies_body(uri, names, out, res.tables, meta)
    return _section("studies", TITLE, _note(res, "studies", reason) if reason else body)


def _header(uri: str, meta: dict[str, str]) -> str:
    items = "".join(f"<dt>{html.esc(k)}</dt><dd>{html.esc(v)}</dd>" for k, v in meta.items())
    how = (f"<p>Browse every run in the MLflow UI: <code>medxfer ui --tracking-uri "
           f"{html.esc(uri)}</code> (or <code>mlflow ui --backend-store-uri {html.esc(uri)} "
           "--host 127.0.0.1 --port 5000</code>), then open 127.0.0.1:5000 in a browser.</p>")
    return (f'<header id="report-header"><h1>medxfer report</h1><dl class="meta">{items}</dl>'
            f"{how}</header>")
