"""Ray Train / Tune glue: run a method on the fast path or a ``TorchTrainer``; ``medxfer train``.

See :mod:`medxfer.train.launcher` for the entry points and the ``run_trial`` contract. Names are
imported lazily so that the CLI (``medxfer.cli.train``) does not import torch at start-up.
"""

from medxfer._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__, {"launcher": ("build_trainer", "fit_trainer", "run_local", "run_trial")})
