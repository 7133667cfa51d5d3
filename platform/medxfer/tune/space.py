"""YAML search space -> Ray Tune search space objects.

The Tune ``param_space`` is flat: its keys are the dotted config paths of ``search.space``
(``{"train.lr": tune.loguniform(1e-6, 1e-3)}``), so every searcher sees exactly the sampled
hyperparameters and a trial's config is the sampled config. The trainable wrapper
(:func:`medxfer.tune.trainables.merge_sampled`) writes them into the experiment config. How a
leaf becomes a Tune domain depends on the searcher (:mod:`medxfer.tune.searchers`).
"""

from __future__ import annotations

import math
from typing import Any

from medxfer.tune import searchers
from medxfer.tune.search_config import SearchConfig


def to_param_space(search: SearchConfig) -> dict[str, Any]:
    """The flat Tune ``param_space`` for ``search.algorithm``."""
    return searchers.param_space(search.space, search.searcher)


def space_size(search: SearchConfig) -> int:
    """Configurations of a finite space (product of the leaves' value counts)."""
    return math.prod(len(leaf.values) for leaf in search.space.values())


def expected_trials(search: SearchConfig) -> int:
    """How many trials a sweep runs (``num_samples`` as the searcher counts it; with
    ``search.sources`` at most ``num_samples``: the zoo's size is not known here)."""
    if search.sources is not None:
        return search.num_samples
    return searchers.expected_trials(search.space, search.searcher, search.num_samples)
