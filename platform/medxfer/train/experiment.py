"""An experiment ready to run: the method-aware parse plus its resolved tracking URI.

The tracking URI follows DESIGN.md ("MLflow run schema"): ``--tracking-uri`` > the YAML's
``tracking.uri`` > ``MLFLOW_TRACKING_URI`` > ``sqlite:///mlruns.db`` in the working directory,
made absolute before Ray starts (Tune changes each trial's working directory). It is resolved
here, above the tracking layer, because the config and method layers below it never read it.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from medxfer.config import ExperimentConfig, parse_overrides, read_yaml
from medxfer.errors import MedxferInputError
from medxfer.methods.experiment import parse_experiment


def with_tracking_uri(cfg: ExperimentConfig, cli_tracking_uri: str | None = None, *,
                      source: str = "config",
                      base_dir: str | os.PathLike | None = None) -> ExperimentConfig:
    """A copy of ``cfg`` whose ``tracking.uri`` is resolved by precedence and absolute.

    Args:
        cfg: a validated experiment.
        cli_tracking_uri: ``--tracking-uri``; wins over ``tracking.uri``.
        source: file name used in error messages.
        base_dir: a relative sqlite or file URI is resolved against it (default: the working
            directory).

    Raises:
        MedxferInputError: a URI that cannot name a shared store, naming where it was written
            (``--tracking-uri``, ``tracking.uri`` or ``$MLFLOW_TRACKING_URI``).
    """
    from medxfer.tracking.uri import resolve_tracking_uri, tracking_uri_origin

    try:
        uri = resolve_tracking_uri(cli_tracking_uri, cfg.tracking.uri, base=base_dir)
    except MedxferInputError as exc:
        # The message names where the URI was written; only the YAML's own key is in `source`.
        in_yaml = tracking_uri_origin(cli_tracking_uri, cfg.tracking.uri) == "tracking.uri"
        raise MedxferInputError(str(exc), path=source if in_yaml else None) from None
    return cfg.model_copy(update={"tracking": cfg.tracking.model_copy(update={"uri": uri})})


def parse_run_config(raw: Mapping[str, Any], *, source: str = "config",
                     overrides: Mapping[str, Any] | None = None,
                     base_dir: str | os.PathLike | None = None,
                     cli_tracking_uri: str | None = None) -> ExperimentConfig:
    """:func:`~medxfer.methods.experiment.parse_experiment`, then :func:`with_tracking_uri`."""
    cfg = parse_experiment(raw, source=source, overrides=overrides, base_dir=base_dir)
    return with_tracking_uri(cfg, cli_tracking_uri, source=source, base_dir=base_dir)


def load_run_config(path: str | os.PathLike,
                    overrides: Mapping[str, Any] | list[str] | None = None, *,
                    cli_tracking_uri: str | None = None) -> ExperimentConfig:
    """Read an experiment YAML, validate it and resolve its tracking URI.

    Args:
        path: the YAML file.
        overrides: ``{"train.lr": 0.1}`` or ``["train.lr=0.1"]`` (``--set``), applied first.
        cli_tracking_uri: ``--tracking-uri``.

    Raises:
        MedxferInputError: unreadable file, bad YAML, or invalid values (each with its path).
    """
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    return parse_run_config(read_yaml(path), source=str(path), overrides=overrides,
                            cli_tracking_uri=cli_tracking_uri)
