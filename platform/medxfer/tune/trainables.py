"""What a sweep trial runs: the wrapper around the trainable.

A trainable is any ``fn(config: dict) -> None`` that runs one trial inside a Ray Tune function
trainable, reports each epoch with ``ray.tune.report(metrics, checkpoint=...)`` and resumes from
``ray.tune.get_checkpoint()``. A sweep runs the configured method through
:func:`medxfer.train.launcher.run_trial`, whose sessions (:mod:`medxfer.train.sessions`) add
the ``system/*`` telemetry and the trial's Ray node id to every report.

``config`` is the validated experiment config (``model_dump()``) with the sampled
hyperparameters written in at their dotted paths (``train.lr`` -> ``config["train"]["lr"]``).
Reported metrics: ``train_loss``, ``val_loss``, ``val_auc``, ``test_auc`` and ``epoch`` (the
1-based epoch, used as the MLflow step) each epoch.
"""

from __future__ import annotations

import copy
from typing import Callable

from medxfer.config import set_path
from medxfer.tune.experiment import SWEEP_ONLY_KEYS

Trainable = Callable[[dict], None]


def merge_sampled(base: dict, sampled: dict) -> dict:
    """The experiment config with the sampled values written at their dotted paths."""
    cfg = copy.deepcopy(base)
    for key, value in sampled.items():
        set_path(cfg, key, value)
    return cfg


def _run_trial(config: dict) -> None:
    from medxfer.train.launcher import run_trial

    run_trial(config)


def make_trial_fn(trainable: Trainable | None, base_config: dict) -> Trainable:
    """The Tune function trainable of a sweep: the experiment config with the sampled values
    merged in (the sweep's own top-level keys dropped), run by ``trainable`` (None: the
    configured method, :func:`medxfer.train.launcher.run_trial`). Picklable; the launcher is
    imported inside the trial process, so a restored sweep runs the current code."""
    fn = trainable or _run_trial

    def medxfer_trial(config: dict) -> None:
        full = merge_sampled(base_config, config)
        fn({k: v for k, v in full.items() if k not in SWEEP_ONLY_KEYS})

    return medxfer_trial
