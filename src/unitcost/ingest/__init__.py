"""Ingestion: one small module per source format over a shared base (``base.Adapter``)."""

from __future__ import annotations

from unitcost.ingest.base import Adapter, IngestResult, Mapping, OnError, ingest_file
from unitcost.ingest.canonical import ingest_files
from unitcost.ingest.registry import ADAPTERS, get_adapter, register

__all__ = [
    "ADAPTERS",
    "Adapter",
    "IngestResult",
    "Mapping",
    "OnError",
    "get_adapter",
    "ingest_file",
    "ingest_files",
    "register",
]
