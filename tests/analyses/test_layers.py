"""Layer rules for the analyses code: the math and data parts import no Ray, MLflow or
anything above them (DESIGN.md "Principles")."""

from __future__ import annotations

import ast
from pathlib import Path

import medxfer

PKG = Path(medxfer.__file__).parent
LOW = ["evaluation/cca.py", "evaluation/prediction_similarity.py", "evaluation/spectrum.py",
       "evaluation/domain_gap.py", "evaluation/hit_rate.py", "data/confounders.py",
       "data/shortcut_sets.py", "data/boxes.py", "data/synth.py"]
ABOVE = ("ray", "mlflow", "medxfer.methods", "medxfer.tracking", "medxfer.train",
         "medxfer.tune", "medxfer.transferability", "medxfer.analyses", "medxfer.reports",
         "medxfer.cli")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_math_and_data_modules_stay_in_their_layer():
    offenders = [f"{rel}: {n}" for rel in LOW for n in _imports(PKG / rel)
                 if any(n == a or n.startswith(a + ".") for a in ABOVE)]
    assert not offenders


def test_analyses_do_not_import_reports_or_cli_modules():
    offenders = [f"{p.name}: {n}" for p in sorted((PKG / "analyses").glob("*.py"))
                 if p.name != "cli.py" for n in _imports(p)
                 if n.startswith(("medxfer.reports", "medxfer.cli", "medxfer.demo"))
                 and n != "medxfer.cli.common"]
    assert not offenders
