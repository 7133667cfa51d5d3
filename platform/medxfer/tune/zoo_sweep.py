"""A sweep over a zoo of source models (``search.sources``), the half that lives in ``tune``.

With ``search.sources`` a sweep does not fix its source model: it scores every entry of a zoo
on the target, then spends ``num_samples`` trainings across (source, configuration) pairs with
the ``joint`` searcher (:class:`~medxfer.tune.joint.JointSearcher`). :func:`medxfer.tune.sweep.
run_sweep` runs it in three steps:

1. before anything is recorded, :func:`prepare` checks the zoo (given as :class:`ZooSources`)
   and loads the warm-start prior of ``search.warmstart`` if there is one (leave-target-out);
2. once Ray is up, :meth:`ZooPlan.searcher` scores the zoo through ``ZooSources.score`` (each
   source a Ray task; the scores logged as estimate runs in ``transferability/<sweep>``), then
   builds the joint searcher: its source dimension is the zoo's entries, its belief the
   scores, its configuration prior the warm-start prior (or none);
3. every trial the searcher proposes carries its entry's config overrides (weights, backbone,
   arch, channels, ``data.source``), so its child run is tagged with its source like any
   sweep's and ``benchmark ground-truth --name <sweep>`` has one row per trained source.

Scoring needs the metrics and the zoo reader, which sit above this layer; the layer that has
them builds the :class:`ZooSources` (:func:`medxfer.transferability.zoo_sweep.zoo_sources`)
and hands it to ``run_sweep``. The searcher is medxfer's own (module docstring of
:mod:`medxfer.tune.joint`); the problem it answers is that of the thesis, seed
``004_43f54b618356cecf.txt`` sec. 6.3.1 (which source model to fine-tune for a new target).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from medxfer.errors import MedxferInputError

if TYPE_CHECKING:
    from medxfer.tune.search_config import SearchConfig
    from medxfer.tune.searchers import SearchSetup

#: ``ZooSources.key`` values: a source is named by its ``data.source`` (dataset benchmark rows)
#: or, for a zoo of one source in several architectures, by its ``model.arch``.
KEYS = {"data.source": "dataset", "model.arch": "architecture"}


@dataclass(frozen=True)
class ZooSources:
    """A sweep's zoo as this layer sees it.

    Attributes:
        key: the config key naming a source in a trial (:data:`KEYS`).
        overrides: per source (the value of ``key``), the dotted config keys its trials set
            (``key`` itself included), e.g. ``{"synthderm": {"data.source": "synthderm",
            "model.weights": "/abs/synthderm.pt", ...}}``; in zoo order.
        score: ``score(sweep, tracking_uri) -> {source: score}`` (higher is better): scores
            every source on the sweep's target, logging the estimate runs in
            ``transferability/<sweep>``; Ray must be up.
        describe: params for the sweep's parent run (``search.sources.*``).
    """

    key: str
    overrides: Mapping[str, Mapping[str, Any]]
    score: Callable[[str, str], dict[str, float]]
    describe: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.key not in KEYS:
            raise ValueError(f"key {self.key!r}: expected one of {', '.join(KEYS)}")
        if len(self.overrides) < 1:
            raise MedxferInputError("search.sources.zoo: the zoo has no source")

    @property
    def names(self) -> list[str]:
        return list(self.overrides)

    @property
    def benchmark(self) -> str:
        """The benchmark table whose rows the sources are (``dataset`` or ``architecture``)."""
        return KEYS[self.key]


@dataclass
class ZooPlan:
    """What :func:`prepare` checked; :meth:`searcher` scores the zoo and builds the search."""

    search: SearchConfig
    sources: ZooSources
    target: str | None
    prior: Any = None                       # ConfigKeyPrior of search.warmstart, or None
    scores: dict[str, float] = field(default_factory=dict)

    def searcher(self, sweep: str, tracking_uri: str, *,
                 parent_run_id: str | None = None) -> SearchSetup:
        """Score the zoo (Ray tasks; estimate runs in ``transferability/<sweep>``), then the
        joint searcher over (source, configuration). ``parent_run_id``: the sweep's parent run,
        which gets the ``search.sources.*`` params and the scores (``source_scores.json``)."""
        self.scores = {k: float(v) for k, v in self.sources.score(sweep, tracking_uri).items()}
        if parent_run_id is not None:
            _log_parent(tracking_uri, parent_run_id, self)
        return joint_setup(self.search, self.sources, self.scores, prior=self.prior,
                           target=self.target)


def prepare(search: SearchConfig, sources: ZooSources | None, *, tracking_uri: str,
            target: str | None) -> ZooPlan:
    """Check a zoo sweep before anything is recorded; load its warm-start prior, if any.

    Raises:
        MedxferInputError: no ``sources`` (a caller that cannot score a zoo), a searched key
            that names the source, or a warm-start prior that cannot be built (naming
            ``search.warmstart.*``).
    """
    from medxfer.tune.space import to_param_space
    from medxfer.tune.warmstart import load_prior

    if sources is None:
        raise MedxferInputError("search.sources: this caller cannot score a zoo (run the sweep "
                                "with `medxfer sweep`, which does)")
    if sources.key in search.space:
        raise MedxferInputError(f"search.space.{sources.key}: names the source; set per trial "
                                "from search.sources.zoo")
    prior = None
    if search.warmstart is not None:
        prior = load_prior(search, to_param_space(search), tracking_uri=tracking_uri,
                           target=target)
    return ZooPlan(search, sources, target, prior)


def joint_setup(search: SearchConfig, sources: ZooSources, scores: Mapping[str, float], *,
                prior=None, target: str | None = None) -> SearchSetup:
    """The joint searcher over the zoo's sources x ``search.space``.

    Args:
        search: the validated ``search:`` section (``sources`` set).
        sources: the zoo (:class:`ZooSources`).
        scores: source -> transferability score on the target (higher is better).
        prior: the leave-target-out configuration prior (a ``ConfigKeyPrior``), or None.
        target: the sweep's target (what ``prior`` must have left out).

    Returns:
        ``param_space`` = ``{sources.key: choice(sources), **search.space}``; ``num_samples``
        at most the number of (source, configuration) pairs.
    """
    from ray import tune

    from medxfer.tune.joint import JointSearcher
    from medxfer.tune.joint_prior import JointPrior
    from medxfer.tune.searchers import SearchSetup
    from medxfer.tune.space import space_size, to_param_space

    belief = JointPrior(target, scores=dict(scores), configs=prior)
    space = {sources.key: tune.choice(sources.names), **to_param_space(search)}
    alg = JointSearcher(metric=search.metric, mode=search.mode, prior=belief,
                        source_key=sources.key, source_overrides=sources.overrides,
                        explore=search.sources.explore, seed=search.seed)
    pairs = len(sources.names) * space_size(search)
    return SearchSetup(alg, space, min(search.num_samples, pairs))


def _log_parent(tracking_uri: str, run_id: str, plan: ZooPlan) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Param

    s = plan.search.sources
    params = {"search.sources.zoo": s.zoo, "search.sources.metric": ",".join(s.metric),
              "search.sources.invert": ",".join(s.invert) or "none",
              "search.sources.key": plan.sources.key,
              "search.sources.n": str(len(plan.sources.names)), **plan.sources.describe}
    client = MlflowClient(tracking_uri)
    client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
    client.log_text(run_id, json.dumps({"key": plan.sources.key, "scores": plan.scores},
                                       indent=1, sort_keys=True), "source_scores.json")
