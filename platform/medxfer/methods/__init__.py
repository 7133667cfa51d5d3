"""Methods: a registry of training loops that run unchanged on the fast path, in Ray Tune and in
Ray Train (``medxfer.train`` binds them).

* :func:`get_method`, :func:`list_methods`, :func:`register_method`, :class:`Method`
  (``train_loop_per_worker(config)`` + ``defaults`` + ``config_schema``);
* :func:`parse_experiment`, :func:`load_config`, :func:`method_options`: the experiment YAML
  validated against the registry (:mod:`medxfer.methods.experiment`);
* :func:`~medxfer.methods.loop.fit` and :class:`~medxfer.methods.loop.Parts`: the one training
  loop every method's parts run in;
* :class:`Session`, :func:`get_session`, :func:`use_session`, :class:`LocalSession`: the one
  interface a loop reports through (no Ray or MLflow import anywhere in this package).

Registered (one module each): ``finetune``, ``simclr``, ``supcon``, ``cltci``, ``moco``,
``swav``, ``rotation``, ``pirl``, ``mae``, ``dce``, ``scc``, ``dce_mae``, ``segment``.
Importing this package also registers the ``dce`` transform
(:mod:`medxfer.methods.dce_transform`) into :mod:`medxfer.data.transforms`.
"""

from medxfer.methods.registry import (Method, MethodOptions, get_method, list_methods,
                                      register_method)
from medxfer.methods.session import LocalSession, Session, get_session, use_session
from medxfer.methods.experiment import load_config, method_options, parse_experiment

# Registration happens on import (Ray workers import this package and see the same entries).
from medxfer.methods import (cltci, dce, dce_mae, dce_transform, finetune,  # noqa: F401
                             mae, moco, pirl, rotation, scc, segment, simclr, supcon, swav)

__all__ = ["LocalSession", "Method", "MethodOptions", "Session", "get_method", "get_session",
           "list_methods", "load_config", "method_options", "parse_experiment",
           "register_method", "use_session"]
