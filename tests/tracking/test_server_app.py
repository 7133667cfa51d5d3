"""The medxfer server app's UI default (``tracking/server_app.py``): MLflow's own ``index.html``,
sent as MLflow sends it (a file response), gains the one-line script that makes the run table the
UI's default view; scripts, JSON and a second pass are left as they are. The browser check is
``tests/test_ui.py`` (a bare experiment link opens on the run table)."""

from __future__ import annotations

from pathlib import Path

import mlflow.server
from flask import Flask, send_from_directory

from medxfer.tracking.server_app import DEFAULT_VIEW_SCRIPT, WORKFLOW_KEY, _default_view

UI_DIR = Path(mlflow.server.__file__).parent / "js" / "build"


def _client():
    app = Flask(__name__)
    app.add_url_rule("/", "index", lambda: send_from_directory(UI_DIR, "index.html"))
    app.add_url_rule("/app.js", "js", lambda: ("var a=1;<head>", 200,
                                              {"Content-Type": "application/javascript"}))
    app.add_url_rule("/json", "json", lambda: {"html": "<head>"})
    app.after_request(_default_view)
    return app.test_client()


def test_the_ui_page_gets_the_default_view_once():
    original = (UI_DIR / "index.html").read_text()
    assert "<head>" in original and WORKFLOW_KEY not in original
    page = _client().get("/").get_data(as_text=True)
    assert page == original.replace("<head>", "<head>" + DEFAULT_VIEW_SCRIPT, 1)
    assert page.count(WORKFLOW_KEY) == 2       # read, then set only when the browser has none
    assert "JSON.stringify('machine_learning')" in page
    again = _client().get("/")
    assert _default_view(again).get_data(as_text=True).count(WORKFLOW_KEY) == 2


def test_other_responses_pass_unchanged():
    c = _client()
    assert c.get("/app.js").get_data(as_text=True) == "var a=1;<head>"
    assert c.get("/json").get_json() == {"html": "<head>"}
    assert c.get("/missing").status_code == 404
