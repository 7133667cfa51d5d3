"""The run schema of our own trials (DESIGN.md): tags and params from a config, metric logging.

Shared by ``medxfer train`` and the sweep code (``medxfer.tune``), so every trial run carries
the same tags (``medxfer.kind=trial``, source, target, arch, method, benchmark, sweep) and the
same params (``lr, weight_decay, momentum, batch_size, lambda_lr, epochs`` plus the method's
own ``method_config``), and its metrics are logged with ``step`` = the reported ``epoch`` (the
final step is the selected model); the data a run used (``n_train``, ...) are params.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from medxfer.config import REPORT_PARAMS
from medxfer.tracking import schema

#: The params every trial run has (DESIGN.md), in this order; then the method's own.
COMMON_PARAMS = ("lr", "weight_decay", "momentum", "batch_size", "lambda_lr", "epochs")
#: Other training settings logged as params (they change results).
EXTRA_TRAIN_PARAMS = ("optimizer", "scheduler", "patience", "early_stopping_metric",
                      "select_by", "seed")
STEP_KEY = "epoch"


def _get(cfg: Any, key: str) -> Any:
    return cfg[key] if isinstance(cfg, Mapping) else getattr(cfg, key)


def _as_dict(cfg: Any) -> dict[str, Any]:
    return dict(cfg) if isinstance(cfg, Mapping) else cfg.model_dump()


def source_of(cfg: Any) -> str:
    """``data.source``, else ``scratch`` without weights, else the weight file's stem."""
    c = _as_dict(cfg)
    if c["data"].get("source"):
        return str(c["data"]["source"])
    weights = c["model"].get("weights")
    return Path(weights).stem if weights else "scratch"


def trial_tags(cfg: Any, *, sweep: str | None = None) -> dict[str, str]:
    """The ``medxfer.*`` tags of a trial run of ``cfg`` (an ExperimentConfig or its dump)."""
    c = _as_dict(cfg)
    tags = {schema.KIND: schema.KIND_TRIAL, schema.SOURCE: source_of(c),
            schema.TARGET: str(c["data"]["flag"]),
            schema.ARCH: str(c["model"].get("arch") or c["model"]["backbone"]),
            schema.METHOD: str(c["method"])}
    benchmark = (c.get("tracking") or {}).get("benchmark")
    if benchmark:
        tags[schema.BENCHMARK] = str(benchmark)
    if sweep:
        tags[schema.SWEEP] = sweep
    return tags


def flatten(d: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists kept as values)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key, sep))
        else:
            out[key] = v
    return out


def trial_params(cfg: Any) -> dict[str, str]:
    """Params of a trial run: the common ones, training settings, then ``method_config``
    flattened (``temperature``, ``variant``, ...; a name clash, also with the data params the
    loop reports (:data:`medxfer.config.REPORT_PARAMS`, e.g. segment's ``n_labelled``), gets a
    ``method.`` prefix)."""
    c = _as_dict(cfg)
    train = c["train"]
    params = {k: train[k] for k in COMMON_PARAMS}
    params.update({k: train[k] for k in EXTRA_TRAIN_PARAMS})
    params["backbone"] = c["model"]["backbone"]
    for k, v in flatten(c.get("method_config") or {}).items():
        params[k if k not in params and k not in REPORT_PARAMS else f"method.{k}"] = v
    return {k: str(v) for k, v in params.items()}


def metrics_to_log(metrics: Mapping[str, Any]) -> tuple[int, dict[str, float]]:
    """``(step, {name: value})`` of one reported dict: step = its ``epoch``; non-numeric
    values (Tune's bookkeeping, checkpoint paths) and the data params
    (:func:`params_to_log`) are dropped."""
    step = int(metrics.get(STEP_KEY, 0))
    out = {}
    for k, v in metrics.items():
        if k == STEP_KEY or k in REPORT_PARAMS or isinstance(v, bool) \
                or not isinstance(v, (int, float)):
            continue
        out[k] = float(v)
    return step, out


def params_to_log(metrics: Mapping[str, Any]) -> dict[str, str]:
    """The report's data params (:data:`medxfer.config.REPORT_PARAMS`: ``n_train``, ...) as
    run params; whole numbers are written without a decimal point."""
    out = {}
    for k in REPORT_PARAMS:
        v = metrics.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = str(int(v)) if float(v).is_integer() else str(v)
    return out


def log_report(client, run_id: str, metrics: Mapping[str, Any]) -> None:
    """Log one reported dict to ``run_id`` in one ``log_batch`` call: its metrics with its
    step, and its data params (the same value every step, so re-logging is harmless)."""
    import time

    from mlflow.entities import Metric, Param

    step, values = metrics_to_log(metrics)
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()],
                     params=[Param(k, v) for k, v in params_to_log(metrics).items()])
