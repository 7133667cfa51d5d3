"""Transferability estimation: metrics registered by name, feature/gradient extraction,
combinations across sources, and evaluation against logged ground truth.

Exact definitions, defaults and departures: ``shared/specs/transferability-metrics.md``;
thesis (seed 004) chapter 6.

    >>> from medxfer.transferability import get_metric, list_metrics, combine
    >>> score = get_metric("logme")(features, labels)
"""

from .combine import combine, list_combinations
from .ncti import NCTITerms, ncti_combine
from .registry import MetricInfo, get_metric, list_metrics, metric_info

__all__ = ["MetricInfo", "NCTITerms", "combine", "get_metric", "list_combinations",
           "list_metrics", "metric_info", "ncti_combine"]
