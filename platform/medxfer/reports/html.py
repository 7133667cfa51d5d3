"""Small HTML builders for the offline report: no template engine, no scripts, no network.

Every number shown in a table also sits, at full precision, in a ``data-value`` attribute, so
tests and users can read the exact values back from the page.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from html import escape
from pathlib import Path

import pandas as pd

# Readable at 100 % zoom in a 1400 px window: no text under 12 px (9 pt), figures at their
# natural size (the PNGs are at most 1280 px wide), wide tables scroll inside their own box
# instead of widening the page. `monospace, monospace` stops browsers shrinking code to 13/16.
CSS = """
body{font-family:system-ui,sans-serif;font-size:16px;margin:0 auto;max-width:1400px;
 padding:1rem 2rem;color:#222;box-sizing:border-box}
header{border-bottom:2px solid #2c5d8a;margin-bottom:1rem}
h1{color:#2c5d8a;margin-bottom:.2rem} h2{color:#2c5d8a;border-bottom:1px solid #ccc}
dl.meta{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.2rem 1rem}
dl.meta dt{font-weight:600} dl.meta dd{margin:0;overflow-wrap:anywhere}
code{font-family:monospace,monospace;font-size:.9em;background:#f3f3f3;padding:0 .3em;
 overflow-wrap:anywhere}
.table-wrap{max-width:100%;overflow-x:auto;margin:.5rem 0}
table{border-collapse:collapse;font-size:.85rem}
th,td{border:1px solid #ddd;padding:.2rem .45rem;text-align:right;white-space:nowrap}
th{background:#f5f7fa} th[scope=row]{text-align:left}
table.heatmap td{min-width:3rem}
figure.chart{margin:.8rem 0;max-width:100%;overflow-x:auto}
figure.chart img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}
details>summary{cursor:pointer;margin:.3rem 0}
p.no-data,p.not-drawn,p.warning{color:#6b4600;background:#fff6e0;border-left:4px solid #e0a000;
 padding:.4rem .8rem}
"""


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
    """A section's note that its data is absent."""
    return f'<p class="no-data">no data: {esc(text)}</p>'


def not_drawn(figure: str, text: str) -> str:
    """The note in place of a figure that cannot be drawn, with the reason."""
    return (f'<p class="not-drawn" data-figure="{esc(figure)}">{esc(figure)} not drawn: '
            f"{esc(text)}</p>")


def warning(text: str) -> str:
    return f'<p class="warning">warning: {esc(text)}</p>'


def table(df: pd.DataFrame, *, table_id: str, spec: str = ".3f", index_name: str | None = None,
          cell_style=None) -> str:
    """``df`` as a table in a box that scrolls sideways when the table is wider than the page;
    the index becomes row headers; numbers carry ``data-value``."""
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
    return (f'<div class="table-wrap"><table id="{esc(table_id)}" class="data"><thead><tr>'
            f'<th scope="col">{corner}</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
            "</table></div>")


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


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels, from the PNG's IHDR chunk."""
    head = Path(path).read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def png_figure(path: Path, *, chart: str, caption: str, **data) -> str:
    """A ``<figure class="chart">`` with the PNG inlined as base64 (so index.html stands alone)
    and its pixel size as ``width`` / ``height``, so it is shown 1:1 where it fits."""
    b64 = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    width, height = png_size(path)
    attrs = "".join(f' data-{k.replace("_", "-")}="{esc(v)}"' for k, v in data.items())
    return (f'<figure class="chart" data-chart="{esc(chart)}" data-file="{esc(Path(path).name)}"'
            f'{attrs}><img src="data:image/png;base64,{b64}" width="{width}" height="{height}" '
            f'alt="{esc(caption)}"><figcaption>{esc(caption)} (<code>{esc(Path(path).name)}'
            "</code>)</figcaption></figure>")


def page(title: str, header: str, sections: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{esc(title)}</title>'
            f"<style>{CSS}</style></head><body>{header}<main>{''.join(sections)}</main>"
            "</body></html>\n")
