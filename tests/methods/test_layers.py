"""The lower layers keep to DESIGN.md "Principles": method, loss, model and data code never
imports Ray or MLflow (they report through Session), sibling layers never import each other, and
config is the bottom layer. Function-level imports count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import medxfer

PKG = Path(medxfer.__file__).parent
BOTTOM = ("config", "errors", "batch_layout", "patch_layout", "registry")
SIBLINGS = ("data", "models", "losses", "evaluation")
ABOVE_METHODS = ("tracking", "train", "tune", "transferability", "reports", "cli", "demo")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def _files(sub: str) -> list[Path]:
    path = PKG / sub
    return sorted(path.rglob("*.py")) if path.is_dir() else [PKG / f"{sub}.py"]


def _medxfer_parts(names: list[str]) -> set[str]:
    return {n.split(".")[1] for n in names if n.startswith("medxfer.")}


@pytest.mark.parametrize("sub", ["methods", *SIBLINGS, *BOTTOM])
def test_no_ray_or_mlflow_imports(sub):
    offenders = [f"{f.name}: {n}" for f in _files(sub) for n in _imports(f)
                 if n.split(".")[0] in ("ray", "mlflow")]
    assert not offenders


@pytest.mark.parametrize("sub", SIBLINGS)
def test_siblings_import_only_lower_layers(sub):
    allowed = {sub, *BOTTOM, "_lazy"}
    offenders = {f"{f.name}: {p}" for f in _files(sub) for p in _medxfer_parts(_imports(f))
                 if p not in allowed}
    assert not offenders


def test_bottom_layer_imports_nothing_above_it():
    offenders = {f"{f.name}: {p}" for sub in BOTTOM for f in _files(sub)
                 for p in _medxfer_parts(_imports(f)) if p not in BOTTOM}
    assert not offenders


def test_methods_import_nothing_above_them():
    offenders = {f"{f.name}: {p}" for f in _files("methods")
                 for p in _medxfer_parts(_imports(f)) if p in ABOVE_METHODS}
    assert not offenders
