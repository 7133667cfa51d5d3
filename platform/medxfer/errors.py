"""Errors that the CLI turns into exit code 2 with a clear message."""

from __future__ import annotations


class MedxferInputError(ValueError):
    """Bad user input: a file, field or value that is not what was expected.

    The message names the file (and line/column or YAML path where known), the field and
    what was expected. ``medxfer`` exits with code 2 on this error.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None):
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"column {field!r}" if line is not None else f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.detail = message  # without the location prefix, for callers that re-place it
        self.path = path
        self.line = line
        self.field = field


def check_choice(value, choices, field: str, *, path: str | None = None):
    """Return ``value`` if it is one of ``choices``, else raise naming the field and the choices."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise MedxferInputError(f"{field} must be one of {listed}, got {value!r}", path=path,
                                field=field)
    return value
