"""Open the report in headless Chromium at 1400 px: charts render, no console errors, no
horizontal page scroll, figures shown at their natural size, no text under 12 px (9 pt), wide
tables scroll inside their box; screenshots saved.

Uses Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them with apt-get
when missing) through selenium with explicit paths; selenium-manager never downloads anything
(``SE_OFFLINE=true``). The page is opened from ``file://``: it must work offline.
"""

from __future__ import annotations


import pytest
from browser_helpers import chromium

from .conftest import STUDY_TABLE



@pytest.fixture
def browser(tmp_path, monkeypatch):
    with chromium(tmp_path, monkeypatch, height=2400, console_log=True) as driver:
        yield driver


# Measured in the page: the document's and each table box's widths, each figure's natural and
# shown width, and every visible text node whose font is under 12 px (9 pt at 100 % zoom).
MEASURE = """
const doc = document.documentElement;
const small = [];
const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walk.nextNode()) {
  const node = walk.currentNode, el = node.parentElement;
  if (!node.textContent.trim() || !el.getClientRects().length) continue;
  const size = parseFloat(getComputedStyle(el).fontSize);
  if (size < 12) small.push([el.tagName, node.textContent.trim().slice(0, 40), size]);
}
return {
  scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth, small: small,
  images: [...document.querySelectorAll('figure.chart img')].map(i => ({
    file: i.closest('figure').dataset.file, complete: i.complete, natural: i.naturalWidth,
    shown: i.clientWidth,
    column: i.closest('section').getBoundingClientRect().width})),
  tables: Object.fromEntries([...document.querySelectorAll('.table-wrap')].map(w => [
    w.querySelector('table').id,
    {client: w.clientWidth, scroll: w.scrollWidth, right: w.getBoundingClientRect().right}])),
  notDrawn: [...document.querySelectorAll('p.not-drawn')].map(p => [
    p.dataset.figure, p.getBoundingClientRect().height, p.textContent]),
};"""


def _screenshot(browser, path):
    """Grow the window to the whole page, so the screenshot shows every section."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(height + 150, 16_000))
    assert browser.save_screenshot(str(path)) and path.stat().st_size > 10_000
    browser.set_window_size(1400, 2400)


def _assert_fits_1400(state):
    assert state["scrollWidth"] <= state["clientWidth"] <= 1400, state["scrollWidth"]
    assert not state["small"], state["small"]
    for img in state["images"]:
        assert img["complete"] and img["natural"] > 0, img
        # Shown 1:1 (so 9 pt at 100 dpi is 12.5 px) and within the page's column.
        assert abs(img["shown"] - img["natural"]) <= 1 and img["natural"] <= img["column"], img
    for table_id, box in state["tables"].items():
        assert box["right"] <= state["clientWidth"], table_id


def test_report_renders_in_chromium(report_dir, browser, tmp_path):
    _, out = report_dir
    browser.get((out / "index.html").resolve().as_uri())
    state = browser.execute_script("""
        const imgs = [...document.querySelectorAll('figure.chart img')];
        return {
          ready: document.readyState,
          sections: [...document.querySelectorAll('section[id]')].map(s => s.id),
          charts: [...document.querySelectorAll('figure.chart')].map(f => f.dataset.chart),
          images: imgs.map(i => [i.closest('figure').dataset.chart, i.complete, i.naturalWidth]),
          heatmapCells: document.querySelectorAll('#ground-truth-table td[data-value]').length,
          tauCells: document.querySelectorAll('#tau-table td').length,
          noData: document.querySelectorAll('p.no-data').length,
          analyses: [...document.querySelectorAll('article.analysis')].map(a => [
            a.dataset.analysis, a.querySelectorAll('img').length,
            a.querySelectorAll('table').length]),
          study: Object.fromEntries([...document.querySelectorAll(
            '#studies table td')].map(td => [td.dataset.row + '|' + td.dataset.col,
                                            td.textContent])),
        };""")
    _assert_fits_1400(browser.execute_script(MEASURE))
    _screenshot(browser, tmp_path / "report.png")
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
    assert state["ready"] == "complete"
    assert state["sections"] == ["ground-truth", "estimates", "scores", "taus",
                                 "critical-difference", "sweeps", "shortcut-studies", "analyses",
                                 "studies"]
    assert state["study"] == {f"{r}|{c}": v for (r, c), v in STUDY_TABLE.items()}
    assert state["charts"] == ["gt-heatmap", "score-grid", "cd-diagram", "best-so-far",
                               "shortcut", "analysis-saliency", "analysis-domain-gap",
                               "analysis-domain-gap", "analysis-similarity", "analysis-spectrum"]
    assert len(state["images"]) == 10
    for chart, complete, width in state["images"]:
        assert complete and width > 0, chart
    assert state["heatmapCells"] == 16 and state["tauCells"] == 12
    assert state["noData"] == 0
    # each analysis run shows its figures and its small tables
    assert state["analyses"] == [["saliency", 1, 1], ["domain-gap", 2, 2],
                                 ["similarity", 1, 2], ["spectrum", 1, 1]]


def test_wide_report_fits_a_1400_px_window(wide_report, browser, tmp_path):
    """The published benchmark's shape: a 15 x 12 heatmap and values table, ten metrics' panels,
    a sweep of one trial. Nothing widens the page; the values table scrolls in its box."""
    _, out = wide_report
    browser.get((out / "index.html").resolve().as_uri())
    state = browser.execute_script(MEASURE)
    _screenshot(browser, tmp_path / "wide_report.png")
    _assert_fits_1400(state)
    assert sorted(i["file"] for i in state["images"]) == [
        "critical_difference.png", "gt_heatmap.png", "scores_vs_ground_truth.png"]
    values = state["tables"]["ground-truth-table"]
    assert values["scroll"] > values["client"]  # wider than the column: it scrolls inside
    (figure, height, text) = state["notDrawn"][0]
    assert figure == "best_so_far_one.png" and height > 0 and "needs two or more" in text
