"""One registry type for every name -> record table of medxfer.

Methods, backbones, transforms, presets, confounders, searchers, transferability metrics and
analyses are each a :class:`Registry` of frozen records: a duplicate name raises, an unknown name
raises with the valid names listed, and listings are sorted. The records themselves (what a
method, a metric, ... is) stay in their own modules. A registry is a read-only mapping
(``name in r``, ``r[name]``, ``r.items()``, sorted by name) plus :meth:`Registry.add` and
:meth:`Registry.record`.

    >>> r = Registry("colour")
    >>> r.add("red", 1)
    1
    >>> r.record("blue")
    Traceback (most recent call last):
    ...
    ValueError: unknown colour 'blue'; valid: red
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeVar

T = TypeVar("T")


class Registry(Mapping[str, T]):
    """Records by name.

    Args:
        kind: What a record is, for messages ("method", "transferability metric").
        hint: Appended to the unknown-name message (e.g. other accepted spellings).
    """

    def __init__(self, kind: str, *, hint: str = ""):
        self.kind = kind
        self.hint = hint
        self._records: dict[str, T] = {}

    def add(self, name: str, record: T) -> T:
        """Register ``record`` as ``name``; a duplicate name raises ValueError."""
        if name in self._records:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._records[name] = record
        return record

    def record(self, name: str) -> T:
        """The record of ``name``; ValueError listing the valid names if unknown."""
        try:
            return self._records[name]
        except (KeyError, TypeError):
            raise ValueError(self.unknown(name)) from None

    def unknown(self, name: object) -> str:
        """The message for an unknown ``name``: the valid names, sorted."""
        return (f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}"
                + (f" {self.hint}" if self.hint else ""))

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._records)

    def __getitem__(self, name: str) -> T:
        return self._records[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._records)
