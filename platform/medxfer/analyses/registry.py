"""The one registry of analyses: name -> runner + metadata (``medxfer analyze <name>``).

Adding an analysis is one module plus one ``_register`` line here, its CLI verb and its tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from medxfer.registry import Registry

from .domain_gap import run_domain_gap
from .saliency import run_saliency
from .similarity import run_similarity
from .spectrum import run_spectrum


@dataclass(frozen=True)
class AnalysisInfo:
    """What an analysis needs and produces.

    Attributes:
        name: Registry name (the CLI verb, ``medxfer.analysis`` tag).
        fn: The runner; returns an :class:`~medxfer.analyses.record.AnalysisResult` and writes
            its files into the folder it is given.
        models: How many models it reads: 0, 1 or 2 (``"0-1"``: optional).
        files: The files it writes.
        reference: Seed section.
    """

    name: str
    fn: Callable
    models: str
    files: tuple[str, ...]
    reference: str


_REGISTRY: Registry[AnalysisInfo] = Registry("analysis")


def _register(info: AnalysisInfo) -> None:
    _REGISTRY.add(info.name, info)


_register(AnalysisInfo("saliency", run_saliency, "1",
                       ("hit_rate.csv", "saliency_hits.csv", "saliency_maps.npz",
                        "saliency_grid.png"),
                       "seed 000 sec. 4 Fig. 5 (hit rate, Saporta et al. 2022)"))
_register(AnalysisInfo("domain-gap", run_domain_gap, "0",
                       ("domain_features.csv", "mmd.csv", "mds.csv", "domain_gap_mds.png",
                        "mmd_matrix.png"),
                       "seed 000 App. A.2, Fig. 1(c)"))
_register(AnalysisInfo("similarity", run_similarity, "2",
                       ("cca.csv", "cca_layers.png", "prediction_similarity.csv"),
                       "seed 004 ch. 3 eq. 3.1-3.2"))
_register(AnalysisInfo("spectrum", run_spectrum, "0-1", ("psd.csv", "psd.png"),
                       "seed 004 ch. 5 eq. 5.1"))


def list_analyses() -> list[str]:
    """Registry names, sorted."""
    return _REGISTRY.names()


def analysis_info(name: str) -> AnalysisInfo:
    """The record of ``name``; ValueError listing the valid names if unknown."""
    return _REGISTRY.record(name)
