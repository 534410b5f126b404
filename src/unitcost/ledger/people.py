"""The people layer: labour records priced at their hourly rate (or their role's)."""

from __future__ import annotations

import datetime as dt

import ibis
import pyarrow as pa

from unitcost.config import Config
from unitcost.store import Store


def people_costs(store: Store, config: Config, start: dt.date | None = None, end: dt.date | None = None) -> pa.Table:
    """Return labour cost per (date, activity, feature, tenant): ``hours``, ``cost_usd``, ``unpriced_hours``.

    A record's rate is its ``hourly_rate_usd``, else ``people.rates[role]``; hours with
    neither are reported as unpriced, never costed at $0. ``end`` is exclusive.
    """
    t = store.table("ops_hours")
    if start is not None:
        t = t.filter(t.date >= start)
    if end is not None:
        t = t.filter(t.date < end)
    rates = config.people.rates
    role_rate = (
        ibis.cases(*[(t.role == role, ibis.literal(rate)) for role, rate in rates.items()], else_=ibis.null("float64"))
        if rates
        else ibis.null("float64")
    )
    rate = ibis.coalesce(t.hourly_rate_usd, role_rate)
    out = (
        t.group_by(["date", "activity", "feature", "tenant"])
        .aggregate(
            hours=t.hours.sum(),
            cost_usd=(t.hours * rate).cast("decimal(38, 9)").sum().fill_null(0),
            unpriced_hours=t.hours.sum(where=rate.isnull()).fill_null(0),
        )
        .order_by(["date", "activity", "feature", "tenant"])
        .to_pyarrow()
    )
    return out.set_column(out.schema.get_field_index("cost_usd"), "cost_usd", out["cost_usd"].cast(pa.float64()))
