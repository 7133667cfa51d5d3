"""The analyses registry: every entry complete, one CLI verb each, errors list valid names."""

from __future__ import annotations

import pytest
import typer

from medxfer.analyses import registry
from medxfer.cli.analyze import analyze_app
from medxfer.analyses.registry import AnalysisInfo, analysis_info, list_analyses


def test_every_analysis_is_complete_and_has_a_verb():
    verbs = set(typer.main.get_command(analyze_app).commands)
    assert list_analyses() == sorted(list_analyses()) == ["domain-gap", "saliency", "similarity",
                                                         "spectrum"]
    for name in list_analyses():
        info = analysis_info(name)
        assert info.name == name and callable(info.fn) and info.files
        assert info.models in ("0", "1", "2", "0-1") and info.reference.startswith("seed 00")
        assert name in verbs
    assert verbs == set(list_analyses())


def test_duplicates_raise_and_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="already registered"):
        registry._register(AnalysisInfo("spectrum", print, "0", ("x",), "seed 004"))
    with pytest.raises(ValueError, match="unknown analysis 'nope'; valid: domain-gap, "
                                         "saliency, similarity, spectrum"):
        analysis_info("nope")
