"""Renderers only: terminal (rich), HTML (plotly, offline), JSON. They format and draw, never compute."""

from __future__ import annotations

from typing import Any

__all__ = ["write_html"]


def __getattr__(name: str) -> Any:
    """Import ``write_html`` on first use, so the terminal renderer does not load plotly."""
    if name == "write_html":
        from unitcost.report.html import write_html

        return write_html
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
