"""Source formats by name: adapters register themselves; a typo gets the closest name."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TypeVar

from unitcost.config import Config
from unitcost.errors import UnitcostError
from unitcost.ingest.base import Adapter


class UnknownFormatError(ValueError, UnitcostError):
    """No source format has that name."""


ADAPTERS: dict[str, type[Adapter]] = {}
A = TypeVar("A", bound=type[Adapter])

#: Modules of unitcost.ingest that define adapters; imported on first use of the registry.
ADAPTER_MODULES = ("canonical", "otlp", "litellm", "langfuse", "openai_usage", "csv_mapping", "focus", "ops")


def load_adapters() -> dict[str, type[Adapter]]:
    """Import every adapter module (each registers its adapters) and return the registry."""
    import importlib

    for module in ADAPTER_MODULES:
        try:
            importlib.import_module(f"unitcost.ingest.{module}")
        except ModuleNotFoundError as e:  # a format still being written; the final list has none
            if e.name != f"unitcost.ingest.{module}":
                raise
    return ADAPTERS


def register(cls: A) -> A:
    """Class decorator: make an adapter available under its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    ADAPTERS[cls.name] = cls
    return cls


def get_adapter(name: str, config: Config | None = None, mapping: Path | None = None) -> Adapter:
    """Return a new adapter for the format ``name``.

    >>> get_adapter("usage").name
    'usage'
    >>> get_adapter("usag")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    unitcost.ingest.registry.UnknownFormatError: unknown format 'usag'; did you mean 'usage'?
    """
    load_adapters()
    try:
        return ADAPTERS[name](config=config, mapping=mapping)
    except KeyError:
        close = difflib.get_close_matches(name, list(ADAPTERS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownFormatError(f"unknown format {name!r}{hint} (formats: {', '.join(sorted(ADAPTERS))})") from None
