"""Transferability estimation: metrics registered by name, feature/gradient extraction,
combinations across sources, and evaluation against logged ground truth.

Exact definitions, defaults and departures: ``shared/specs/transferability-metrics.md``;
thesis (seed 004) chapter 6.

    >>> from medxfer.transferability import get_metric, list_metrics, combine
    >>> score = get_metric("logme")(features, labels)

Names are imported lazily (the registry pulls in torch for FU) so that ``medxfer --help`` and
the CLI's other verbs stay fast.
"""

from __future__ import annotations

from medxfer._lazy import lazy_exports

_EXPORTS = {
    "combine": ("combine", "list_combinations"),
    "ncti": ("NCTITerms", "ncti_combine"),
    "registry": ("MetricInfo", "get_metric", "list_metrics", "metric_info"),
}
__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
