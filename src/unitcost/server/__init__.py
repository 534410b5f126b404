"""The server: an OTLP/HTTP trace receiver writing through a single writer (``unitcost serve``).

>>> from unitcost.server import create_app
>>> callable(create_app)
True
"""

from __future__ import annotations

from unitcost.server.app import Receiver, ServerSettings, create_app, serve
from unitcost.server.writer import ExportResult, Writer

__all__ = ["ExportResult", "Receiver", "ServerSettings", "Writer", "create_app", "serve"]
