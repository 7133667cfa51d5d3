"""The loss registry, and the rule that loss and model code never imports Ray or MLflow."""

import ast
from pathlib import Path

import pytest

import medxfer.losses as losses
from medxfer.losses import get_loss, list_losses, register_loss

PKG = Path(losses.__file__).resolve().parents[1]


#: Losses whose constructor needs a value (PIRL's memory bank: one slot per dataset item).
REQUIRED = {"pirl": {"n_data": 8}}


def test_every_registered_loss_builds_with_defaults():
    assert list_losses() == sorted(["cltci", "cltci_moco", "dce", "dice_ce", "mae", "moco",
                                    "nt_xent", "pirl", "rotation", "supcon", "swav",
                                    "swav_hybrid"])
    for name in list_losses():
        assert callable(get_loss(name)(**REQUIRED.get(name, {})))


def test_unknown_and_duplicate_names():
    with pytest.raises(ValueError, match="unknown loss 'ntxent'; valid: cltci, cltci_moco"):
        get_loss("ntxent")
    with pytest.raises(ValueError, match="already registered"):
        register_loss("nt_xent", get_loss("supcon"))


@pytest.mark.parametrize("sub", ["losses", "models"])
def test_no_ray_or_mlflow_imports(sub):
    for f in (PKG / sub).glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] in ("ray", "mlflow") for n in names), f"{f.name} imports {names}"
