"""Ingestion: one small module per source format over a shared base."""

from __future__ import annotations

from unitcost.ingest.base import IngestResult, OnError
from unitcost.ingest.canonical import ingest_files

__all__ = ["IngestResult", "OnError", "ingest_files"]
