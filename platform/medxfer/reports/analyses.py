"""The report's sections of ``medxfer analyze`` runs and shortcut studies.

* **Analyses**: every ``analysis/<name>`` run (``medxfer.kind=analysis``), one block per run
  with its PNGs (saliency grid, domain-gap MDS map and MMD matrix, CCA per layer, PSD) and its
  small CSV tables (hit rates, MMD, MDS coordinates, CCA, prediction similarity, PSD); the
  per-image tables (``saliency_hits.csv``, ``domain_features.csv``) are copied beside the page,
  not shown.
* **Shortcut studies**: every ``study/<name>`` parent run with shortcut curves
  (:func:`medxfer.reports.study.record_shortcut`): the AUC-vs-``p_art`` figure (thesis, seed
  ``004_43f54b618356cecf.txt``, Fig. 4.3), the curves and the permutation tests between sources.

Runs and files are read through :mod:`medxfer.tracking.query` from the store given. Files land in
the report folder as ``<experiment>_<verb>_<run id[:8]>_<file>`` so runs never overwrite each
other; PNGs are inlined like every other figure of the report.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd

from medxfer.reports import html
from medxfer.tracking import query, schema

#: Tables with more rows than this are copied beside the page, not shown in it.
MAX_SHOWN_ROWS = 40
#: Per-image tables: always copied only.
PER_IMAGE = ("saliency_hits.csv", "domain_features.csv")


def _prefix(run: dict, what: str) -> str:
    from medxfer.reports.figures import slug

    return slug(f"{run['experiment']}_{what}_{run['run_id'][:8]}")


def _files(uri: str, run: dict, what: str, out: Path, res,
           only: tuple[str, ...] | None = None) -> dict[str, Path]:
    """The run's top-level PNG and CSV files (those in ``only``, if given) copied into ``out``
    under their prefixed names."""
    got = {}
    with tempfile.TemporaryDirectory(prefix="medxfer-artifacts-") as tmp:
        for name, local in sorted(query.run_files(uri, run["run_id"], tmp, only=only).items()):
            dest = out / f"{_prefix(run, what)}_{name}"
            shutil.copyfile(local, dest)
            got[name] = dest
            if name.endswith(".csv"):
                res.tables.append(dest)
    return got


def _csv_block(name: str, path: Path, table_id: str) -> str:
    """A small CSV as a table, a large or per-image one as a note naming its file."""
    try:
        df = pd.read_csv(path)
    except (ValueError, OSError) as exc:  # an empty or unreadable artifact: say so, go on
        return html.warning(f"{name}: not readable ({exc})")
    if name in PER_IMAGE or len(df) > MAX_SHOWN_ROWS:
        return (f'<p class="table-file" data-file="{html.esc(path.name)}">{html.esc(name)}: '
                f"{len(df)} rows in <code>{html.esc(path.name)}</code></p>")
    if df[df.columns[0]].is_unique:  # e.g. one row per method or layer: it names the rows
        df = df.set_index(df.columns[0])
    else:  # e.g. source x set x p_art: rows numbered, every column shown
        df.index = pd.RangeIndex(1, len(df) + 1, name="#")
    return f"<h4>{html.esc(name)}</h4>" + html.table(df, table_id=table_id, spec=".4g")


def _run_block(uri: str, run: dict, out: Path, res) -> str:
    verb = run["analysis"] or "analysis"
    files = _files(uri, run, verb, out, res)
    parts = []
    for name, path in files.items():
        if name.endswith(".png"):
            res.figures.append(path)
            parts.append(html.png_figure(path, chart=f"analysis-{verb}", analysis=verb,
                                         caption=f"analysis/{run['experiment']}: {verb}, "
                                                 f"{name}"))
    for name, path in files.items():
        if name.endswith(".csv"):
            parts.append(_csv_block(name, path, f"{_prefix(run, verb)}_{Path(name).stem}"))
    if not files:
        parts.append(html.no_data(f"run {run['run_id']} has no PNG or CSV artifact"))
    return (f'<article class="analysis" data-analysis="{html.esc(verb)}" '
            f'data-experiment="{html.esc(run["experiment"])}" data-run="{html.esc(run["run_id"])}">'
            f"<h3>analysis/{html.esc(run['experiment'])}: {html.esc(verb)} "
            f"<small>(run {html.esc(run['run_id'][:8])})</small></h3>{''.join(parts)}</article>")


def analyses_section(uri: str, out: Path, res, meta: dict[str, str]) -> str:
    """The "Analyses" section (module docstring); ``res`` is the report's ``ReportResult``."""
    title = "Analyses: saliency, domain gap, similarity, spectra"
    runs = query.kind_runs(uri, "analysis", schema.KIND_ANALYSIS)
    if not runs:
        res.notes["analyses"] = f"no analysis/* run in {uri} (run `medxfer analyze ...`)"
        return _section("analyses", title, html.no_data(res.notes["analyses"]))
    meta["analyses"] = ", ".join(sorted({f"analysis/{r['experiment']}" for r in runs}))
    return _section("analyses", title, "".join(_run_block(uri, r, out, res) for r in runs))


def _shortcut_block(uri: str, run: dict, out: Path, res) -> str | None:
    from medxfer.reports.figures import shortcut_unavailable
    from medxfer.reports.study import SHORTCUT_CURVES, SHORTCUT_FIGURE, SHORTCUT_TESTS

    files = _files(uri, run, "shortcut", out, res,
                   only=(SHORTCUT_CURVES, SHORTCUT_TESTS, SHORTCUT_FIGURE))
    if SHORTCUT_CURVES not in files:  # a study without a shortcut axis
        return None
    if SHORTCUT_FIGURE in files:
        res.figures.append(files[SHORTCUT_FIGURE])
        figure = html.png_figure(files[SHORTCUT_FIGURE], chart="shortcut",
                                 study=run["experiment"],
                                 caption=f"study/{run['experiment']}: mean AUC vs p_art with 95% "
                                         "CI, o.o.d. above i.i.d.")
    else:
        reason = shortcut_unavailable(pd.read_csv(files[SHORTCUT_CURVES]))
        res.not_drawn[f"{run['experiment']}_{SHORTCUT_FIGURE}"] = reason or "not logged"
        figure = html.not_drawn(SHORTCUT_FIGURE, reason or "the study run did not log it")
    tables = [_csv_block(name, files[name], f"{_prefix(run, 'shortcut')}_{Path(name).stem}")
              for name in (SHORTCUT_CURVES, SHORTCUT_TESTS) if name in files]
    return (f'<article class="shortcut-study" data-study="{html.esc(run["experiment"])}">'
            f"<h3>study/{html.esc(run['experiment'])}</h3>{figure}{''.join(tables)}</article>")


def shortcut_section(uri: str, out: Path, res, meta: dict[str, str]) -> str:
    """The "Shortcut studies" section (module docstring)."""
    title = "Shortcut studies: i.i.d. and o.o.d. AUC vs p_art"
    runs = query.kind_runs(uri, "study", schema.KIND_STUDY)
    blocks = [b for b in (_shortcut_block(uri, r, out, res) for r in runs) if b]
    if not blocks:
        res.notes["shortcut"] = (f"no study/* run in {uri} has shortcut curves (a study with "
                                 "protocol.shortcut writes them)")
        return _section("shortcut-studies", title, html.no_data(res.notes["shortcut"]))
    meta["shortcut studies"] = str(len(blocks))
    return _section("shortcut-studies", title, "".join(blocks))


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{html.esc(title)}</h2>{body}</section>'
