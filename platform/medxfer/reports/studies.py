"""The report's "Studies" section: each ``study/<name>`` parent run's table.

A study (``medxfer study``, :mod:`medxfer.tune.study`) writes its paper-shaped table (rows:
methods; columns: ID, OOD 0%, OOD few-shot ...; cells "mean ± std" over folds and seeds,
:mod:`medxfer.reports.study`) to its parent run as ``study_table.csv``; this section reads the
parents through :func:`medxfer.tracking.query.study_tables` and shows the newest table of each
study, also written as ``study_<name>.csv``. A study still running (no table yet) or one that
writes only shortcut curves (the "Shortcut studies" section) is not listed.
"""

from __future__ import annotations

from pathlib import Path

from medxfer.reports import figures, html
from medxfer.tracking import query

TITLE = "Studies: test metric per method and protocol cell, mean ± std over folds and seeds"


def studies_body(uri: str, names: list[str] | None, out: Path, tables: list[Path],
                 meta: dict[str, str]) -> tuple[str, str | None]:
    """``(html, None)`` with one table per study, or ``("", why there is none)``; CSVs written
    to ``out`` are appended to ``tables``, counts to ``meta``."""
    found = query.study_tables(uri, names)
    newest = {}
    for s in found:  # newest first per experiment
        if s["table"] is not None:
            newest.setdefault(s["experiment"], s)
    if not newest:
        which = f"studies {', '.join(names)}" if names else "study/* run"
        return "", (f"no {which} with a study_table.csv in {uri} (run one with `medxfer "
                    "study STUDY.yaml`)")
    meta["studies"] = ", ".join(newest)
    blocks = []
    for exp, s in newest.items():
        metric = f"test {s['metric']}, " if s.get("metric") else ""
        head = (f'<article class="study" data-study="{html.esc(s["study"])}"><h3>'
                f"{html.esc(exp)}</h3><p>{html.esc(metric)}parent run "
                f"<code>{html.esc(s['run_id'])}</code></p>")
        csv = out / f"study_{figures.slug(s['study'])}.csv"
        s["table"].to_csv(csv)
        tables.append(csv)
        blocks.append(head + html.table(s["table"], table_id=f"study-{figures.slug(s['study'])}")
                      + "</article>")
    return "".join(blocks), None
