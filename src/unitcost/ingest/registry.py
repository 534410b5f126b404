"""Source formats by name: adapters register themselves; a typo gets the closest name."""

from __future__ import annotations

import difflib
from typing import TypeVar

from unitcost.errors import UnitcostError
from unitcost.ingest.base import Adapter


class UnknownFormatError(ValueError, UnitcostError):
    """No source format has that name."""


ADAPTERS: dict[str, type[Adapter]] = {}
A = TypeVar("A", bound=type[Adapter])


def register(cls: A) -> A:
    """Class decorator: make an adapter available under its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    ADAPTERS[cls.name] = cls
    return cls


def get_adapter(name: str) -> Adapter:
    """Return a new adapter for the format ``name``.

    >>> get_adapter("usage").name
    'usage'
    >>> get_adapter("usag")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    unitcost.ingest.registry.UnknownFormatError: unknown format 'usag'; did you mean 'usage'?
    """
    try:
        return ADAPTERS[name]()
    except KeyError:
        close = difflib.get_close_matches(name, list(ADAPTERS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownFormatError(f"unknown format {name!r}{hint} (formats: {', '.join(sorted(ADAPTERS))})") from None
