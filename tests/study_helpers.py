"""Helpers of the study tests: the shipped example study and the data it expects."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "search_spaces" / "study_example.yaml"


def write_study_data(root: Path) -> Path:
    """synthpneumonia and its hospitals h1, h2 (16 images per class and split) under ``root``."""
    from medxfer.data.synth import synthesize
    from medxfer.data.synth_studies import synthesize_hospitals

    synthesize(root, n_per_class=16, modalities=["synthpneumonia"])
    synthesize_hospitals(root, "synthpneumonia", hospitals=2, shift=0.5, n_per_class=16)
    return root
