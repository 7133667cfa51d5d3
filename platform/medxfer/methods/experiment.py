"""The method-aware half of the experiment YAML: registry names, method defaults and options.

:mod:`medxfer.config` holds the typed models; this module adds what needs the method registry:

* :func:`parse_experiment` validates an experiment dict (a YAML document, or what a Tune trial
  receives: ``ExperimentConfig.model_dump()`` with sampled values merged in): ``--set``
  overrides first, then the method's defaults merged *under* the user's values, then the typed
  models and the method's ``method_config`` schema, with every error reported at once by YAML
  path; relative local paths become absolute.
* :func:`load_config` does the same for a YAML file.
* :func:`method_options` gives a validated config's ``method_config`` as the method's model.

The tracking URI is left as written: it is resolved above the tracking layer
(:mod:`medxfer.train.experiment`), since no method reads it.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Mapping

from pydantic import BaseModel, ValidationError

from medxfer.config import (ExperimentConfig, deep_merge, format_errors, parse_overrides,
                            read_yaml, set_path)
from medxfer.errors import MedxferInputError
from medxfer.methods.registry import get_method, list_methods


def parse_experiment(raw: Mapping[str, Any], *, source: str = "config",
                     overrides: Mapping[str, Any] | None = None,
                     base_dir: str | os.PathLike | None = None) -> ExperimentConfig:
    """Validate an experiment dict: the method's defaults under it, overrides on top.

    Args:
        raw: the YAML document (or ``ExperimentConfig.model_dump()`` plus sampled values).
        source: file name used in error messages.
        overrides: ``{"train.lr": 0.1}`` applied before validation (``--set``).
        base_dir: relative paths (data root, weights, storage path, artifact root) are resolved
            against it (default: the working directory).

    Returns:
        The config, ``method_config`` holding every option of the method (defaults filled in).

    Raises:
        MedxferInputError: every problem, one per line, as ``<source>: <yaml.path>: <message>``.
    """
    if not isinstance(raw, Mapping):
        raise MedxferInputError(f"expected a mapping at the top level, got {type(raw).__name__}",
                                path=source)
    data = copy.deepcopy(dict(raw))
    for key, value in (overrides or {}).items():
        set_path(data, key, value)
    name = data.get("method")
    if not isinstance(name, str) or name not in list_methods():
        shown = "required field missing" if name is None else f"unknown method {name!r}"
        raise MedxferInputError(f"method: {shown}; valid: {', '.join(list_methods())}",
                                path=source)
    method = get_method(name)
    data = deep_merge(method.defaults, data)
    errors: list[str] = []
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        errors += format_errors(exc)
        cfg = None
    try:
        options = method.config_schema.model_validate(data.get("method_config") or {})
    except ValidationError as exc:
        errors += format_errors(exc, "method_config")
        options = None
    if errors:
        raise MedxferInputError("invalid experiment config:\n  " + "\n  ".join(errors),
                                path=source)
    assert cfg is not None and options is not None
    cfg = cfg.model_copy(update={"method_config": options.model_dump()})
    return cfg.with_absolute_paths(base_dir)


def load_config(path: str | os.PathLike,
                overrides: Mapping[str, Any] | list[str] | None = None) -> ExperimentConfig:
    """Read and validate an experiment YAML (see :func:`parse_experiment`).

    Args:
        path: the YAML file.
        overrides: ``{"train.lr": 0.1}`` or ``["train.lr=0.1"]`` (``--set``), applied first.

    Raises:
        MedxferInputError: unreadable file, bad YAML, or invalid values (each with its path).
    """
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    return parse_experiment(read_yaml(path), source=str(path), overrides=overrides)


def method_options(cfg: ExperimentConfig) -> BaseModel:
    """``cfg.method_config`` as the method's own (validated) pydantic model."""
    return get_method(cfg.method).config_schema.model_validate(cfg.method_config)
