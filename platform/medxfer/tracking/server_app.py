"""``mlflow server --app-name medxfer``: the stock tracking server plus one read endpoint.

Every bulk read of medxfer (ground truth, grid runs, sweep trials, selected runs) needs a few
tags, params and latest metrics of every run of some experiments: the run table of
:func:`medxfer.tracking.query._runs`. Through MLflow's own ``runs/search`` the server builds an
ORM object, a protobuf message and JSON for every run, all tags and params included: for the
28,205-run benchmark that is 35-45 s of server CPU and about two minutes of wall time on a
2-core machine, and no client-side change can go below it (``benchmarks/ground_truth_http.py``).

This app adds ``POST /api/2.0/medxfer/runs/table`` (and its ``/ajax-api`` twin): the same
single SQL query the SQL-store reader runs (:func:`medxfer.tracking.query._runs_sql`), executed
by the server on its own backend store, answered as ``{"columns": [...], "rows": [[...], ...]}``.
It is read-only, takes keys as bound parameters, and answers 404 on a server whose backend is
not a SQL database, so a client falls back to ``runs/search`` there and on stock servers.

The app also makes the UI open an experiment on its run table. MLflow 3.17's UI picks its
view from the ``workflowType`` URL parameter, else from the choice its "GenAI | Model training"
switch saved in the browser's local storage (``mlflow.workflowType_v1``), default GenAI; the
``mlflow.experimentKind`` tag that medxfer sets on its experiments is read only while that switch
is hidden. So the UI page served here carries one line of script that sets the saved choice to
``machine_learning`` when the browser has none: a bare ``#/experiments/<id>`` link opens on the
runs, and a user who flips the switch keeps their choice.

Everything else is MLflow's server, unchanged (``mlflow.server:app`` wrapped in MLflow's FastAPI
app under uvicorn, as ``--app-name basic-auth`` does). The package must be installed in the
server's environment::

    mlflow server --app-name medxfer --backend-store-uri postgresql+psycopg://... --host ...
"""

from __future__ import annotations

import os

#: The endpoint, relative to the server's root (MLflow's static prefix is added if set).
TABLE_ENDPOINT = "/api/2.0/medxfer/runs/table"
_MAX_KEYS = 64


def _request_fields(body: dict):
    """The request's experiment ids and fields, validated (a bad request is a 400)."""
    from medxfer.tracking.query import _Fields

    exp_ids = body.get("experiment_ids")
    if not isinstance(exp_ids, list) or not exp_ids or not all(
            str(i).isdigit() for i in exp_ids):
        raise ValueError("experiment_ids: expected a non-empty list of experiment ids")
    keys = {}
    for name in ("tags", "params", "metrics", "required"):
        value = body.get(name, [])
        if not isinstance(value, list) or len(value) > _MAX_KEYS or not all(
                isinstance(k, str) for k in value):
            raise ValueError(f"{name}: expected a list of at most {_MAX_KEYS} key strings")
        keys[name] = tuple(value)
    if not set(keys["required"]) <= set(keys["tags"]):
        raise ValueError("required: expected a subset of tags")
    return [str(i) for i in exp_ids], _Fields(**keys)


def _runs_table():
    from flask import jsonify, request
    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR

    from medxfer.errors import MedxferInputError
    from medxfer.tracking.query import _runs_sql
    from medxfer.tracking.uri import is_sql_uri

    store = os.environ.get(BACKEND_STORE_URI_ENV_VAR, "")
    if not is_sql_uri(store):
        return jsonify(error_code="ENDPOINT_NOT_FOUND",
                       message="this server's backend store is not a SQL database"), 404
    try:
        exp_ids, fields = _request_fields(request.get_json(force=True, silent=True) or {})
    except ValueError as exc:
        return jsonify(error_code="INVALID_PARAMETER_VALUE", message=str(exc)), 400
    try:
        rows = _runs_sql(store, exp_ids, fields)
    except MedxferInputError as exc:
        return jsonify(error_code="INTERNAL_ERROR", message=str(exc)), 500
    return jsonify(columns=fields.columns(), rows=[list(r) for r in rows])


#: The browser's saved UI view (MLflow 3.17's ``useLocalStorage`` key ``mlflow.workflowType``,
#: version 1) and the default this app gives it.
WORKFLOW_KEY = "mlflow.workflowType_v1"
DEFAULT_VIEW_SCRIPT = (
    "<script>try{if(localStorage.getItem('%s')===null)"
    "localStorage.setItem('%s',JSON.stringify('machine_learning'))}catch(e){}</script>"
    % (WORKFLOW_KEY, WORKFLOW_KEY))


def _default_view(response):
    """Insert :data:`DEFAULT_VIEW_SCRIPT` into the UI's page (``index.html``), before MLflow's
    own scripts run; other responses pass unchanged."""
    if response.mimetype != "text/html" or response.status_code != 200:
        return response
    response.direct_passthrough = False
    page = response.get_data(as_text=True)
    if "<head>" not in page or WORKFLOW_KEY in page:
        return response
    response.set_data(page.replace("<head>", "<head>" + DEFAULT_VIEW_SCRIPT, 1))
    response.headers.pop("ETag", None)   # the file's tag no longer describes the body
    return response


def create_app(app=None):
    """The ``mlflow.app`` entry point: MLflow's Flask app with the table endpoint added, wrapped
    in MLflow's FastAPI app when the server runs under uvicorn (MLflow 3's default)."""
    from mlflow.environment_variables import _MLFLOW_SGI_NAME
    from mlflow.server import app as mlflow_app
    from mlflow.server.handlers import _add_static_prefix

    app = mlflow_app if app is None else app
    for root in ("/api", "/ajax-api"):
        rule = _add_static_prefix(TABLE_ENDPOINT.replace("/api", root, 1))
        app.add_url_rule(rule, endpoint=f"medxfer_runs_table{root.replace('/', '_')}",
                         view_func=_runs_table, methods=["POST"])
    app.after_request(_default_view)
    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(app)
    return app
