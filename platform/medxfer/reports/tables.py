"""Render a DataFrame as text: ``table`` (plain), ``csv``, ``markdown`` or ``latex``.

The one renderer behind every verb that prints or writes a table (``benchmark ground-truth``,
``benchmark replay``, ``estimate score``, ``estimate evaluate``, ``demo``, the report's CSV
files), and the one rule for which format a verb writes (:func:`output_format`: ``--format``,
else ``--output``'s extension). pandas is imported inside :func:`render` only, so the CLI can
list ``FORMATS`` without loading it.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from medxfer.errors import MedxferInputError

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("table", "csv", "markdown", "latex")
# The file extension that each format is written with.
SUFFIX = {"table": ".txt", "csv": ".csv", "markdown": ".md", "latex": ".tex"}
# The format an ``--output`` extension stands for (lower-cased; SUFFIX's inverse plus aliases).
EXTENSION_FORMAT = {**{suffix: fmt for fmt, suffix in SUFFIX.items()}, ".markdown": "markdown"}

# LaTeX's ten special characters; a single pass, so the backslashes added are not re-escaped.
_TEX = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
        "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}
_TEX_RE = re.compile("|".join(re.escape(c) for c in _TEX))


def render(frame: pd.DataFrame, fmt: str = "table", *, number: str = ".4f",
           index: bool = True, title: str | None = None) -> str:
    """Text of ``frame`` in format ``fmt``, ending with a newline.

    Args:
        frame: the table; with ``index`` its index (named or not) becomes the first column.
        fmt: one of ``FORMATS``. ``csv`` keeps full precision and ignores ``title`` (so it
            round-trips through ``pandas.read_csv``); the others write every float cell with
            the format spec ``number``.
        number: format spec of float cells outside CSV, e.g. ``".3f"``, ``"g"``.
        index: write the index as the first column.
        title: a caption line: plain text above a ``table``, bold above ``markdown``, a ``%``
            comment above ``latex``.

    Empty cells are NaN / None. ``markdown`` right-aligns columns whose cells are all numbers
    and left-aligns the others, and escapes ``|``; ``latex`` (booktabs) does the same with
    ``r`` / ``l`` columns and escapes ``& % $ # _ { } ~ ^ \\`` in headers, index and cells.

    Raises:
        ValueError: ``fmt`` is not one of ``FORMATS``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "csv":
        return frame.to_csv(index=index, na_rep="", lineterminator="\n")
    if fmt == "table":
        return _plain(frame, number, index, title)
    body = frame.reset_index() if index else frame
    header = [str(c) for c in body.columns]
    numeric = [_is_numeric(body[c]) for c in body.columns]
    cells = [[_cell(v, number) for v in row] for row in body.itertuples(index=False)]
    return (_markdown if fmt == "markdown" else _latex)(header, numeric, cells, title)


def render_csv_rows(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """The text :func:`render` writes in ``csv`` for a frame of text labels and float cells,
    from plain rows, without pandas (the ground-truth verb answers without importing it).

    Same rules as pandas' ``to_csv`` there: minimal quoting, ``\n`` line ends, floats at full
    precision (shortest round-trip repr), NaN and None as empty cells.
    """
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([_csv_cell(v) for v in row] for row in rows)
    return buf.getvalue()


def _csv_cell(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return repr(v) if isinstance(v, float) else v


def output_format(fmt: str | None, output: str | Path | None, *,
                  default: str = "table") -> str:
    """The format a verb writes: ``--format`` if given, else ``--output``'s extension, else
    ``default``.

    ``.csv`` means csv, ``.md`` / ``.markdown`` markdown, ``.tex`` latex, ``.txt`` the plain
    table, so ``--output tau.csv`` alone writes CSV.

    Raises:
        MedxferInputError: ``fmt`` is not one of ``FORMATS``; ``fmt`` contradicts the
            extension of ``output``; ``output`` has another extension and ``fmt`` is None
            (so nothing is written under a name that says something else).
    """
    if fmt is not None and fmt not in FORMATS:
        raise MedxferInputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    suffix = Path(output).suffix.lower() if output else ""
    implied = EXTENSION_FORMAT.get(suffix)
    if fmt is None:
        if suffix and implied is None:
            raise MedxferInputError(
                f"--output {output}: extension {suffix!r} names no table format; use one of "
                f"{', '.join(EXTENSION_FORMAT)} or pass --format ({', '.join(FORMATS)})")
        return implied or default
    if implied is not None and implied != fmt:
        raise MedxferInputError(
            f"--format {fmt} contradicts --output {output} ({suffix} means {implied}); drop "
            f"--format or write to {Path(output).with_suffix(SUFFIX[fmt]).name}")
    return fmt


def latex_escape(text: str) -> str:
    r"""``text`` with LaTeX's special characters escaped (``a_b & 5%`` -> ``a\_b \& 5\%``)."""
    return _TEX_RE.sub(lambda m: _TEX[m.group()], text)


def write_or_print(text: str, output: str | Path | None, echo) -> None:
    """Write ``text`` to ``output`` (creating folders) or pass it to ``echo``."""
    if output:
        out = Path(output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    else:
        echo(text.rstrip("\n"))


def _is_empty(v) -> bool:
    import pandas as pd

    return v is None or (pd.api.types.is_scalar(v) and bool(pd.isna(v)))


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_numeric(column) -> bool:
    """All non-empty cells are numbers (also in an object column, e.g. ints mixed with floats)."""
    return all(_is_number(v) for v in column if not _is_empty(v))


def _cell(v, number: str) -> str:
    """Floats (also inside object columns) through ``number``; ints and text as they are."""
    if _is_empty(v):
        return ""
    if _is_number(v) and not isinstance(v, numbers.Integral):
        return format(float(v), number)
    return str(v)


def _plain(frame: pd.DataFrame, number: str, index: bool, title: str | None) -> str:
    shown = frame.astype(object).map(lambda v: _cell(v, number))
    text = shown.to_string(index=index)
    return (f"{title}\n" if title else "") + text + "\n"


def _markdown(header, numeric, cells, title) -> str:
    esc = lambda s: s.replace("|", r"\|")  # noqa: E731
    rule = ["---:" if num else ":---" for num in numeric]
    lines = ["| " + " | ".join(map(esc, header)) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(map(esc, row)) + " |" for row in cells]
    return (f"**{title}**\n\n" if title else "") + "\n".join(lines) + "\n"


def _latex(header, numeric, cells, title) -> str:
    spec = "".join("r" if num else "l" for num in numeric)
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(map(latex_escape, header)) + r" \\", r"\midrule"]
    lines += [" & ".join(map(latex_escape, row)) + r" \\" for row in cells]
    lines += [r"\bottomrule", r"\end{tabular}"]
    caption = "% " + " ".join(title.split()) + "\n" if title else ""
    return caption + "\n".join(lines) + "\n"
