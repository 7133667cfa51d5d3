"""The method registry: a name -> :class:`Method` (loop + default config + config schema).

Methods register themselves on import of :mod:`medxfer.methods` (so Ray workers, which import
the package, see the same entries). Adding a method: one module calling :func:`register_method`,
one import line in ``methods/__init__.py``, and its tests (the registry-wide test covers it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from pydantic import BaseModel, ConfigDict

from medxfer.registry import Registry


class MethodOptions(BaseModel):
    """Base of every method's ``method_config`` schema: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Method:
    """A registered method.

    Attributes:
        name: registry key (the module's name), the ``medxfer.method`` tag.
        train_loop_per_worker: ``fn(config: dict) -> None``; ``config`` is
            ``ExperimentConfig.model_dump()``. Reports through ``medxfer.methods.get_session()``.
        config_schema: pydantic model of ``method_config``.
        defaults: a partial experiment config merged *under* the user's YAML (e.g. a method's
            default transforms or selection metric).
        description: one line for ``list`` outputs.
    """

    name: str
    train_loop_per_worker: Callable[[dict[str, Any]], None]
    config_schema: type[BaseModel]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


_REGISTRY: Registry[Method] = Registry("method")


def register_method(method: Method) -> Method:
    """Add ``method``; a duplicate name raises ValueError."""
    return _REGISTRY.add(method.name, method)


def get_method(name: str) -> Method:
    """The method registered as ``name``.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
    """
    return _REGISTRY.record(name)


def list_methods() -> list[str]:
    """Registered method names, sorted."""
    return _REGISTRY.names()
