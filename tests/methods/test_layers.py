"""Method and loss code never imports Ray or MLflow (they report through Session)."""

from __future__ import annotations

import ast
from pathlib import Path

import medxfer

PKG = Path(medxfer.__file__).parent


def test_methods_and_losses_do_not_import_ray_or_mlflow():
    offenders = []
    for sub in ("methods", "losses"):
        for path in sorted((PKG / sub).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offenders += [f"{path.name}: {n}" for n in names
                              if n.split(".")[0] in ("ray", "mlflow")]
    assert not offenders
