"""The one registry of searchers: ``search.algorithm`` of a sweep, ``--searcher`` of a replay.

Every entry builds what a sweep hands to Ray Tune, ``Tuner(trainable, param_space=...,
tune_config=TuneConfig(search_alg=..., num_samples=...))``, from a search space of leaves
(``loguniform`` / ``uniform`` / ``choice`` / ``grid``, :class:`~medxfer.tune.search_config.Leaf`).
``medxfer sweep`` passes the YAML's ``search.space``; ``medxfer benchmark replay``
(:mod:`medxfer.tune.replay`) passes the logged grid of a (source, target) pair as ``choice``
leaves and drives the very same objects in-process.

How a searcher sees the space is part of its record (:attr:`SearcherInfo.tune_space`):

* ``"domains"``: each leaf as its Tune domain (continuous ranges allowed; ``grid`` leaves are
  ``tune.grid_search``, crossed with ``num_samples`` samples): ``random``, ``hyperopt``;
* ``"grid"``: every leaf as ``tune.grid_search``; ``num_samples`` counts passes over the grid:
  ``grid``;
* ``"choices"``: every leaf as ``tune.choice``; the searcher enumerates the finite space itself
  and proposes each configuration at most once: ``shuffled``, ``prior``, ``warmstart``.

Adding a searcher is one module with a factory ``build(space, request) -> SearchSetup`` plus one
``_register`` line here plus its tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from medxfer.errors import MedxferInputError
from medxfer.registry import Registry
from medxfer.tune import joint, warmstart

TuneSpace = Literal["domains", "grid", "choices"]
_CONTINUOUS = ("loguniform", "uniform")


@dataclass(frozen=True)
class SearchRequest:
    """What a factory may use beyond the space.

    Attributes:
        metric: the result key the searcher optimises (a replay: ``val_loss``).
        mode: ``min`` or ``max``.
        seed: random seed (None: Ray's default randomness).
        num_samples: Tune's ``num_samples``: trials to sample; for ``tune_space="grid"``
            passes over the grid; for ``"choices"`` capped at the space's size.
        points_to_evaluate: configurations tried first (searchers with
            :attr:`SearcherInfo.points_to_evaluate`).
        max_concurrent: the ``BasicVariantGenerator``'s own limit (0: none; Tune ignores
            ``max_concurrent_trials`` with that searcher).
        prior: a :class:`~medxfer.tune.warmstart.WarmStartPrior` (or its
            :class:`~medxfer.tune.warmstart.ConfigKeyPrior`) for searchers that use one,
            computed leave-target-out by the caller.
        row: the benchmark row searched (the source model; the arch on the architecture
            benchmark): the prior's logged tasks of that row weigh more (``warmstart``).
    """

    metric: str = "val_loss"
    mode: str = "min"
    seed: int | None = None
    num_samples: int = 1
    points_to_evaluate: tuple[dict, ...] = ()
    max_concurrent: int = 0
    prior: Any = None
    row: str | None = None


@dataclass
class SearchSetup:
    """``Tuner(param_space=..., TuneConfig(search_alg=..., num_samples=...))``; ``search_alg``
    is a ``Searcher`` or a ``BasicVariantGenerator``."""

    search_alg: Any
    param_space: dict
    num_samples: int


Factory = Callable[[dict, SearchRequest], SearchSetup]


@dataclass(frozen=True)
class SearcherInfo:
    """One searcher.

    Attributes:
        name: registry name (``search.algorithm``, ``--searcher``).
        build: ``build(param_space, request) -> SearchSetup``; ``param_space`` is the space as
            ``tune_space`` says.
        tune_space: how the searcher sees the leaves (module docstring).
        uses_prior: needs ``request.prior`` (the sweep's ``search.warmstart`` section).
        description: one line for listings and ``--help``.
        points_to_evaluate: takes ``search.points_to_evaluate``.
        grid_leaves: can search ``grid`` leaves (HyperOpt cannot).
        reference: where the search comes from (seed file and section, paper).
    """

    name: str
    build: Factory
    tune_space: TuneSpace
    uses_prior: bool
    description: str
    points_to_evaluate: bool = False
    grid_leaves: bool = True
    reference: str = ""

    @property
    def needs_finite_space(self) -> bool:
        """Only ``grid`` and ``choice`` leaves: the searcher enumerates the space."""
        return self.tune_space != "domains"


# --------------------------------------------------------------------------- Ray's searchers


def _grid(space: dict, request: SearchRequest) -> SearchSetup:
    from ray.tune.search import BasicVariantGenerator

    alg = BasicVariantGenerator(random_state=request.seed, max_concurrent=request.max_concurrent)
    return SearchSetup(alg, space, request.num_samples)


def _random(space: dict, request: SearchRequest) -> SearchSetup:
    """Samples with replacement, as a real random search does: a repeat costs a trial."""
    from ray.tune.search import BasicVariantGenerator

    alg = BasicVariantGenerator(points_to_evaluate=[dict(p) for p in request.points_to_evaluate]
                                or None, random_state=request.seed,
                                max_concurrent=request.max_concurrent)
    return SearchSetup(alg, space, request.num_samples)


def _shuffled(space: dict, request: SearchRequest) -> SearchSetup:
    """Random search without replacement: the whole space in a seeded random order, given to
    ``BasicVariantGenerator`` as ``points_to_evaluate`` (each point is one sample)."""
    from ray.tune.search import BasicVariantGenerator

    grid = warmstart.candidates_of(space)
    order = np.random.default_rng(request.seed).permutation(len(grid))
    n = min(request.num_samples, len(grid))
    alg = BasicVariantGenerator(points_to_evaluate=[grid[i] for i in order[:n]],
                                max_concurrent=request.max_concurrent)
    return SearchSetup(alg, space, n)


def _hyperopt(space: dict, request: SearchRequest) -> SearchSetup:
    """TPE; it converts the Tune domains itself (``set_search_properties``)."""
    from ray.tune.search.hyperopt import HyperOptSearch

    alg = HyperOptSearch(metric=request.metric, mode=request.mode,
                         points_to_evaluate=[dict(p) for p in request.points_to_evaluate] or None,
                         random_state_seed=request.seed)
    return SearchSetup(alg, space, request.num_samples)


# --------------------------------------------------------------------------- the registry

SEARCHERS: Registry[SearcherInfo] = Registry("searcher")


def _register(info: SearcherInfo) -> None:
    SEARCHERS.add(info.name, info)


_register(SearcherInfo("grid", _grid, tune_space="grid", uses_prior=False,
                       description="every configuration of the grid, in Ray's order",
                       reference="the benchmark's grid search: seeds/004_43f54b618356cecf.txt "
                                 "sec. 6.4.2"))
_register(SearcherInfo("random", _random, tune_space="domains", uses_prior=False,
                       description="random sampling of the space, with replacement",
                       points_to_evaluate=True))
_register(SearcherInfo("shuffled", _shuffled, tune_space="choices", uses_prior=False,
                       description="the finite space in a seeded random order, without "
                                   "replacement"))
_register(SearcherInfo("hyperopt", _hyperopt, tune_space="domains", uses_prior=False,
                       description="HyperOpt TPE", points_to_evaluate=True, grid_leaves=False,
                       reference="SCC's search: seeds/000_3dd3de5c534b555f.txt App. B; TPE: "
                                 "Bergstra et al., NeurIPS 2011"))
_register(SearcherInfo("prior", warmstart.build_prior_order, tune_space="choices",
                       uses_prior=True,
                       description="the leave-target-out prior's order, not adaptive",
                       reference="medxfer's own (medxfer.tune.warmstart)"))
_register(SearcherInfo("warmstart", warmstart.build, tune_space="choices", uses_prior=True,
                       description="the prior's order, reweighted by the logged tasks that agree "
                                   "with the results so far, every third trial near the best "
                                   "so far; never repeats",
                       reference="medxfer's own (medxfer.tune.warmstart)"))
_register(SearcherInfo("joint", joint.build, tune_space="choices", uses_prior=True,
                       description="(source, configuration) together: sources by "
                                   "transferability belief, configurations by warm-start prior",
                       reference="medxfer's own (medxfer.tune.joint); the problem: "
                                 "seeds/004_43f54b618356cecf.txt sec. 6.3.1"))


def list_searchers() -> list[str]:
    """Registry names, sorted."""
    return SEARCHERS.names()


def searcher_info(name: str, *, field: str = "search.algorithm") -> SearcherInfo:
    """The record of ``name``.

    Raises:
        MedxferInputError: unknown ``name``; the message names ``field`` (``search.algorithm``
            in a YAML, ``--searcher`` on the command line) and lists the valid names.
    """
    try:
        return SEARCHERS.record(name)
    except ValueError as exc:
        raise MedxferInputError(f"{field}: {exc}") from None


# --------------------------------------------------------------------------- spaces


def tune_domain(kind: str, values: list, tune_space: TuneSpace) -> Any:
    """One leaf (``kind``, ``values``) as the Tune domain a ``tune_space`` searcher expects."""
    from ray import tune

    if tune_space == "choices":
        return tune.choice(list(values))
    if kind == "grid" or (kind == "choice" and tune_space == "grid"):
        return tune.grid_search(list(values))
    if kind == "loguniform":
        return tune.loguniform(*values)
    if kind == "uniform":
        return tune.uniform(*values)
    return tune.choice(list(values))


def param_space(leaves: Mapping[str, Any], info: SearcherInfo) -> dict[str, Any]:
    """The flat Tune ``param_space`` of ``leaves`` (objects with ``kind`` and ``values``)."""
    return {key: tune_domain(leaf.kind, leaf.values, info.tune_space)
            for key, leaf in leaves.items()}


def enumerated(leaves: Mapping[str, Any], info: SearcherInfo) -> list[str]:
    """Keys of the leaves Tune enumerates (``tune.grid_search``) for this searcher: every
    pass of ``num_samples`` runs their whole product."""
    if info.tune_space == "choices":
        return []
    return [k for k, leaf in leaves.items() if leaf.kind == "grid" or info.tune_space == "grid"]


def expected_trials(leaves: Mapping[str, Any], info: SearcherInfo, num_samples: int) -> int:
    """How many trials ``num_samples`` means for this searcher over ``leaves``."""
    if info.tune_space == "choices":
        return min(num_samples, math.prod(len(leaf.values) for leaf in leaves.values()))
    return num_samples * math.prod(len(leaves[k].values) for k in enumerated(leaves, info))


def check_space(leaves: Mapping[str, Any], info: SearcherInfo) -> list[tuple[str, str]]:
    """``(key, problem)`` for every leaf ``info`` cannot search (empty: all fine)."""
    problems = []
    for key, leaf in leaves.items():
        if info.needs_finite_space and leaf.kind in _CONTINUOUS:
            problems.append((f"{key}.{leaf.kind}", f"algorithm {info.name} needs grid or "
                             "choice leaves (a finite space it can enumerate)"))
        elif leaf.kind == "grid" and not info.grid_leaves:
            problems.append((f"{key}.grid", f"algorithm {info.name} cannot search a grid "
                             "leaf; use choice"))
    return problems


def build_searcher(name: str, leaves: Mapping[str, Any], request: SearchRequest, *,
                   field: str = "search.algorithm") -> SearchSetup:
    """The registered searcher ``name`` over ``leaves`` (objects with ``kind`` and ``values``,
    e.g. :class:`~medxfer.tune.search_config.Leaf`).

    Raises:
        MedxferInputError: unknown name (naming ``field``), a leaf the searcher cannot search,
            or no ``request.prior`` for a searcher that uses one.
    """
    info = searcher_info(name, field=field)
    problems = check_space(leaves, info)
    if problems:
        raise MedxferInputError("; ".join(f"space.{k}: {msg}" for k, msg in problems))
    if info.uses_prior and request.prior is None:
        raise MedxferInputError(f"{field}: searcher {name!r} needs a prior (none was given)")
    return info.build(param_space(leaves, info), request)

