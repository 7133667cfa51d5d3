"""MLflow from the Tune driver: one child run per trial under the sweep's parent run.

Only the driver writes (no two processes race on a sqlite store; works across nodes). Child runs
are keyed by the Tune trial id (tag ``medxfer.trial_id``): a restored sweep, or a retried trial,
finds and reuses its run instead of creating another. A child run is named after what it is
(``synthchest -> synthpneumonia lr=0.01 bs=32``, :mod:`medxfer.tracking.run_names`), the Tune
trial id stays in its tags. Each result is logged once per step
(``medxfer.last_step`` remembers the highest step, so epochs replayed after a restore from an
older checkpoint are not logged twice).

The data a trial used (``n_train``, ... :data:`medxfer.config.REPORT_PARAMS`) are logged as
params, not metrics. The trial's Ray node id (result key ``system/node_id``, added to every
report by the training sessions, :mod:`medxfer.train.telemetry`) is written as the tag
``medxfer.node_id``; a trial retried on another node shows its latest node.

When a trial completes, its final step (last epoch + 1) repeats the metrics of its *selected*
epoch (best ``select_by``, DESIGN.md: "last value always means the selected model"), so the
ground-truth query reads the selected model's ``test_auc``. A trainable that reports that final
step itself (the launcher's methods: a last report with ``selected_epoch``, DESIGN.md) already
did this: its ``selected_epoch`` becomes the ``medxfer.selected_step`` tag and no further step is
added (the selected model is logged once, at last + 1).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Optional

from ray.tune import Callback
from ray.tune.result import AUTO_RESULT_KEYS

from medxfer.config import REPORT_PARAMS
from medxfer.tracking import schema
from medxfer.tracking.run_names import trial_run_name
from medxfer.tracking.runs import params_to_log
from medxfer.train.telemetry import NODE_ID_RESULT
from medxfer.tune.experiment import schema_tags, trial_params

log = logging.getLogger(__name__)

_SKIP = set(AUTO_RESULT_KEYS) | {"trial_id", "experiment_tag", "done", "should_checkpoint",
                                 "epoch", "experiment_id"} | set(REPORT_PARAMS)


def result_metrics(result: dict) -> dict[str, float]:
    """The numeric metrics a trial reported (Tune's own bookkeeping keys dropped)."""
    out = {}
    for k, v in result.items():
        if k in _SKIP or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if math.isfinite(float(v)):
            out[k] = float(v)
    if isinstance(result.get("time_this_iter_s"), (int, float)):
        out["system/epoch_seconds"] = float(result["time_this_iter_s"])
    return out


def result_step(result: dict) -> int:
    step = result.get("epoch")
    if not isinstance(step, (int, float)) or isinstance(step, bool):
        step = result.get("training_iteration", 0)
    return int(step)


class MlflowSweepCallback(Callback):
    """Tune callback writing the sweep's child runs (see module docstring). Picklable: Tune
    stores it in ``tuner.pkl`` and ``Tuner.restore`` brings it back."""

    def __init__(self, tracking_uri: str, experiment_id: str, sweep: str, parent_run_id: str,
                 base_config: dict, select_by: str = "val_loss", select_mode: str = "min"):
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.sweep = sweep
        self.parent_run_id = parent_run_id
        self.base_config = base_config
        self.select_by = select_by
        self.select_mode = select_mode
        self._client = None
        self._runs: dict[str, str] = {}
        self._last_step: dict[str, int] = {}

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(_client=None, _runs={}, _last_step={})
        return state

    @property
    def client(self):
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    # ------------------------------------------------------------------ child runs

    def find_child(self, trial_id: str):
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(f"tags.`{schema.TRIAL_ID}` = '{trial_id}' and "
                           f"tags.`{schema.PARENT_RUN_ID}` = '{self.parent_run_id}'"),
            max_results=10)
        return runs[0] if runs else None

    def run_id(self, trial) -> str:
        tid = trial.trial_id
        if tid in self._runs:
            return self._runs[tid]
        from medxfer.tune.trainables import merge_sampled

        existing = self.find_child(tid)
        if existing is not None:
            rid = existing.info.run_id
            self._last_step[tid] = int(existing.data.tags.get(schema.LAST_STEP, 0))
            if existing.info.status != "RUNNING":
                self.client.update_run(rid, status="RUNNING")
        else:
            sampled = dict(trial.config)
            full = merge_sampled(self.base_config, sampled)
            tags = {schema.PARENT_RUN_ID: self.parent_run_id, schema.KIND: schema.KIND_TRIAL,
                    schema.SWEEP: self.sweep, schema.TRIAL_ID: tid,
                    **schema_tags(full)}
            run = self.client.create_run(self.experiment_id, tags=tags,
                                         run_name=trial_run_name(full, sampled))
            rid = run.info.run_id
            from mlflow.entities import Param

            params = [Param(k, v) for k, v in trial_params(full, sampled).items()]
            for i in range(0, len(params), 100):
                self.client.log_batch(rid, params=params[i:i + 100])
            self._last_step[tid] = 0
        self._runs[tid] = rid
        return rid

    # ------------------------------------------------------------------ Tune hooks

    def on_trial_start(self, iteration, trials, trial, **info):
        self.run_id(trial)

    def on_trial_restore(self, iteration, trials, trial, **info):
        self.run_id(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        from mlflow.entities import Metric, Param, RunTag

        rid = self.run_id(trial)
        step = result_step(result)
        if step <= self._last_step.get(trial.trial_id, 0):
            return  # replayed after a restore from an older checkpoint: logged already
        ts = int(time.time() * 1000)
        metrics = [Metric(k, v, ts, step) for k, v in result_metrics(result).items()]
        tags = [RunTag(schema.LAST_STEP, str(step))]
        node = result.get(NODE_ID_RESULT)
        if isinstance(node, str) and node:
            tags.append(RunTag(schema.NODE_ID, node))
        selected = result.get("selected_epoch")
        if isinstance(selected, (int, float)) and not isinstance(selected, bool):
            # the trainable's own final step (the selected model): log_selected keeps it
            tags.append(RunTag(schema.SELECTED_STEP, str(int(selected))))
        params = [Param(k, v) for k, v in params_to_log(result).items()]  # data used: n_train
        self.client.log_batch(rid, metrics=metrics, tags=tags, params=params)
        self._last_step[trial.trial_id] = step

    def on_trial_complete(self, iteration, trials, trial, **info):
        rid = self.run_id(trial)
        try:
            self.log_selected(rid)
        finally:
            self.client.set_terminated(rid, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        rid = self.run_id(trial)
        self.client.set_terminated(rid, "FAILED")

    # ------------------------------------------------------------------ selection

    def log_selected(self, run_id: str) -> Optional[int]:
        """Repeat the selected epoch's metrics at step last + 1 (once per run; not when the
        trainable reported its selected model itself, see the module docstring)."""
        from mlflow.entities import Metric, RunTag

        run = self.client.get_run(run_id)
        if schema.SELECTED_STEP in run.data.tags:
            return int(run.data.tags[schema.SELECTED_STEP])
        last = int(run.data.tags.get(schema.LAST_STEP, 0))
        hist = [m for m in self.client.get_metric_history(run_id, self.select_by)
                if m.step <= last]
        if not hist:
            return None
        sign = 1 if self.select_mode == "min" else -1
        best = min(hist, key=lambda m: (sign * m.value, m.step))
        values: dict[str, Any] = {}
        for key in run.data.metrics:
            if key.startswith("system/"):
                continue
            at = [m for m in self.client.get_metric_history(run_id, key) if m.step == best.step]
            if at:
                values[key] = at[-1].value
        ts = int(time.time() * 1000)
        self.client.log_batch(
            run_id, metrics=[Metric(k, v, ts, last + 1) for k, v in values.items()],
            tags=[RunTag(schema.SELECTED_STEP, str(best.step)),
                  RunTag(schema.LAST_STEP, str(last + 1))])
        return best.step
