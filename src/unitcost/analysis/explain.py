"""Why did cost change? An exact split of the change between two windows into drivers, with who is behind each.

The token cost of a window is a sum over *segments* ``s`` (``explain.mix``: feature x model by default) and
price *components* ``j`` (uncached input, cache read, cache write, output, per-call fees) of a product of eight
factors::

    C[s, j] = U * (R_s / R) * (R / U) * (M_s / R_s) * share[s, j] * tokens_per_call[s, j] * price[s, j]

``U`` units of work (volume), ``R_s / R`` the segment's share of requests (mix), ``R / U`` requests per unit of
work (retries), ``M_s / R_s`` the share of requests that reached a model (application cache hits lower it),
``share`` the component's share of input tokens (uncached, cache read, cache write: the provider cache),
``tokens_per_call`` input or output tokens per model call, and ``price`` the component's cost per token. The
change ``C1 - C0`` is split among the factors with the Shapley decomposition (``analysis.decompose``): exact
and independent of order. Factors map to drivers: ``volume``, ``mix``, ``retries``, ``cache`` (the model-call
share and the input shares), ``input_tokens_per_request``, ``output_tokens_per_request``, ``unit_price``.

With a bill, GPU pools or people time the change explained is the fully loaded one: requests served by a GPU
pool leave the token terms (the pool is paid for by the hour) and each other layer is one driver
(``layer:<name>``), itself split into volume (units of work) and rate (cost per unit of work). ``model_api``
differences between the bill and the telemetry (untracked calls, invoice rounding) are ``model_api_billing``.

Each driver's change is then apportioned to the keys of each dimension (tenant, feature, ...) by the keys'
share of the change in that driver's ratio (``decompose.centred_shares``), so the contributors of a driver add
up to it exactly. docs/methods.md has the derivation and the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from unitcost.analysis.decompose import centred_shares, shapley_product
from unitcost.analysis.economics import CostReport, _check_dimensions, cost_report, price_lookup
from unitcost.analysis.windows import Window
from unitcost.config import Config
from unitcost.errors import InvalidOptionError, PeriodError
from unitcost.ledger.segments import cost_components, price_segments, token_sums
from unitcost.store import Store
from unitcost.store.functions import last_by
from unitcost.store.units import last_in, mixed_units

DRILL_DIMENSIONS = ("tenant", "feature", "workflow", "model", "release", "prompt_version")
TOKEN_DRIVERS = (
    "volume",
    "mix",
    "retries",
    "cache",
    "input_tokens_per_request",
    "output_tokens_per_request",
    "unit_price",
)
FACTORS = (
    "units",
    "mix_share",
    "requests_per_unit",
    "model_call_share",
    "input_share",
    "input_per_call",
    "output_per_call",
    "price",
)
FACTOR_DRIVER = dict(zip(FACTORS, ("volume", "mix", "retries", "cache", "cache", *TOKEN_DRIVERS[4:]), strict=True))
COMPONENTS = ("input_uncached", "cache_read", "cache_write", "output", "fee")
DRIVER_WORDS = {
    "volume": "volume (units of work)",
    "mix": "mix",
    "retries": "requests per unit of work",
    "cache": "cache",
    "input_tokens_per_request": "input tokens per request",
    "output_tokens_per_request": "output tokens per request",
    "unit_price": "unit prices",
    "model_api_billing": "model API bill vs telemetry",
}
_SUMS = ("requests", "model_calls", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
_COSTS = tuple(f"cost_{c}" for c in COMPONENTS)
_NONE = "\x00none"  # stands for a missing key while grouping


@dataclass(frozen=True)
class Contributor:
    """One key's part of a driver's change."""

    dimension: str
    key: str | None
    change_usd: float


@dataclass(frozen=True)
class Driver:
    """One driver of the change: its dollars, share of the change and the keys behind it."""

    driver: str
    change_usd: float
    share_pct: float | None
    top_contributors: list[Contributor] = field(default_factory=list)
    #: for ``layer:*`` drivers: the part due to units of work (volume) and to cost per unit of work (rate)
    detail: dict[str, float] = field(default_factory=dict)
    #: the keys that carry most of the driver, one per dimension where one key does (for the summary)
    mostly: list[Contributor] = field(default_factory=list)


@dataclass(frozen=True)
class Explanation:
    """The answer to "why did cost change between these two windows?"."""

    period: Window
    baseline: Window
    basis: str  # "fully loaded" or "token"
    cost_period_usd: float
    cost_baseline_usd: float
    drivers: list[Driver]
    residual_usd: float
    metrics: dict[str, dict[str, float | None]]
    unpriced_requests: dict[str, int]
    summary: str = ""

    @property
    def change_usd(self) -> float:
        return self.cost_period_usd - self.cost_baseline_usd

    @property
    def change_pct(self) -> float | None:
        return 100 * self.change_usd / self.cost_baseline_usd if self.cost_baseline_usd else None

    def to_json(self) -> dict[str, Any]:
        """Return the ``explain --json`` document (docs/json.md)."""

        def window(w: Window) -> dict[str, str]:
            return {"from": w.start.isoformat(), "to": w.end.isoformat(), "label": w.label}

        return {
            "period": window(self.period),
            "baseline": window(self.baseline),
            "basis": self.basis,
            "cost_usd": {
                "period": self.cost_period_usd,
                "baseline": self.cost_baseline_usd,
                "change": self.change_usd,
                "change_pct": self.change_pct,
            },
            "drivers": [
                {
                    "driver": d.driver,
                    "change_usd": d.change_usd,
                    "share_pct": d.share_pct,
                    "top_contributors": [
                        {"dimension": c.dimension, "key": c.key, "change_usd": c.change_usd} for c in d.top_contributors
                    ],
                    **({"detail": d.detail} if d.detail else {}),
                }
                for d in self.drivers
            ],
            "residual_usd": self.residual_usd,
            "metrics": self.metrics,
            "unpriced_requests": self.unpriced_requests,
            "summary": self.summary,
        }


def _cells(
    store: Store,
    config: Config,
    period: Window,
    baseline: Window,
    keys: list[str],
    pools: set[str],
    where: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Token sums and component costs per (window, keys, cache hit): the small table the math runs on."""
    u = store.table("usage")
    for dim, value in (where or {}).items():
        u = u.filter(u[dim] == value)
    in_period = (u.ts >= period.start) & (u.ts < period.end)
    u = u.filter(in_period | ((u.ts >= baseline.start) & (u.ts < baseline.end)))
    _, seg, lookup = price_lookup(config, store, min(period.start, baseline.start), max(period.end, baseline.end))

    def keys_of(r: ir.Table) -> dict[str, ir.Value]:
        out: dict[str, ir.Value] = {
            "window": ((r.ts >= period.start) & (r.ts < period.end)).cast("int8"),
            **{k: r[k] for k in keys},
            "provider": r.provider,
            "cache_hit": r.response_cache_hit.fill_null(False),
            "pool": r.serving.isin(sorted(pools)) if pools else ibis.literal(False),
        }
        if "model" not in out:
            out["model"] = r.model
        return out

    # units of work: each credited to the keys of its last request in the window (one pass, see store.units)
    in_period = (u.ts >= period.start) & (u.ts < period.end)
    window_end = ibis.cases((in_period, ibis.literal(period.end)), else_=ibis.literal(baseline.end))
    is_last = last_in(u, window_end)
    if where:
        # a stored link may point at a request the filter drops, for a unit whose requests differ in a filtered
        # dimension: for those units (all of them if the dimension is not tracked), the last request among the
        # rows kept, by one GROUP BY unit over their kept rows in each window (store/units.py)
        mixed = mixed_units(store, list(where))
        kept = u.mutate(in_period=in_period)
        if mixed is not None:
            kept = kept.filter(kept.unit_id.isin(mixed.unit_id))
        last = kept.group_by(["unit_id", "in_period"]).aggregate(last_row=last_by(kept.row_id, kept.ts))
        by_group = u.row_id.isin(last.last_row)
        is_last = by_group if mixed is None else ibis.cases((u.unit_id.isin(mixed.unit_id), by_group), else_=is_last)
    # token sums per price segment: no join, one pass over the rows
    group = {**keys_of(u), **seg.of_requests(u)}
    grouped = u.group_by(**group).aggregate(requests=u.count(), units=is_last.sum(), **token_sums(u))
    g, _ = price_segments(grouped, lookup)
    free = g.cache_hit | g.pool  # no token cost: answered from cache, or paid for by a GPU pool

    def part(expr: ir.NumericValue) -> ir.NumericValue:
        return ibis.cases((free, ibis.literal(0.0)), else_=expr.fill_null(0.0).cast("float64"))

    parts = cost_components(g)
    costs = {
        "cost_input_uncached": part(parts["input_uncached"] / 1e6),
        "cost_cache_read": part(parts["cache_read"] / 1e6),
        "cost_cache_write": part(parts["cache_write"] / 1e6),
        "cost_output": part((parts["output"] + parts["reasoning"]) / 1e6),
        "cost_fee": part(parts["fee_usd"]),
    }
    out_keys = [k for k in group if k not in ("epoch", "bracket")]
    rows = g.select(
        *[grouped[k] for k in out_keys],
        requests=grouped.requests,
        units=grouped.units,
        model_calls=ibis.cases((grouped.cache_hit, 0), else_=grouped.requests),
        input_tokens=grouped.input_tokens,
        cache_read_tokens=grouped.cache_read_tokens,
        cache_write_tokens=grouped.cache_write_tokens,
        output_tokens=grouped.output_tokens,
        unpriced=ibis.cases((~g.cache_hit & g.input_per_mtok.isnull(), grouped.requests), else_=0),
        **costs,
    )
    final = rows.group_by(out_keys).aggregate(**{c: rows[c].sum() for c in rows.columns if c not in out_keys})
    df = final.to_pandas()
    df = df.fillna({c: 0 for c in df.columns if c not in out_keys})
    for c in ("requests", "model_calls", "units", "unpriced", *_SUMS[2:]):
        df[c] = df[c].astype("float64")
    return df


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _fill(a0: np.ndarray, a1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A factor undefined in one window takes the other window's value; undefined in both, zero."""
    b0 = np.where(np.isnan(a0), a1, a0)
    b1 = np.where(np.isnan(a1), a0, a1)
    return np.nan_to_num(b0), np.nan_to_num(b1)


def _factors(seg: pd.DataFrame, units: tuple[float, float], requests: tuple[float, float]) -> tuple[Any, Any, Any]:
    """Factor matrices (terms x 8) for both windows and each term's segment index."""
    n = len(seg)
    x = [np.ones((n, len(COMPONENTS), len(FACTORS))) for _ in (0, 1)]
    raw: list[dict[str, np.ndarray]] = []
    for w in (0, 1):
        v = {c: seg[f"{c}_{w}"].to_numpy(dtype=np.float64) for c in (*_SUMS, *_COSTS)}
        uncached = v["input_tokens"] - v["cache_read_tokens"] - v["cache_write_tokens"]
        shares = [uncached, v["cache_read_tokens"], v["cache_write_tokens"]]
        raw.append(
            {
                "units": np.full(n, units[w]),
                "mix_share": v["requests"] / requests[w] if requests[w] else np.zeros(n),
                "requests_per_unit": np.full(n, requests[w] / units[w] if units[w] else np.nan),
                "model_call_share": _ratio(v["model_calls"], v["requests"]),
                **{f"input_share_{j}": _ratio(shares[j], v["input_tokens"]) for j in range(3)},
                "input_per_call": _ratio(v["input_tokens"], v["model_calls"]),
                "output_per_call": _ratio(v["output_tokens"], v["model_calls"]),
                **{f"price_{j}": _ratio(v[f"cost_{c}"], shares[j]) for j, c in enumerate(COMPONENTS[:3])},
                "price_output": _ratio(v["cost_output"], v["output_tokens"]),
                "price_fee": _ratio(v["cost_fee"], v["model_calls"]),
            }
        )
    filled = {k: _fill(raw[0][k], raw[1][k]) for k in raw[0]}
    for w in (0, 1):
        f = {k: pair[w] for k, pair in filled.items()}
        xs = x[w]
        for j in range(len(COMPONENTS)):
            xs[:, j, 0] = f["units"]
            xs[:, j, 1] = f["mix_share"]
            xs[:, j, 2] = f["requests_per_unit"]
            xs[:, j, 3] = f["model_call_share"]
        for j in range(3):
            xs[:, j, 4] = f[f"input_share_{j}"]
            xs[:, j, 5] = f["input_per_call"]
            xs[:, j, 7] = f[f"price_{j}"]
        xs[:, 3, 6] = f["output_per_call"]
        xs[:, 3, 7] = f["price_output"]
        xs[:, 4, 7] = f["price_fee"]
    return x[0].reshape(-1, len(FACTORS)), x[1].reshape(-1, len(FACTORS)), np.repeat(np.arange(n), len(COMPONENTS))


def _pivot(df: pd.DataFrame, keys: list[str], cols: list[str]) -> pd.DataFrame:
    """Sum ``cols`` per keys and window, one column per window (``<col>_0``, ``<col>_1``)."""
    g = df.groupby([*keys, "window"], dropna=False, sort=False)[cols].sum().unstack("window", fill_value=0.0)
    g.columns = [f"{c}_{w}" for c, w in g.columns]
    for c in cols:
        for w in (0, 1):
            if f"{c}_{w}" not in g.columns:
                g[f"{c}_{w}"] = 0.0
    return g.reset_index()


#: per factor: (numerator, denominator) columns whose ratio's change apportions the factor to keys
_FACTOR_RATIO = {
    "model_call_share": ("model_calls", "requests"),
    "input_share": ("cache_read_tokens", "input_tokens"),
    "input_per_call": ("input_tokens", "model_calls"),
    "output_per_call": ("output_tokens", "model_calls"),
    "price": ("cost", "tokens"),
}


def _apportion(
    cells: pd.DataFrame, seg_keys: list[str], seg_index: pd.DataFrame, phi: np.ndarray, dim: str
) -> dict[str, dict[str | None, float]]:
    """Each token driver's change split over the keys of ``dim``: {driver: {key: usd}}."""
    out: dict[str, dict[str | None, float]] = {d: {} for d in TOKEN_DRIVERS}
    cells = cells.assign(
        cost=cells[list(_COSTS)].sum(axis=1),
        tokens=cells["input_tokens"] + cells["output_tokens"],
        **{dim: cells[dim].astype(object).where(cells[dim].notna(), _NONE)},
    )
    cols = ["units", "requests", "model_calls", "input_tokens", "cache_read_tokens", "output_tokens"]
    cols += ["cost", "tokens"]
    by_key = _pivot(cells, [dim], cols)
    keys = by_key[dim].tolist()

    def add(driver: str, ks: list[Any], amounts: np.ndarray) -> None:
        bucket = out[driver]
        for k, a in zip(ks, amounts, strict=True):
            name = None if k == _NONE else str(k)
            bucket[name] = bucket.get(name, 0.0) + float(a)

    def col(t: pd.DataFrame, c: str, w: int) -> np.ndarray:
        return t[f"{c}_{w}"].to_numpy(dtype=np.float64)

    # global factors: units (credited to the key of the unit's last request) and requests per unit (the key's
    # requests per unit credited to it: for unit-level dimensions such as tenant, its units' requests)
    du = col(by_key, "units", 1) - col(by_key, "units", 0)
    total_units = phi[:, 0].sum()
    shares = du / du.sum() if abs(du.sum()) > 0 else np.zeros(len(keys))
    add("volume", keys, total_units * shares)
    rpu = centred_shares(
        col(by_key, "requests", 0),
        col(by_key, "units", 0),
        col(by_key, "requests", 1),
        col(by_key, "units", 1),
    )
    add("retries", keys, phi[:, 2].sum() * rpu)
    # segment factors
    per_seg = _pivot(cells, list(dict.fromkeys([*seg_keys, dim])), cols)
    merged = per_seg.merge(seg_index, on=seg_keys, how="left")
    key_totals = by_key.set_index(dim, drop=False)
    for s, part in merged.groupby("_seg", sort=False):
        s = int(s)
        ks = part[dim].tolist()
        # mix: the segment's share of each key's requests, weighted by the key's share of all requests
        tot = key_totals.loc[part[dim]]
        mix = centred_shares(
            col(part, "requests", 0), col(tot, "requests", 0), col(part, "requests", 1), col(tot, "requests", 1)
        )
        add("mix", ks, phi[s, 1] * mix)
        for f_index, factor in ((3, "model_call_share"), (4, "input_share"), (5, "input_per_call"),
                                (6, "output_per_call"), (7, "price")):  # fmt: skip
            amount = phi[s, f_index]
            if amount == 0:
                continue
            num, den = _FACTOR_RATIO[factor]
            sh = centred_shares(col(part, num, 0), col(part, den, 0), col(part, num, 1), col(part, den, 1))
            add(FACTOR_DRIVER[factor], ks, amount * sh)
    return out


def explain_change(
    store: Store,
    config: Config,
    period: Window,
    baseline: Window,
    by: list[str] | None = None,
    top: int = 3,
    basis: str = "auto",
    where: dict[str, str] | None = None,
) -> Explanation:
    """Return the exact split of the cost change from ``baseline`` to ``period`` into drivers.

    ``by``: the dimensions whose keys are named as contributors (default: tenant, feature, workflow, model,
    release, prompt_version). ``basis``: ``auto`` explains the fully loaded cost when the workspace has a
    bill, GPU pools or people time (else the token cost); ``token`` explains the token cost alone.
    ``where``: only the usage rows with these dimension values (e.g. one feature); implies ``token``.
    """
    if where:
        _check_dimensions(list(where))
        basis = "token"
    if basis not in ("auto", "token"):
        raise InvalidOptionError(f"--basis must be 'auto' or 'token', got {basis!r}")
    from unitcost.analysis.stack import has_stack_inputs, self_hosted_pools  # stack builds on economics

    drill = list(dict.fromkeys(by or DRILL_DIMENSIONS))
    _check_dimensions(drill)
    mix_dims = list(dict.fromkeys(config.explain.mix))
    _check_dimensions(mix_dims)
    if period.start < baseline.end and baseline.start < period.end:
        raise PeriodError(f"the period ({period.describe()}) and the baseline ({baseline.describe()}) overlap")
    loaded = basis == "auto" and (
        has_stack_inputs(store, config, period.start, period.end)
        or has_stack_inputs(store, config, baseline.start, baseline.end)
    )
    pools = self_hosted_pools(store, config) if loaded else set()
    seg_keys = [*mix_dims, *(["provider"] if "model" in mix_dims and "provider" not in mix_dims else [])]
    keys = list(dict.fromkeys([*mix_dims, *drill]))
    cells = _cells(store, config, period, baseline, keys, pools, where)
    for name, w in (("baseline", 0), ("period", 1)):
        if not (cells["window"] == w).any() and not loaded:
            window = baseline if w == 0 else period
            raise PeriodError(f"the {name} {window.describe()} has no usage rows: nothing to compare")
    seg = _pivot(cells, seg_keys, [*_SUMS, *_COSTS])
    units = tuple(float(cells.loc[cells["window"] == w, "units"].sum()) for w in (0, 1))
    requests = tuple(float(cells.loc[cells["window"] == w, "requests"].sum()) for w in (0, 1))
    x0, x1, term_seg = _factors(seg, units, requests)  # type: ignore[arg-type]
    phi_terms = shapley_product(x0, x1)
    phi = np.zeros((len(seg), len(FACTORS)))
    np.add.at(phi, term_seg, phi_terms)
    token_cost = (
        float(cells.loc[cells["window"] == 0, list(_COSTS)].to_numpy().sum()),
        float(cells.loc[cells["window"] == 1, list(_COSTS)].to_numpy().sum()),
    )

    seg_index = seg[seg_keys].assign(_seg=np.arange(len(seg)))
    contributions = {dim: _apportion(cells, seg_keys, seg_index, phi, dim) for dim in drill}
    totals = {d: 0.0 for d in TOKEN_DRIVERS}
    for i, factor in enumerate(FACTORS):
        totals[FACTOR_DRIVER[factor]] += float(phi[:, i].sum())
    drivers_raw: list[tuple[str, float, dict[str, dict[str | None, float]], dict[str, float]]] = [
        (d, totals[d], {dim: contributions[dim][d] for dim in drill}, {}) for d in TOKEN_DRIVERS
    ]
    if loaded:
        reports = [cost_report(store, config, w.start, w.end, drill) for w in (baseline, period)]
        total = (reports[0].total_cost_usd, reports[1].total_cost_usd)
        drivers_raw += _layer_drivers(reports, cells, drill, units)
        basis = "fully loaded"
    else:
        total = token_cost
        basis = "token"
    change = total[1] - total[0]
    drivers = [
        Driver(
            driver=name,
            change_usd=amount,
            share_pct=100 * amount / abs(change) if change else None,
            top_contributors=_top(per_dim, top, amount),
            detail=detail,
            mostly=_mostly(per_dim, amount),
        )
        for name, amount, per_dim, detail in drivers_raw
    ]
    residual = change - sum(d.change_usd for d in drivers)
    unpriced = {
        name: int(cells.loc[cells["window"] == w, "unpriced"].sum()) for name, w in (("baseline", 0), ("period", 1))
    }
    result = Explanation(
        period=period,
        baseline=baseline,
        basis=basis,
        cost_period_usd=total[1],
        cost_baseline_usd=total[0],
        drivers=drivers,
        residual_usd=residual,
        metrics={name: _metrics(cells, w, total[w]) for name, w in (("baseline", 0), ("period", 1))},
        unpriced_requests=unpriced,
    )
    return _with_summary(result)


def _layer_drivers(
    reports: list[CostReport], cells: pd.DataFrame, drill: list[str], units: tuple[float, ...]
) -> list[tuple[str, float, dict[str, dict[str | None, float]], dict[str, float]]]:
    """One driver per non-token layer (split into volume and rate), and the model API bill vs telemetry."""
    out: list[tuple[str, float, dict[str, dict[str | None, float]], dict[str, float]]] = []
    token_by_key: dict[str, list[dict[str | None, float]]] = {}
    cells = cells.assign(cost=cells[list(_COSTS)].sum(axis=1))
    for dim in drill:
        token_by_key[dim] = []
        for w in (0, 1):
            part = cells[cells["window"] == w].groupby(dim, dropna=False)["cost"].sum()
            token_by_key[dim].append({(None if pd.isna(k) else str(k)): float(v) for k, v in part.items()})
    token_total = [float(cells.loc[cells["window"] == w, "cost"].sum()) for w in (0, 1)]
    layers = sorted(set(reports[0].layers) | set(reports[1].layers))
    for layer in layers:
        c0, c1 = reports[0].layers.get(layer, 0.0), reports[1].layers.get(layer, 0.0)
        per_dim: dict[str, dict[str | None, float]] = {}
        for dim in drill:
            keyed: dict[str | None, float] = {}
            for w, sign in ((0, -1.0), (1, 1.0)):
                for row in reports[w].breakdown.get(dim, []):
                    amount = row.layers.get(layer, 0.0)
                    if layer == "model_api":
                        amount -= token_by_key[dim][w].get(row.key, 0.0)
                    keyed[row.key] = keyed.get(row.key, 0.0) + sign * amount
            per_dim[dim] = keyed
        if layer == "model_api":
            amount = (c1 - token_total[1]) - (c0 - token_total[0])
            out.append(("model_api_billing", amount, per_dim, {}))
            continue
        r0 = c0 / units[0] if units[0] else 0.0
        r1 = c1 / units[1] if units[1] else 0.0
        volume = (units[1] - units[0]) * (r0 + r1) / 2 if units[0] and units[1] else 0.0
        out.append((f"layer:{layer}", c1 - c0, per_dim, {"volume_usd": volume, "rate_usd": (c1 - c0) - volume}))
    return out


def _top(per_dim: dict[str, dict[str | None, float]], top: int, amount: float) -> list[Contributor]:
    """The largest contributors of each dimension (by absolute dollars), ``top`` per dimension.

    Ordered by dollars times the dimension's concentration (driver / sum of absolute parts), so a dimension
    whose keys mostly cancel out (an old release replaced by a new one) comes after one that explains it.
    """
    scored: list[tuple[float, Contributor]] = []
    for dim, keyed in per_dim.items():
        gross = sum(abs(v) for v in keyed.values())
        concentration = min(1.0, abs(amount) / gross) if gross else 0.0
        ranked = sorted(keyed.items(), key=lambda kv: (-abs(kv[1]), str(kv[0])))
        scored += [(abs(v) * concentration, Contributor(dim, k, v)) for k, v in ranked[:top] if abs(v) >= 0.005]
    return [c for _, c in sorted(scored, key=lambda sc: -sc[0])]


def _mostly(per_dim: dict[str, dict[str | None, float]], amount: float) -> list[Contributor]:
    """Per dimension, the key that carries at least half of the driver, when that dimension's parts do not
    mostly cancel out (their absolute sum is under 1.5x the driver); largest first."""
    out = []
    for dim, keyed in per_dim.items():
        if not keyed or not amount:
            continue
        key, value = max(keyed.items(), key=lambda kv: kv[1] / amount)
        gross = sum(abs(v) for v in keyed.values())
        if value / amount >= 0.5 and gross <= 1.5 * abs(amount):
            out.append(Contributor(dim, key, value))
    return sorted(out, key=lambda c: -abs(c.change_usd))


def _metrics(cells: pd.DataFrame, w: int, total: float) -> dict[str, float | None]:
    c = cells[cells["window"] == w]
    s = {k: float(c[k].sum()) for k in ("units", "requests", "model_calls", "input_tokens", "cache_read_tokens")}
    out_tokens = float(c["output_tokens"].sum())
    return {
        "cost_usd": total,
        "units_of_work": s["units"],
        "requests": s["requests"],
        "requests_per_unit": s["requests"] / s["units"] if s["units"] else None,
        "input_tokens_per_request": s["input_tokens"] / s["model_calls"] if s["model_calls"] else None,
        "output_tokens_per_request": out_tokens / s["model_calls"] if s["model_calls"] else None,
        "cached_share": s["cache_read_tokens"] / s["input_tokens"] if s["input_tokens"] else None,
        "response_cache_hit_rate": 1 - s["model_calls"] / s["requests"] if s["requests"] else None,
        "cost_per_unit_usd": total / s["units"] if s["units"] else None,
    }


def _with_summary(e: Explanation) -> Explanation:
    from dataclasses import replace

    return replace(e, summary=summarize(e))


def _money(v: float) -> str:
    return f"${v:,.0f}" if abs(v) >= 100 else f"${v:,.2f}"


def summarize(e: Explanation, drivers: int = 3) -> str:
    """The plain-language summary: the change, then the largest drivers with the keys behind them."""
    if e.change_pct is None:
        head = f"Cost went from {_money(e.cost_baseline_usd)} to {_money(e.cost_period_usd)}"
    else:
        verb = "rose" if e.change_usd >= 0 else "fell"
        head = (
            f"Cost {verb} {abs(e.change_pct):.1f}% ({_money(e.cost_baseline_usd)} -> {_money(e.cost_period_usd)}) "
            f"from {e.baseline.describe()} to {e.period.describe()}"
        )
    ranked = sorted(e.drivers, key=lambda d: -abs(d.change_usd))[:drivers]
    parts = []
    for d in ranked:
        if e.cost_baseline_usd and abs(d.change_usd) / e.cost_baseline_usd < 0.001:
            continue
        size = f"{100 * d.change_usd / e.cost_baseline_usd:+.1f} pts" if e.cost_baseline_usd else _money(d.change_usd)
        names = [f"{c.dimension} {c.key}" for c in d.mostly[:3]]
        words = DRIVER_WORDS.get(d.driver, d.driver.replace("layer:", "") + " layer")
        parts.append(f"{size} {words}" + (f", mostly {', '.join(names)}" if names else ""))
    return head + (": " + "; ".join(parts) + "." if parts else ".")
