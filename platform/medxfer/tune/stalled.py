"""What a sweep stopped by the watchdog (:mod:`medxfer.tune.stall`) leaves behind.

The watchdog tags the sweep's parent run ``medxfer.status=stalled`` (:func:`mark_stalled`, in the
Tune loop, possibly on a cluster node); the driver then ends the sweep's open runs KILLED (not
RUNNING, not a result: :func:`end_stalled_runs`) and raises :class:`SweepStalled`, whose message
is the ``--resume`` command that continues the sweep. No Ray import here: the CLI catches the
error without loading Ray.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
from pathlib import Path

from medxfer.tracking import schema

log = logging.getLogger(__name__)

EXIT_STALLED = 3  # exit code of `medxfer sweep` when the watchdog stopped the sweep


class SweepStalled(RuntimeError):
    """The watchdog stopped the sweep; the message says why and gives the ``--resume`` command
    (``.command``)."""

    def __init__(self, message: str, command: str):
        super().__init__(message)
        self.command = command


def config_source(path: str | os.PathLike | None) -> str | None:
    """The YAML a sweep was started from: ``path``, or for a sweep restored from its snapshot
    (``medxfer_sweep.json``), the source the snapshot records."""
    if path is None or Path(path).suffix != ".json":
        return None if path is None else str(path)
    try:
        return json.loads(Path(path).read_text()).get("source")
    except (OSError, ValueError):
        return None


def resume_command(config_path: str | os.PathLike | None, name: str, uri: str,
                   address: str | None, num_cpus: int | None, verb: str = "sweep") -> str:
    """The ``medxfer sweep ... --resume`` line (``verb`` study: ``medxfer study``) that
    continues ``name``."""
    parts = ["medxfer", verb, config_source(config_path) or "CONFIG.yaml", "--name", name,
             "--resume",
             "--tracking-uri", uri]
    if address:
        parts += ["--address", address]
    if num_cpus:
        parts += ["--num-cpus", str(num_cpus)]
    return shlex.join(parts)


def mark_stalled(uri: str, parent_id: str, reason: str) -> None:
    """Tag the parent run stalled, with the watchdog's one-line reason."""
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=uri)
    c.set_tag(parent_id, schema.STATUS, schema.STATUS_STALLED)
    c.set_tag(parent_id, schema.STATUS_REASON, reason[:5000])


def stall_reason(client, parent_id: str) -> str | None:
    """The watchdog's reason if it stopped the sweep of ``parent_id``, else None."""
    tags = client.get_run(parent_id).data.tags
    if tags.get(schema.STATUS) != schema.STATUS_STALLED:
        return None
    return tags.get(schema.STATUS_REASON, "the watchdog stopped it")


def clear_stalled(client, parent) -> None:
    """A stalled sweep that is resumed is running again: drop its stall tags."""
    for key in (schema.STATUS, schema.STATUS_REASON):
        if key in parent.data.tags:
            client.delete_tag(parent.info.run_id, key)


def end_stalled_runs(client, exp_id: str, parent_id: str) -> None:
    """End the stopped sweep's parent and its open children KILLED."""
    running = client.search_runs([exp_id], filter_string=(
        f"tags.`{schema.PARENT_RUN_ID}` = '{parent_id}' and attributes.status = 'RUNNING'"),
        max_results=10000)
    for run in running:
        client.set_terminated(run.info.run_id, "KILLED")
    client.set_terminated(parent_id, "KILLED")


def end_if_stalled(client, exp_id: str, parent_id: str) -> bool:
    """True when the watchdog stopped the sweep of ``parent_id`` (its runs are then ended
    KILLED). A store that cannot be read counts as no stall: the caller's error comes first."""
    try:
        if stall_reason(client, parent_id) is None:
            return False
        end_stalled_runs(client, exp_id, parent_id)
    except Exception:  # noqa: BLE001 - keep the exception the sweep is ending with
        log.warning("sweep: could not read the stall tag of parent %s", parent_id,
                    exc_info=True)
        return False
    return True


def stalled_error(client, parent_id: str, name: str, config_path: str | os.PathLike | None,
                  uri: str, address: str | None, num_cpus: int | None,
                  verb: str = "sweep") -> SweepStalled:
    """The error ``medxfer sweep`` (or ``study``) prints: the reason and the ``--resume``
    command."""
    command = resume_command(config_path, name, uri, address, num_cpus, verb)
    reason = stall_reason(client, parent_id) or "the watchdog stopped it"
    return SweepStalled(
        f"{verb} {name} stalled: {reason}. It was stopped and its state saved; check the Ray "
        f"cluster (`ray status`), then continue it with:\n  {command}", command)
