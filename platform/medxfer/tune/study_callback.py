"""MLflow from the study's Tune driver: one child run per cell (and per search trial).

The sweep's callback (:class:`~medxfer.tune.mlflow_callback.MlflowSweepCallback`: written by
the driver only, one log per step, the selected model at the last step) with a study's run
schema (DESIGN.md): a cell's run is tagged ``medxfer.kind=cell`` and ``medxfer.cell.*`` (its
coordinates) and is keyed by its cell key, so a resumed study, or a trial Tune regenerates
after a driver kill, finds and reuses the cell's run: every cell is recorded once. A search
trial is a ``medxfer.kind=trial`` run keyed by its trial id, tagged with the cell it searches
for (``medxfer.cell.phase=search``). A cell whose hyperparameters came from a search records
them as params ``search.chosen.<key>`` and the search trial's run id as a tag.
"""

from __future__ import annotations

from typing import Any

from medxfer.tracking import schema
from medxfer.tracking.run_names import study_search_run_name
from medxfer.tune.experiment import schema_tags, trial_params
from medxfer.tune.mlflow_callback import MlflowSweepCallback
from medxfer.tune.study_config import cell_key


def cell_tags(cell: dict) -> dict[str, str]:
    """The ``medxfer.cell.*`` tags of a cell (``CellConfig.model_dump()``)."""
    tags = {schema.CELL_ROW: cell["row"], schema.CELL_PHASE: cell["phase"],
            schema.CELL_SEED: str(cell["seed"])}
    for tag, key in ((schema.CELL_FOLD, "fold"), (schema.CELL_FRACTION, "fraction"),
                     (schema.CELL_N_LABELLED, "n_labelled"), (schema.CELL_TEST_SET, "test_set"),
                     (schema.CELL_P_ART, "p_art")):
        if cell.get(key) is not None:
            tags[tag] = f"{cell[key]:g}" if isinstance(cell[key], float) else str(cell[key])
    return tags


class StudyCallback(MlflowSweepCallback):
    """Child runs of a study phase (module docstring). Picklable (Tune stores it).

    Args:
        tracking_uri, experiment_id, study, parent_run_id: the store, ``study/<name>``, the
            study's name and its parent run.
        phase: ``train``/``transfer`` (trial config ``{"cell": ...}``, full configs in
            ``configs`` by cell key) or ``search`` (trial config = sampled values, merged into
            ``base_config``, or into ``configs`` of its ``cell`` when it has one).
        chosen: per cell key, ``{"config": {dotted key: value}, "run_id": search run}``.
    """

    def __init__(self, tracking_uri: str, experiment_id: str, study: str, parent_run_id: str,
                 *, phase: str, configs: dict[str, dict] | None = None,
                 base_config: dict | None = None, chosen: dict[str, Any] | None = None):
        t = (base_config or next(iter((configs or {}).values()), {})).get("train", {})
        super().__init__(tracking_uri, experiment_id, study, parent_run_id, base_config or {},
                         t.get("select_by", "val_loss"), t.get("mode", "min"))
        self.phase, self.configs, self.chosen = phase, configs or {}, chosen or {}

    def _describe(self, trial) -> tuple[str | None, dict, dict]:
        """(cell key or None for a search trial, full config, sampled values)."""
        if self.phase == "search":
            from medxfer.tune.trainables import merge_sampled

            sampled = {k: v for k, v in trial.config.items() if k != "cell"}
            base = (self.configs[cell_key(trial.config["cell"])] if "cell" in trial.config
                    else self.base_config)
            return None, merge_sampled(base, sampled), sampled
        key = cell_key(trial.config["cell"])
        return key, self.configs[key], {}

    def _find_cell(self, key: str):
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(f"tags.`{schema.CELL_KEY}` = '{key}' and "
                           f"tags.`{schema.PARENT_RUN_ID}` = '{self.parent_run_id}'"),
            max_results=10)
        return runs[0] if runs else None

    def _create(self, trial, key: str | None, full: dict, sampled: dict) -> str:
        from mlflow.entities import Param

        tid = trial.trial_id
        cell = full["cell"]
        tags = {schema.PARENT_RUN_ID: self.parent_run_id, schema.STUDY: self.sweep,
                schema.TRIAL_ID: tid, **schema_tags(full), **cell_tags(cell),
                schema.KIND: schema.KIND_TRIAL if key is None else schema.KIND_CELL}
        params = trial_params(full, sampled)
        if key is not None:
            tags[schema.CELL_KEY] = key
            picked = self.chosen.get(key)
            if picked:
                tags[schema.CELL_SEARCH_RUN] = str(picked.get("run_id"))
                params.update({f"search.chosen.{k}": str(v)
                               for k, v in picked["config"].items()})
        name = key or study_search_run_name(cell_key(cell), sampled)
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=name)
        batch = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(batch), 100):
            self.client.log_batch(run.info.run_id, params=batch[i:i + 100])
        return run.info.run_id

    def run_id(self, trial) -> str:
        tid = trial.trial_id
        if tid in self._runs:
            return self._runs[tid]
        key, full, sampled = self._describe(trial)
        existing = self.find_child(tid) if key is None else self._find_cell(key)
        if existing is None:
            rid = self._create(trial, key, full, sampled)
            self._last_step[tid] = 0
        else:
            rid = existing.info.run_id
            if existing.data.tags.get(schema.TRIAL_ID) == tid:
                self._last_step[tid] = int(existing.data.tags.get(schema.LAST_STEP, 0))
            else:  # Tune runs the cell afresh under a new trial: log its steps again
                self.client.set_tag(rid, schema.TRIAL_ID, tid)
                self._last_step[tid] = 0
            if existing.info.status != "RUNNING":
                self.client.update_run(rid, status="RUNNING")
        self._runs[tid] = rid
        return rid
