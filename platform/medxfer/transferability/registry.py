"""The one registry of transferability metrics: name -> function + metadata.

Adding a metric is one module plus one ``_register`` line here plus its tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from medxfer.registry import Registry

from .fu import fu
from .gbc import gbc
from .leep import leep
from .logme import logme
from .lp import lp
from .ncti import ncti
from .nleep import nleep
from .parc import parc
from .sfda import sfda

INF = math.inf


@dataclass(frozen=True)
class MetricInfo:
    """What a metric needs and returns.

    Attributes:
        name: Registry name (the raw flag used in MLflow tags and tables).
        fn: The metric function.
        needs: Inputs beyond the labels: any of "features", "logits", "model".
        range: (low, high) of the returned score; for ``ncti`` see ``term_ranges``.
        deterministic: Same inputs give the same score (given the fixed seeds of the spec).
        higher_is_better: Direction (True for every metric; spec "Direction").
        returns: "float" or "ncti_terms" (a NamedTuple of three floats).
        term_ranges: For metrics returning several terms, the range of each.
        reference: Spec section and paper.
    """

    name: str
    fn: Callable
    needs: frozenset
    range: tuple[float, float] | None
    deterministic: bool
    higher_is_better: bool = True
    returns: str = "float"
    term_ranges: dict = field(default_factory=dict)
    reference: str = ""


_REGISTRY: Registry[MetricInfo] = Registry("transferability metric")


def _register(info: MetricInfo) -> None:
    _REGISTRY.add(info.name, info)


_F, _L, _M = "features", "logits", "model"
_register(MetricInfo("logme", logme, frozenset({_F}), (-INF, INF), True,
                     reference="spec LogME; You et al. ICML 2021 / arXiv 2110.10545"))
_register(MetricInfo("leep", leep, frozenset({_L}), (-INF, 0.0), True,
                     reference="spec LEEP; Nguyen et al. ICML 2020"))
_register(MetricInfo("nleep", nleep, frozenset({_F}), (0.0, 1.0), False,
                     reference="spec NLEEP; Li et al. CVPR 2021"))
_register(MetricInfo("parc", parc, frozenset({_F}), (-100.0, 100.0), True,
                     reference="spec PARC; Bolya et al. NeurIPS 2021"))
_register(MetricInfo("sfda", sfda, frozenset({_F}), (0.0, 1.0), True,
                     reference="spec SFDA; Shao et al. ECCV 2022"))
_register(MetricInfo("ncti", ncti, frozenset({_F}), None, True, returns="ncti_terms",
                     term_ranges={"seli": (0.0, INF), "ncc": (0.0, 1.0), "vc": (-INF, INF)},
                     reference="spec NCTI; Wang et al. ICCV 2023"))
_register(MetricInfo("gbc", gbc, frozenset({_F}), (-INF, 0.0), True,
                     reference="spec GBC; Pandy et al. CVPR 2022 (thesis ref. [129])"))
_register(MetricInfo("lp", lp, frozenset({_F}), (0.0, 1.0), True,
                     reference="spec LP; thesis (seed 004) eq. 6.2"))
_register(MetricInfo("fu", fu, frozenset({_M}), (0.0, INF), True,
                     reference="spec FU; thesis (seed 004) eq. 6.3-6.4"))


def list_metrics() -> list[str]:
    """Registry names, sorted (tables use the thesis' order: ``evaluation.METRIC_ORDER``)."""
    return _REGISTRY.names()


def metric_info(name: str) -> MetricInfo:
    """The metadata record of ``name``; ValueError listing the valid names if unknown."""
    return _REGISTRY.record(name)


def get_metric(name: str) -> Callable:
    """The function registered as ``name``; ValueError listing the valid names if unknown."""
    return metric_info(name).fn
