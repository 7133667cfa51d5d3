"""Hide third-party log lines a medxfer user cannot act on; every one is named here, with why.

Found by running each verb the way the README does (``benchmark import``, ``ground-truth``,
``replay``, ``estimate score`` / ``evaluate``, ``train``, ``sweep``, ``report``, ``demo``) and
reading stderr. Only exact message starts on exact loggers are dropped, so a new or changed
message from these libraries still shows. ``MEDXFER_VERBOSE=1`` shows them all again.

None of the verbs' normal runs raised a Python ``warnings`` warning (sklearn, torch, pandas),
so no warning category is filtered.
"""

from __future__ import annotations

import logging
import os

VERBOSE_ENV = "MEDXFER_VERBOSE"

# (logger, start of the message, why the user cannot act on it)
HIDDEN: tuple[tuple[str, str, str], ...] = (
    ("mlflow.store.db.utils", "Creating initial MLflow database tables",
     "printed whenever a verb creates a new sqlite store, which is the documented default"),
    ("mlflow.store.db.utils", "Updating database tables",
     "the schema migration that follows the line above"),
    ("ray._private.authentication.authentication_token_setup",
     "Token authentication is enabled for this Ray cluster",
     "Ray's default for the local runtime medxfer starts on 127.0.0.1; nothing to choose"),
    ("ray.tune.execution.experiment_state",
     "Experiment state snapshotting has been triggered multiple times",
     "a tip about CheckpointConfig(num_to_keep), which medxfer sets, not the user"),
    ("ray.tune.tune", "Wrote the latest version of all result files",
     "Tune's end-of-run bookkeeping; medxfer prints where the results are"),
)


class _DropStarts(logging.Filter):
    def __init__(self, starts: tuple[str, ...]):
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.starts)


def quiet_third_party(verbose: bool | None = None) -> None:
    """Install the filters of ``HIDDEN`` (idempotent); a no-op when ``verbose`` is true
    (default: ``$MEDXFER_VERBOSE`` set to anything but ``""`` or ``0``).

    The filters sit on the named loggers themselves, so they apply before any handler that
    MLflow or Ray attach later, and importing those libraries is not needed here.
    """
    if verbose is None:
        verbose = os.environ.get(VERBOSE_ENV, "") not in ("", "0")
    if verbose:
        return
    by_logger: dict[str, tuple[str, ...]] = {}
    for name, start, _why in HIDDEN:
        by_logger[name] = by_logger.get(name, ()) + (start,)
    for name, starts in by_logger.items():
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, _DropStarts)]:
            logger.removeFilter(old)
        logger.addFilter(_DropStarts(starts))
