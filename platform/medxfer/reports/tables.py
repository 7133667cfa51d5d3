"""Render a DataFrame as ``table`` (plain text), ``csv``, ``markdown`` or ``latex``."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

FORMATS = ("table", "csv", "markdown", "latex")


def render(df: pd.DataFrame, fmt: str = "table", *, digits: int = 4,
           index: bool = True) -> str:
    """Text of ``df`` in ``fmt``; NaN is an empty cell. CSV keeps full precision."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "csv":
        buf = io.StringIO()
        df.to_csv(buf, index=index, na_rep="", float_format=None, lineterminator="\n")
        return buf.getvalue()
    shown = df.copy()
    for c in shown.columns:
        if pd.api.types.is_float_dtype(shown[c]):
            shown[c] = shown[c].map(lambda v: "" if pd.isna(v) else f"{v:.{digits}f}")
    if fmt == "markdown":
        return _markdown(shown, index) + "\n"
    if fmt == "latex":
        body = shown if not index else shown.reset_index()
        cols = list(body.columns)
        lines = [r"\begin{tabular}{l" + "r" * (len(cols) - 1) + "}", r"\toprule",
                 " & ".join(_tex(c) for c in cols) + r" \\", r"\midrule"]
        lines += [" & ".join(_tex(v) for v in row) + r" \\" for row in body.astype(str).values]
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines) + "\n"
    return shown.to_string(index=index, na_rep="") + "\n"


def _markdown(df: pd.DataFrame, index: bool) -> str:
    body = df.reset_index() if index else df
    cols = [str(c) for c in body.columns]
    rows = [[str(v) for v in row] for row in body.values]
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _tex(value) -> str:
    return str(value).replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")


def write_or_print(text: str, output: str | Path | None, echo) -> None:
    """Write ``text`` to ``output`` (creating folders) or pass it to ``echo``."""
    if output:
        out = Path(output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    else:
        echo(text.rstrip("\n"))
