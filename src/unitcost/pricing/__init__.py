"""Prices: token prices from genai-prices plus the user's overrides and discounts."""

from __future__ import annotations

from unitcost.pricing.tokens import PRICE_COLUMNS, PriceTable, build_price_table

__all__ = ["PRICE_COLUMNS", "PriceTable", "build_price_table"]
