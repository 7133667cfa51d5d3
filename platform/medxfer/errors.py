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
        self.path = path
        self.line = line
        self.field = field
