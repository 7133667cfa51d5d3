"""A sweep's searcher, scheduler and stopper, from its validated ``search:`` section.

The searcher comes from the registry (:mod:`medxfer.tune.searchers`); for a searcher that uses a
prior, :func:`medxfer.tune.warmstart.load_prior` builds it from ``search.warmstart`` first.
"""

from __future__ import annotations

from collections import defaultdict

from ray.tune.stopper import Stopper

from medxfer.tune.search_config import SearchConfig
from medxfer.tune.searchers import SearchRequest, SearchSetup, build_searcher


def make_searcher(search: SearchConfig, *, tracking_uri: str | None = None,
                  target: str | None = None, row: str | None = None) -> SearchSetup:
    """The registered searcher ``search.algorithm`` over ``search.space``.

    Args:
        search: the validated ``search:`` section.
        tracking_uri: the sweep's store (where a prior's benchmark is by default).
        target: the experiment's ``data.flag`` (what a prior leaves out by default).
        row: the benchmark row the sweep's trials are (its source, or its arch for an
            architecture prior): the prior's tasks of that row weigh more.

    Raises:
        MedxferInputError: naming ``search.*`` (e.g. a prior's benchmark missing in the store).
    """
    from medxfer.tune.space import to_param_space
    from medxfer.tune.warmstart import load_prior

    prior = None
    if search.searcher.uses_prior:
        prior = load_prior(search, to_param_space(search), tracking_uri=tracking_uri,
                           target=target)
    request = SearchRequest(metric=search.metric, mode=search.mode, seed=search.seed,
                            num_samples=search.num_samples,
                            points_to_evaluate=tuple(dict(p) for p in search.points_to_evaluate),
                            max_concurrent=search.max_concurrent, prior=prior, row=row)
    return build_searcher(search.algorithm, search.space, request)


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
    """The :class:`PatienceStopper` of ``search.early_stopping``, or None."""
    if search.early_stopping is None:
        return None
    e = search.early_stopping
    return PatienceStopper(e.metric, e.mode, e.patience)
