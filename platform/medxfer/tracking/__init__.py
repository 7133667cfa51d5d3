"""MLflow: store URI, run schema, bulk benchmark import, and the one query module.

Every consumer reads runs through :mod:`medxfer.tracking.query` (ground truth included) and names
tags through :mod:`medxfer.tracking.schema`.
"""

from medxfer.tracking.uri import absolute_uri, resolve_tracking_uri

__all__ = ["absolute_uri", "resolve_tracking_uri"]
