"""Searchers, schedulers and stoppers by name: the one registry of ``search.algorithm``.

``SEARCHERS`` maps ``search.algorithm`` to a factory ``(SearchConfig, param_space, *,
tracking_uri, target) -> (search_alg | None, param_space)``; the keyword context is what a
factory may need beyond the YAML (the sweep's tracking store, the experiment's ``data.flag``).
Adding a searcher is one entry here plus its name in ``search_config.ALGORITHMS`` /
``SearchConfig.algorithm``.

Two registries, one construction per searcher: ``tune/searchers.py: SEARCHERS`` builds the
searchers of ``medxfer benchmark replay`` over finite spaces (``{param: [values]}``). The sweep
factories of ``hyperopt`` / ``grid`` / ``random`` stay here because a sweep's spaces are
continuous and take ``points_to_evaluate`` (the replay's ``random`` is a choice over logged
values, a different thing). ``warmstart`` exists only over finite spaces, so its sweep factory
loads the prior and delegates construction to the replay registry
(:func:`medxfer.tune.searchers.build_searcher`): sweeps and replays run the same object.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable

from ray.tune.stopper import Stopper

from medxfer.tune.search_config import SearchConfig

SearcherFactory = Callable[..., tuple[Any, dict]]


def _hyperopt(search: SearchConfig, space: dict, **_context) -> tuple[Any, dict]:
    from ray.tune.search.hyperopt import HyperOptSearch

    # metric/mode come from TuneConfig (Tune refuses them in both places).
    alg = HyperOptSearch(points_to_evaluate=[dict(p) for p in search.points_to_evaluate] or None,
                         random_state_seed=search.seed)
    # HyperOptSearch converts the Tune domains of param_space itself (set_search_properties).
    return alg, space


def _basic(search: SearchConfig, space: dict, **_context) -> tuple[Any, dict]:
    from ray.tune.search.basic_variant import BasicVariantGenerator

    # Tune ignores max_concurrent_trials with this searcher; it takes its own max_concurrent.
    alg = BasicVariantGenerator(
        points_to_evaluate=[dict(p) for p in search.points_to_evaluate] or None,
        random_state=search.seed, max_concurrent=search.max_concurrent)
    return alg, space


def warmstart_prior(search: SearchConfig, *, tracking_uri: str | None = None,
                    target: str | None = None):
    """The leave-target-out prior of ``search`` (``algorithm: warmstart``) in config keys.

    ``search.warmstart.target`` (else ``target``, the experiment's ``data.flag``) is left out;
    ``search.warmstart.tracking_uri`` (else ``tracking_uri``, the sweep's store) holds
    ``search.warmstart.benchmark``. Ranked by ``search.metric`` / ``search.mode``, which the
    benchmark must log (the searcher compares those ranks with the sweep's own results).
    Errors name ``search.warmstart.*``.
    """
    from medxfer.errors import MedxferInputError
    from medxfer.tune.search_config import WarmStartConfig
    from medxfer.tune.searchers import ConfigKeyPrior, WarmStartPrior

    ws = search.warmstart or WarmStartConfig()
    target = ws.target or target
    if not target:
        raise MedxferInputError("search.warmstart.target: no target to leave out of the prior "
                                "(set it, or data.flag)")
    mapping = search.warmstart_params()
    try:
        prior = WarmStartPrior.from_mlflow(ws.tracking_uri or tracking_uri, ws.benchmark,
                                           exclude_target=target, benchmark=ws.benchmark_kind,
                                           params=tuple(mapping), metric=search.metric,
                                           mode=search.mode)
    except MedxferInputError as exc:
        raise MedxferInputError(f"search.warmstart.benchmark: {exc}") from None
    if not prior.tasks:
        raise MedxferInputError(
            f"search.warmstart.benchmark: {ws.benchmark or 'the benchmark'} has no logged "
            f"{search.metric} for any target but {target!r} (params "
            f"{', '.join(mapping)}); nothing to warm-start from")
    return ConfigKeyPrior(prior, mapping)


def _warmstart(search: SearchConfig, space: dict, *, tracking_uri: str | None = None,
               target: str | None = None, **_context) -> tuple[Any, dict]:
    """WarmStartSearcher over the finite ``search.space`` (every configuration at most once),
    built by the replay registry (``searchers.build_searcher``) with a :class:`ConfigKeyPrior`
    so its proposals are config-keyed like every other sweep searcher's."""
    import itertools

    import numpy as np

    from medxfer.errors import MedxferInputError
    from medxfer.tune.searchers import build_searcher

    prior = warmstart_prior(search, tracking_uri=tracking_uri, target=target)
    values = {key: list(leaf.values) for key, leaf in search.space.items()}
    names = list(values)
    candidates = [dict(zip(names, combo)) for combo in itertools.product(*values.values())]
    if np.isnan(prior.matrix(candidates)).all():
        logged = {p: sorted({str(k[i]) for k in prior.prior.keys})
                  for i, p in enumerate(prior.prior.params)}
        raise MedxferInputError(
            "search.warmstart: the prior knows none of the space's configurations (values "
            "logged in the benchmark: " + "; ".join(f"{p} -> {prior.keys[p]}: {', '.join(v)}"
                                                    for p, v in logged.items()) + ")")
    setup = build_searcher("warmstart", values, metric=search.metric, mode=search.mode,
                           seed=search.seed, budget=search.num_samples, prior=prior,
                           candidates=candidates)
    return setup.search_alg, setup.param_space


SEARCHERS: dict[str, SearcherFactory] = {
    "hyperopt": _hyperopt,
    "grid": _basic,      # grid leaves are tune.grid_search: BasicVariantGenerator enumerates
    "random": _basic,    # random sampling of the domains, grid leaves crossed in
    "warmstart": _warmstart,  # tune/searchers.py's, with a leave-target-out prior from MLflow
}


def make_searcher(search: SearchConfig, space: dict, *, tracking_uri: str | None = None,
                  target: str | None = None) -> tuple[Any, dict]:
    """``(search_alg, param_space)`` for ``search.algorithm``. ``tracking_uri``: the sweep's
    store; ``target``: the experiment's ``data.flag`` (used by ``warmstart``)."""
    try:
        factory = SEARCHERS[search.algorithm]
    except KeyError:
        raise ValueError(f"search.algorithm {search.algorithm!r}: expected one of "
                         f"{', '.join(SEARCHERS)}") from None
    return factory(search, space, tracking_uri=tracking_uri, target=target)


def make_scheduler(search: SearchConfig):
    """ASHA (``scheduler: {type: asha}``) or FIFO; None = Tune's default FIFO."""
    if search.scheduler is None or search.scheduler.type == "fifo":
        return None
    from ray.tune.schedulers import ASHAScheduler

    s = search.scheduler
    return ASHAScheduler(max_t=s.max_t,
                         grace_period=s.grace_period, reduction_factor=s.reduction_factor)


class PatienceStopper(Stopper):
    """Stop a trial when ``metric`` has not improved for ``patience`` results (thesis 6.4.2:
    early stopping after 50 epochs without a better validation AUC). Runs in the driver."""

    def __init__(self, metric: str, mode: str, patience: int):
        self.metric, self.mode, self.patience = metric, mode, patience
        self._best: dict[str, float] = {}
        self._since: dict[str, int] = defaultdict(int)

    def __call__(self, trial_id: str, result: dict) -> bool:
        value = result.get(self.metric)
        if value is None:
            return False
        best = self._best.get(trial_id)
        better = best is None or (value < best if self.mode == "min" else value > best)
        if better:
            self._best[trial_id] = value
            self._since[trial_id] = 0
        else:
            self._since[trial_id] += 1
        return self._since[trial_id] >= self.patience

    def stop_all(self) -> bool:
        return False


def make_stopper(search: SearchConfig):
    if search.early_stopping is None:
        return None
    e = search.early_stopping
    return PatienceStopper(e.metric, e.mode, e.patience)
