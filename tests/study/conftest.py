"""Data for the study tests (tests/study_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from study_helpers import write_study_data


@pytest.fixture(scope="session")
def study_data(tmp_path_factory) -> Path:
    """A folder holding data/synth as the example study expects it."""
    base = tmp_path_factory.mktemp("study")
    write_study_data(base / "data" / "synth")
    return base
