"""Small HTML/SVG builders for the offline report: no template engine, no scripts, no network.

Every number shown in a table or chart also sits, at full precision, in a ``data-value`` (or
``data-values``) attribute, so tests and users can read the exact values back from the page.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from html import escape
from pathlib import Path

import pandas as pd

CSS = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1400px;padding:1rem 2rem;color:#222}
header{border-bottom:2px solid #2c5d8a;margin-bottom:1rem}
h1{color:#2c5d8a;margin-bottom:.2rem} h2{color:#2c5d8a;border-bottom:1px solid #ccc}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}
dl.meta dt{font-weight:600} code{background:#f3f3f3;padding:0 .3em}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.2rem .45rem;text-align:right}
th{background:#f5f7fa} th[scope=row]{text-align:left}
table.heatmap td{min-width:3.2rem}
figure.chart{margin:.8rem 0} figure.chart img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}
.curves{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:1rem}
p.no-data{color:#8a5a00;background:#fff6e0;border-left:4px solid #e0a000;padding:.4rem .8rem}
svg .axis{stroke:#444;stroke-width:1} svg text{font-size:11px;fill:#333}
svg .curve{fill:none;stroke-width:1.6} svg .curve.all{stroke:#000;stroke-width:2.6}
"""
# tab10, for the SVG curves (the PNGs use matplotlib's own cycle, which is the same).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


def esc(value) -> str:
    return escape(str(value), quote=True)


def num(v) -> str:
    """Full-precision attribute text of a number; NaN/None -> ``nan``."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan"
    return repr(float(v)) if isinstance(v, float) else str(v)


def fmt(v, spec: str = ".3f") -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else format(v, spec)
    return esc(v)


def no_data(text: str) -> str:
    return f'<p class="no-data">no data: {esc(text)}</p>'


def table(df: pd.DataFrame, *, table_id: str, spec: str = ".3f", index_name: str | None = None,
          cell_style=None) -> str:
    """``df`` as a table; the index becomes row headers; numbers carry ``data-value``."""
    head = "".join(f'<th scope="col">{esc(c)}</th>' for c in df.columns)
    rows = []
    for idx, row in df.iterrows():
        cells = []
        for col, v in row.items():
            style = cell_style(v) if cell_style is not None else ""
            attrs = f' data-row="{esc(idx)}" data-col="{esc(col)}"'
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                attrs += f' data-value="{num(v)}"'
            cells.append(f"<td{attrs}{style}>{fmt(v, spec)}</td>")
        rows.append(f'<tr><th scope="row">{esc(idx)}</th>{"".join(cells)}</tr>')
    corner = esc(index_name if index_name is not None else (df.index.name or ""))
    return (f'<table id="{esc(table_id)}" class="data"><thead><tr><th scope="col">{corner}</th>'
            f'{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def heatmap_style(values) -> Callable[[object], str]:
    """A ``cell_style`` colouring numbers by viridis over the finite range of ``values``."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    finite = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    cmap = colormaps["viridis"]

    def style(v) -> str:
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            return ""
        x = (float(v) - lo) / (hi - lo) if hi > lo else 0.5
        return (f' style="background:{to_hex(cmap(x))};'
                f'color:{"#000" if x > 0.5 else "#fff"}"')

    return style


def png_figure(path: Path, *, chart: str, caption: str, **data) -> str:
    """A ``<figure class="chart">`` with the PNG inlined as base64 (so index.html stands alone)."""
    b64 = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    attrs = "".join(f' data-{k.replace("_", "-")}="{esc(v)}"' for k, v in data.items())
    return (f'<figure class="chart" data-chart="{esc(chart)}" data-file="{esc(Path(path).name)}"'
            f'{attrs}><img src="data:image/png;base64,{b64}" alt="{esc(caption)}">'
            f"<figcaption>{esc(caption)} (<code>{esc(Path(path).name)}</code>)</figcaption>"
            "</figure>")


def svg_lines(lines: dict[str, tuple[list[int], list[float]]], *, chart: str, title: str,
              ylabel: str, bold: str | None = None, width: int = 420, height: int = 260,
              **data) -> str:
    """Step lines as an inline SVG figure: ``lines`` maps a name to (x = trial numbers, y).

    Each line holds its value until its next x and ends at its last one; the polyline carries
    the exact numbers in ``data-trials`` / ``data-values``.
    """
    left, right, top, bottom = 58, 110, 24, 34
    pw, ph = width - left - right, height - top - bottom
    ys = [v for _, vals in lines.values() for v in vals if math.isfinite(v)]
    n = max((max(xs) for xs, _ in lines.values() if len(xs)), default=1)
    lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    sx = lambda i: left + (pw * (i - 1) / (n - 1) if n > 1 else pw / 2)  # noqa: E731
    sy = lambda v: top + ph * (hi - v) / (hi - lo)  # noqa: E731
    parts = [f'<line class="axis" x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}"/>',
             f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}"/>',
             f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle">trial</text>',
             f'<text x="12" y="{top + ph / 2}" text-anchor="middle" '
             f'transform="rotate(-90 12 {top + ph / 2})">{esc(ylabel)}</text>',
             f'<text x="{left + pw / 2}" y="14" text-anchor="middle">{esc(title)}</text>']
    for v in (lo, (lo + hi) / 2, hi):
        parts.append(f'<text x="{left - 4}" y="{sy(v) + 4:.1f}" text-anchor="end">{v:.3g}</text>')
    for i in sorted({1, (n + 1) // 2, n}):
        parts.append(f'<text x="{sx(i):.1f}" y="{top + ph + 14}" text-anchor="middle">{i}</text>')
    for k, (name, (xs, vals)) in enumerate(lines.items()):
        pts = []
        for j, (i, v) in enumerate(zip(xs, vals)):  # steps: hold each best until the next trial
            if j:
                pts.append(f"{sx(i):.1f},{sy(vals[j - 1]):.1f}")
            pts.append(f"{sx(i):.1f},{sy(v):.1f}")
        colour = "#000" if name == bold else PALETTE[k % len(PALETTE)]
        cls = "curve all" if name == bold else "curve"
        parts.append(f'<polyline class="{cls}" style="stroke:{colour}" points="{" ".join(pts)}" '
                     f'data-line="{esc(name)}" data-trials="{" ".join(map(str, xs))}" '
                     f'data-values="{" ".join(num(v) for v in vals)}"/>')
        parts.append(f'<text x="{left + pw + 6}" y="{top + 12 + 14 * k}" style="fill:{colour}">'
                     f"{esc(name or '(untagged)')}</text>")
    attrs = "".join(f' data-{key}="{esc(v)}"' for key, v in data.items())
    return (f'<figure class="chart" data-chart="{esc(chart)}"{attrs}>'
            f'<svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<title>{esc(title)}</title>{"".join(parts)}</svg></figure>')


def page(title: str, header: str, sections: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{esc(title)}</title>'
            f"<style>{CSS}</style></head><body>{header}<main>{''.join(sections)}</main>"
            "</body></html>\n")
