"""Lazy package exports: ``medxfer --help`` must not pay for torch, sklearn or mlflow."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence


def lazy_exports(package: str, exports: Mapping[str, Sequence[str]]
                 ) -> tuple[list[str], Callable[[str], object]]:
    """``(__all__, __getattr__)`` for a package whose names live in its submodules.

    ``exports`` maps a submodule name to the public names it defines; a name is imported on
    first access (PEP 562).
    """
    where = {name: mod for mod, names in exports.items() for name in names}

    def __getattr__(name: str):
        if name in where:
            return getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return sorted(where), __getattr__
