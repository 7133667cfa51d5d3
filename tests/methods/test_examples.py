"""The shipped example configs: every registered method has one, and each validates as an
experiment of its method (its ``method_config`` against the method's schema)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from medxfer.methods import list_methods
from medxfer.methods.experiment import method_options, parse_experiment

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (REPO / "examples").glob("*.yaml")
                  if p.name.startswith(("train_", "recipe_")))


def test_every_method_has_an_example_and_a_search_space():
    shipped = {yaml.safe_load(p.read_text())["method"] for p in EXAMPLES}
    assert set(list_methods()) <= shipped
    for name in list_methods():
        assert (REPO / "search_spaces" / f"{name}.yaml").is_file(), name


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_validates_and_cites_a_seed(path, tmp_path):
    text = path.read_text()
    raw = yaml.safe_load(text)
    if raw["method"] != "finetune" or "xrv" in path.name:  # a paper's method or source model
        assert "seed" in text.split("method:")[0].lower()  # the header comment cites its seed
    raw["data"]["root"] = str(tmp_path)
    cfg = parse_experiment(raw, source=str(path))
    method_options(cfg)  # the method's own options validate
    assert cfg.method == raw["method"]
