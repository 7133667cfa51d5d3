"""Sweeps: ``medxfer sweep CONFIG.yaml`` runs Ray Tune over an experiment's search space and
records every trial as an MLflow child run of the sweep's parent run.

Modules:

* :mod:`~medxfer.tune.search_config` — ``SearchConfig`` (the YAML ``search:`` section; errors
  name YAML paths);
* :mod:`~medxfer.tune.searchers` — ``SEARCHERS``, the one searcher registry (sweeps and
  ``medxfer benchmark replay``);
* :mod:`~medxfer.tune.warmstart` — the warm-start searcher: a Ray Tune ``Searcher`` with a
  leave-target-out prior from a benchmark in MLflow, and the loader of a sweep's prior;
* :mod:`~medxfer.tune.space` — YAML leaves -> Tune domains (flat dotted keys);
* :mod:`~medxfer.tune.search` — a sweep's searcher, ASHA, the patience stopper;
* :mod:`~medxfer.tune.experiment` — loading the experiment YAML (validated by
  :mod:`medxfer.config`; run-schema tags from :mod:`medxfer.tracking.runs`);
* :mod:`~medxfer.tune.trainables` — the per-trial wrapper (sampled config merge) around
  :func:`medxfer.train.launcher.run_trial`;
* :mod:`~medxfer.tune.mlflow_callback` — the driver-side Tune callback writing child runs;
* :mod:`~medxfer.tune.sweep` — ``run_sweep`` (fresh or ``resume``), the parent run's result;
* :mod:`~medxfer.cli.sweep` — the ``sweep`` verb;
* :mod:`~medxfer.tune.replay` — ``medxfer benchmark replay``: searchers replayed on a logged grid.
* :mod:`~medxfer.tune.joint` — ``joint``: a searcher over (source, configuration) driven by
  transferability scores and leave-target-out priors (:mod:`~medxfer.tune.joint_prior`);
  :mod:`~medxfer.tune.joint_replay` — ``medxfer benchmark replay --joint`` (regret per
  procedure; its CLI body is :mod:`medxfer.cli.replay_joint`).
"""
