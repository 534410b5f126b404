"""What a fleet costs: GPU-hours by purchase option, and the unit costs derived from them.

Purchase mix: ``reserved_gpus`` are paid every hour at the reserved rate whether used or not (a commitment);
GPUs provisioned beyond them are paid by the hour, ``spot_share`` of them at the spot rate and the rest
on demand. Provisioned means paid: warming, warm standby, serving and draining replicas all count.
A month is 730 hours (8,760 / 12).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOURS_PER_MONTH = 730.0


@dataclass(frozen=True)
class GpuPrices:
    """$/GPU-hour of one GPU type by purchase option."""

    on_demand: float
    reserved: float
    spot: float


def fleet_cost_per_hour(
    provisioned_gpus: np.ndarray,
    reserved_gpus: int,
    spot_share: float,
    prices: GpuPrices,
    weights: np.ndarray | None = None,
) -> float:
    """Mean $/hour of a fleet whose provisioned GPU count over time slices is ``provisioned_gpus`` (the slices
    weighted by ``weights``, their lengths; equal when not given).

    >>> p = GpuPrices(on_demand=4.0, reserved=2.5, spot=1.5)
    >>> fleet_cost_per_hour(np.array([8, 12]), reserved_gpus=8, spot_share=0.5, prices=p)
    25.5
    """
    g = np.asarray(provisioned_gpus, dtype=np.float64)
    if not g.size:
        return 0.0
    overflow = np.maximum(g - reserved_gpus, 0.0)
    per_overflow_gpu = spot_share * prices.spot + (1.0 - spot_share) * prices.on_demand
    mean_overflow = float(np.average(overflow, weights=weights)) if weights is not None else float(overflow.mean())
    return float(reserved_gpus * prices.reserved + mean_overflow * per_overflow_gpu)


def unit_costs(cost_per_hour: float, requests_per_s: float, output_tokens_per_s: float) -> dict[str, float]:
    """Cost per month, per request and per 1K output tokens from the hourly cost and the throughput.

    >>> unit_costs(36.0, 1.0, 100.0)["cost_per_request_usd"]
    0.01
    """
    return {
        "cost_per_hour_usd": cost_per_hour,
        "cost_per_month_usd": cost_per_hour * HOURS_PER_MONTH,
        "cost_per_request_usd": cost_per_hour / (requests_per_s * 3600.0) if requests_per_s > 0 else float("nan"),
        "cost_per_1k_output_tokens_usd": (
            cost_per_hour / (output_tokens_per_s * 3.6) if output_tokens_per_s > 0 else float("nan")
        ),
    }
