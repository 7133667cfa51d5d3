"""YAML search space -> Ray Tune search space objects.

The Tune ``param_space`` is flat: its keys are the dotted config paths of ``search.space``
(``{"train.lr": tune.loguniform(1e-6, 1e-3)}``), so every searcher sees exactly the sampled
hyperparameters and a trial's config is the sampled config. The trainable wrapper
(:func:`medxfer.tune.trainables.merge_sampled`) writes them into the experiment config.
"""

from __future__ import annotations

from typing import Any

from medxfer.tune.search_config import Leaf, SearchConfig


def leaf_to_tune(leaf: Leaf, algorithm: str) -> Any:
    """One leaf as a Tune domain: grid leaves (and choice leaves of a grid search) enumerate.
    ``warmstart`` proposes every configuration itself: all its (finite) leaves are choices."""
    from ray import tune

    kind, values = leaf.kind, leaf.values
    if algorithm == "warmstart":
        return tune.choice(list(values))
    if kind == "loguniform":
        return tune.loguniform(*values)
    if kind == "uniform":
        return tune.uniform(*values)
    if kind == "grid" or (kind == "choice" and algorithm == "grid"):
        return tune.grid_search(list(values))
    return tune.choice(list(values))


def to_param_space(search: SearchConfig) -> dict[str, Any]:
    """The flat Tune ``param_space`` for ``search.algorithm``."""
    return {key: leaf_to_tune(leaf, search.algorithm) for key, leaf in search.space.items()}


def grid_size(search: SearchConfig) -> int:
    """Trials of one pass over the grid leaves Tune enumerates (1 when there are none; always
    1 for warmstart, whose searcher enumerates the space itself)."""
    n = 1
    if search.algorithm == "warmstart":
        return n
    for leaf in search.space.values():
        if leaf.kind == "grid" or (leaf.kind == "choice" and search.algorithm == "grid"):
            n *= len(leaf.values)
    return n


def space_size(search: SearchConfig) -> int:
    """Configurations of a finite space (product of the leaves' value counts)."""
    n = 1
    for leaf in search.space.values():
        n *= len(leaf.values)
    return n


def expected_trials(search: SearchConfig) -> int:
    """How many trials a sweep runs: ``num_samples`` (x the grid for grid leaves); warmstart
    never repeats a configuration, so at most the size of its space."""
    if search.algorithm == "warmstart":
        return min(search.num_samples, space_size(search))
    return search.num_samples * grid_size(search)
