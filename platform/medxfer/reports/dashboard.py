"""``medxfer report``: a static, offline HTML dashboard of one MLflow store.

Sections: ground-truth heatmap (sources x targets) of a benchmark; score-vs-ground-truth grid
(thesis Fig. 6.5), tau table with ranks, average ranks, Friedman p and CD, and the
critical-difference diagram of a ``transferability/<name>`` experiment; best-so-far curves of
the sweeps. Everything is read through :mod:`medxfer.tracking.query` (and ``scores_io`` for
estimates); figures are matplotlib PNGs written to the output folder *and* inlined as base64 in
``index.html``, the curves also as inline SVG, so the page works from ``file://`` without
network. A section whose data is absent shows a "no data" note instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from medxfer.errors import MedxferInputError
from medxfer.reports import figures, html
from medxfer.reports.sweeps import ALL_SOURCES, best_so_far
from medxfer.tracking import query, schema
from medxfer.tracking.uri import resolve_tracking_uri


@dataclass
class ReportResult:
    """What :func:`write_report` wrote: ``index`` (the page), PNG ``figures``, CSV ``tables``,
    and the ``notes`` of sections that had no data."""

    index: Path
    figures: list[Path] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)


def write_report(output: str | Path, *, tracking_uri: str | None = None, name: str | None = None,
                 estimates: str | None = None, benchmark: str = schema.BENCHMARK_DATASET,
                 sweeps: list[str] | None = None, invert: tuple[str, ...] = (),
                 select_by: str = "val_loss", mode: str = "min") -> ReportResult:
    """Write ``index.html`` and the PNG figures into ``output``.

    Args:
        name: benchmark ``<name>`` (or a full ``sweep/<name>``) holding the ground truth; default
            the only ``benchmark/*`` experiment (none: a "no data" note; several: an error).
        estimates: ``transferability/<name>`` (or ``<name>``) with estimate runs to evaluate.
        sweeps: sweep names for the best-so-far curves; default every ``sweep/*`` experiment.
        invert: metrics scored as 1 - score (as ``estimate evaluate --invert``).
        select_by, mode: the ground truth's run selection, also the curves' metric.

    Raises:
        MedxferInputError: a named benchmark, estimates experiment or sweep is not in the store.
    """
    uri = resolve_tracking_uri(tracking_uri)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    res = ReportResult(index=out / "index.html")
    meta: dict[str, str] = {"store": uri}

    gt, gt_html = _ground_truth(uri, name, benchmark, select_by, mode, out, res, meta)
    eval_html = _evaluation(uri, estimates, benchmark, gt, invert, out, res, meta)
    sweep_html = _sweeps(uri, sweeps, select_by, mode, out, res, meta)
    meta["generated"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    page = html.page("medxfer report", _header(uri, meta), [gt_html, *eval_html, sweep_html])
    res.index.write_text(page, encoding="utf-8")
    return res


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{html.esc(title)}</h2>{body}</section>'


def _note(res: ReportResult, key: str, text: str) -> str:
    res.notes[key] = text
    return html.no_data(text)


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
    png = figures.heatmap_png(shown, out / "gt_heatmap.png", title=f"{experiment}: test AUC")
    res.figures.append(png)
    csv = out / "ground_truth.csv"
    gt.to_csv(csv)
    res.tables.append(csv)
    body = (html.png_figure(png, chart="gt-heatmap", caption=f"{experiment}: {title}")
            + "<details open><summary>values</summary>"
            + html.table(shown, table_id="ground-truth-table", spec=".3f",
                         cell_style=html.heatmap_style(gt.to_numpy().ravel()))
            .replace('class="data"', 'class="data heatmap"', 1)
            + "</details>")
    return gt, _section("ground-truth", title, body)


def _evaluation(uri, estimates, benchmark, gt, invert, out, res, meta) -> list[str]:
    sections = [("scores", "Transferability scores vs ground truth (thesis Fig. 6.5)"),
                ("taus", "Weighted Kendall's tau per target, ranks, Friedman test"),
                ("critical-difference", "Critical-difference diagram (Nemenyi)")]
    reason = _evaluation_blocker(uri, estimates, gt)
    scores = None
    if reason is None:
        from medxfer.transferability import scores_io

        exp = estimates.removeprefix("transferability/")
        meta["estimates"] = f"transferability/{exp}"
        try:
            scores = scores_io.read_scores_mlflow(uri, exp, benchmark=benchmark)
            scores_io.check_overlap(scores, gt, scores_from=meta["estimates"],
                                    ground_truth_from=meta["benchmark"])
        except MedxferInputError as exc:
            reason = str(exc)
    if reason is not None:
        return [_section(sid, title, _note(res, sid, reason)) for sid, title in sections]
    return _evaluation_sections(scores, gt, invert, out, res, meta, sections)


def _evaluation_blocker(uri, estimates, gt) -> str | None:
    if not estimates:
        found = query.list_experiments(uri, "transferability")
        hint = f" (in this store: {', '.join(found)})" if found else ""
        return f"no --estimates experiment given{hint}"
    exp = estimates.removeprefix("transferability/")
    if "/" in exp or exp not in query.list_experiments(uri, "transferability"):
        raise MedxferInputError(f"experiment transferability/{exp} not found in {uri}",
                                field="estimates")
    if gt is None:
        return "no ground truth to evaluate the estimates against"
    return None


def _evaluation_sections(scores, gt, invert, out, res, meta, sections) -> list[str]:
    from medxfer.reports import evaluation as presentation
    from medxfer.transferability.evaluation import evaluate

    ev = evaluate(scores, gt, invert=invert)
    meta["estimate counts"] = (f"{len(ev.scores)} metrics, {ev.taus.shape[0]} targets scored, "
                               f"{ev.ranks.shape[1]} ranked methods")
    pngs = {p.name: p for p in presentation.write_figures(ev, gt, out)}
    res.figures += list(pngs.values())
    res.tables += presentation.write_all(ev, "csv", out / "taus.csv")
    grid = html.png_figure(pngs["scores_vs_ground_truth.png"], chart="score-grid",
                           caption="ground truth (x) vs transferability score (y); rows targets, "
                                   "columns metrics; line: least-squares fit")
    inv = f"<p>inverted (1 - score; lp_fu: eq. 6.8): {html.esc(', '.join(ev.inverted))}</p>" \
        if ev.inverted else ""
    tests = presentation.tables(ev)["tests"].set_index("statistic")
    avg = ev.average_ranks.to_frame("average rank")
    avg.index.name = "method"
    taus = (inv + "<h3>tau (1 = the score ranks sources as the ground truth does)</h3>"
            + html.table(ev.taus, table_id="tau-table", spec=".3f")
            + "<h3>ranks (1 = best; undefined tau ranks last)</h3>"
            + html.table(ev.ranks, table_id="rank-table", spec="g")
            + "<h3>average ranks</h3>" + html.table(avg, table_id="average-ranks", spec=".2f")
            + "<h3>Friedman test and Nemenyi critical difference</h3>"
            + html.table(tests, table_id="tests-table", spec=".4g"))
    if "critical_difference.png" in pngs:
        cd = html.png_figure(pngs["critical_difference.png"], chart="cd-diagram",
                             caption=f"average ranks; CD = {ev.cd:.3f} at alpha {ev.alpha}")
    else:
        cd = _note(res, "critical-difference", figures.cd_unavailable(ev))
    bodies = [grid, taus, cd]
    return [_section(sid, title, body) for (sid, title), body in zip(sections, bodies)]


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
        panels = []
        for target, g in curves[curves["sweep"] == s].groupby("target", sort=True):
            lines = {line: (gl["trial"].tolist(), gl["best"].tolist())
                     for line, gl in g.sort_values("trial").groupby("line", sort=True)}
            if ALL_SOURCES in lines:  # drawn last, on top
                lines[ALL_SOURCES] = lines.pop(ALL_SOURCES)
            panels.append(html.svg_lines(lines, chart="best-so-far", bold=ALL_SOURCES,
                                         title=f"{s} / {target or '(untagged)'}",
                                         ylabel=f"best {metric}", sweep=s, target=target))
        png = figures.best_so_far_png(curves, s, out / f"best_so_far_{figures.slug(s)}.png",
                                      metric=metric)
        res.figures.append(png)
        body.append(f'<article class="sweep" data-sweep="{html.esc(s)}"><h3>sweep/{html.esc(s)}'
                    f'</h3><div class="curves">{"".join(panels)}</div>'
                    + html.png_figure(png, chart="best-so-far-png", sweep=s,
                                      caption=f"sweep/{s}: best {metric} so far per target")
                    + "</article>")
    csv = out / "best_so_far.csv"
    curves.to_csv(csv, index=False)
    res.tables.append(csv)
    return _section("sweeps", title, "".join(body))


def _header(uri: str, meta: dict[str, str]) -> str:
    items = "".join(f"<dt>{html.esc(k)}</dt><dd>{html.esc(v)}</dd>" for k, v in meta.items())
    how = (f"<p>Browse every run in the MLflow UI: <code>medxfer ui --tracking-uri "
           f"{html.esc(uri)}</code> (or <code>mlflow ui --backend-store-uri {html.esc(uri)} "
           "--host 127.0.0.1 --port 5000</code>), then open 127.0.0.1:5000 in a browser.</p>")
    return (f'<header id="report-header"><h1>medxfer report</h1><dl class="meta">{items}</dl>'
            f"{how}</header>")
