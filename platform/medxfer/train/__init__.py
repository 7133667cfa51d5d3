"""Ray Train / Tune glue: run a method on the fast path or a ``TorchTrainer``; ``medxfer train``.

See :mod:`medxfer.train.launcher` for the entry points and the ``run_trial`` contract.
"""

from medxfer.train.launcher import build_trainer, fit_trainer, run_local, run_trial

__all__ = ["build_trainer", "fit_trainer", "run_local", "run_trial"]
