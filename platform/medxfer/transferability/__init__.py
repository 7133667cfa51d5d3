"""Transferability estimation: metrics registered by name, feature/gradient extraction.

Exact definitions, defaults and departures: ``shared/specs/transferability-metrics.md``;
thesis (seed 004) chapter 6.

    >>> from medxfer.transferability import get_metric, list_metrics
    >>> score = get_metric("logme")(features, labels)
"""

from .ncti import NCTITerms, ncti_combine
from .registry import MetricInfo, get_metric, list_metrics, metric_info

# `combine` (sources x targets score tables, lp_fu) lives in medxfer.transferability.combine,
# written separately; it is re-exported here at merge:
#     from .combine import combine

__all__ = ["MetricInfo", "NCTITerms", "get_metric", "list_metrics", "metric_info",
           "ncti_combine"]
