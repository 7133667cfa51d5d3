"""Sweeps: ``medxfer sweep CONFIG.yaml`` runs Ray Tune over an experiment's search space and
records every trial as an MLflow child run of the sweep's parent run.

Modules:

* :mod:`~medxfer.tune.search_config` — ``SearchConfig`` (the YAML ``search:`` section; errors
  name YAML paths);
* :mod:`~medxfer.tune.space` — YAML leaves -> Tune domains (flat dotted keys);
* :mod:`~medxfer.tune.search` — ``SEARCHERS`` name -> factory (``hyperopt``, ``grid``,
  ``random``, ``warmstart``: its prior loaded here, the searcher built by
  ``searchers.build_searcher``), ASHA, the patience stopper;
* :mod:`~medxfer.tune.experiment` — loading the experiment YAML (MERGE SEAM: ``validate_base``
  -> ``medxfer.config.ExperimentConfig``; ``schema_tags`` -> ``medxfer.tracking.runs``);
* :mod:`~medxfer.tune.trainables` — ``TRAINABLES`` (MERGE SEAM: ``"launcher"`` =
  ``medxfer.train.launcher.run_trial``, default once importable; ``"toy"`` = a real tiny torch
  loop with the same contract) and the per-trial wrapper (sampled config merge, telemetry);
* :mod:`~medxfer.tune.telemetry` — ``system/*`` metrics sampled in the trial's own process;
* :mod:`~medxfer.tune.mlflow_callback` — the driver-side Tune callback writing child runs;
* :mod:`~medxfer.tune.sweep` — ``run_sweep`` (fresh or ``resume``), the parent run's result;
* :mod:`~medxfer.tune.cli` — the ``sweep`` verb;
* :mod:`~medxfer.tune.searchers` — ``warmstart``: a Ray Tune ``Searcher`` with a leave-target-out
  prior from a benchmark in MLflow (``ConfigKeyPrior``: the same prior under config keys), and
  the registry the replay and the sweep's ``warmstart`` build searchers from;
* :mod:`~medxfer.tune.replay` — ``medxfer benchmark replay``: searchers replayed on a logged grid.
* :mod:`~medxfer.tune.joint` — ``joint``: a searcher over (source, configuration) driven by
  transferability scores and leave-target-out priors; :mod:`~medxfer.tune.joint_replay` and
  :mod:`~medxfer.tune.joint_cli` — ``medxfer benchmark replay --joint`` (regret per procedure).
"""
