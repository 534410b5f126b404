"""One FOCUS bill line for the tests that build bills by hand (stack, reconcile, HTML report)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from unitcost.ingest.focus import FILE_REQUIRED


def focus_line(
    *,
    cost: str,
    provider: str,
    service: str,
    category: str,
    description: str,
    currency: str = "USD",
    day: int = 1,
    month: str = "2026-10",
    **extra: Any,
) -> dict[str, Any]:
    """A usage line of ``cost`` for one day of ``month`` (every required FOCUS column filled), plus ``extra``."""
    first = dt.date.fromisoformat(f"{month}-01")
    next_month = (first + dt.timedelta(days=32)).replace(day=1)
    row: dict[str, Any] = {c: "x" for c in FILE_REQUIRED}
    row |= {
        "BilledCost": cost,
        "EffectiveCost": cost,
        "ListCost": cost,
        "ContractedCost": cost,
        "BillingCurrency": currency,
        "BillingPeriodStart": f"{first}T00:00:00Z",
        "BillingPeriodEnd": f"{next_month}T00:00:00Z",
        "ChargePeriodStart": f"{first + dt.timedelta(days=day - 1)}T00:00:00Z",
        "ChargePeriodEnd": f"{first + dt.timedelta(days=day)}T00:00:00Z",
        "ChargeCategory": "Usage",
        "ChargeClass": "",
        "PricingQuantity": "1",
        "ProviderName": provider,
        "ServiceCategory": category,
        "ServiceName": service,
        "ChargeDescription": description,
    }
    return row | extra
