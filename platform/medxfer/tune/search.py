"""Searchers, schedulers and stoppers by name: the one registry of search algorithms.

``SEARCHERS`` maps ``search.algorithm`` to a factory ``(SearchConfig, param_space) ->
(search_alg | None, param_space)``. Adding a searcher (e.g. ``warmstart`` from
``tune/searchers.py``) is one entry here plus its name in ``search_config.ALGORITHMS`` /
``SearchConfig.algorithm``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable

from ray.tune.stopper import Stopper

from medxfer.tune.search_config import SearchConfig

SearcherFactory = Callable[[SearchConfig, dict], tuple[Any, dict]]


def _hyperopt(search: SearchConfig, space: dict) -> tuple[Any, dict]:
    from ray.tune.search.hyperopt import HyperOptSearch

    # metric/mode come from TuneConfig (Tune refuses them in both places).
    alg = HyperOptSearch(points_to_evaluate=[dict(p) for p in search.points_to_evaluate] or None,
                         random_state_seed=search.seed)
    # HyperOptSearch converts the Tune domains of param_space itself (set_search_properties).
    return alg, space


def _basic(search: SearchConfig, space: dict) -> tuple[Any, dict]:
    from ray.tune.search.basic_variant import BasicVariantGenerator

    alg = BasicVariantGenerator(
        points_to_evaluate=[dict(p) for p in search.points_to_evaluate] or None,
        random_state=search.seed)
    return alg, space


SEARCHERS: dict[str, SearcherFactory] = {
    "hyperopt": _hyperopt,
    "grid": _basic,      # grid leaves are tune.grid_search: BasicVariantGenerator enumerates
    "random": _basic,    # random sampling of the domains, grid leaves crossed in
}


def make_searcher(search: SearchConfig, space: dict) -> tuple[Any, dict]:
    try:
        factory = SEARCHERS[search.algorithm]
    except KeyError:
        raise ValueError(f"search.algorithm {search.algorithm!r}: expected one of "
                         f"{', '.join(SEARCHERS)}") from None
    return factory(search, space)


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
