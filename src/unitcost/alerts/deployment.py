"""Deployment regressions: did a new release or prompt version raise cost per request or per outcome?

A *change* is a release or prompt version that appears on a feature after another one (its first request is
the change time ``t0``); a release and a prompt version that appear within an hour of each other on the same
feature are one change. For each change:

* *before* = the feature's requests on the previous version in ``[t0 - window_days, t0)``, *after* = those on
  the new version in ``[t0, min(t0 + window_days, at))``;
* like for like: per model of the feature, mean cost per request on each side; the index is what the after
  requests cost over what the same requests (same models, same counts) cost at the before means::

      R = sum_m n1_m * mean1_m / sum_m n1_m * mean0_m

  with a delta-method standard error of ``log R`` (``var(A)/A^2 + var(B)/B^2``, each side's variance of the
  mean from its requests) and a two-sided z-test (requests per side are in the hundreds or more, so the
  normal approximation of the mean holds);
* cost per successful outcome (units of the feature whose last request is on the side's version): the
  ratio ``sum cost / sum successes`` on each side, with the ratio-estimator variance
  ``var(c - r s) / (n * mean(s)^2)`` (Cochran, *Sampling Techniques*, 3rd ed., 1977, section 6.3);
* a finding when either test rejects "no change" at ``alpha`` *and* the change is at least
  ``min_effect_pct``: a change within noise, or too small to matter, raises nothing.

The finding stays active until another version replaces the new one on that feature. Monthly impact is the
after side's extra cost per day (``A - B`` over its days) times 30.

Engine work: the version timelines and each side's per-model request moments come from the ``usage_hourly``
rollup (:func:`_first_seen`, :func:`_request_stats`; partial hours from the requests); each side's per-unit
statistics from one ``GROUP BY unit_id`` over its priced requests.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import ibis.expr.types as ir
from scipy.stats import norm

from unitcost.alerts.model import Finding, RuleContext
from unitcost.analysis.economics import _units, price_lookup
from unitcost.ledger.costs import build_ledger, usage_in_range
from unitcost.ledger.segments import COMPONENT_RATES, token_components
from unitcost.store import Store, rollups

VERSION_DIMENSIONS = ("release", "prompt_version")


@dataclass(frozen=True)
class Change:
    """A new version of a feature: when it started, what it replaced, and when it was itself replaced."""

    feature: str
    at: dt.datetime
    new: dict[str, str]
    old: dict[str, str]
    replaced_at: dt.datetime | None


def _first_seen(store: Store, lo: dt.datetime, hi: dt.datetime) -> ir.Table:
    """The first request in [lo, hi) of each (feature, release, prompt version) of a feature: whole hours from
    the ``usage_hourly`` rollup, the partial hours at either end from the requests."""
    u = usage_in_range(store, lo, hi)
    keys = ["feature", *VERSION_DIMENSIONS]
    h, edge = rollups.split_range(store, u, lo, hi) if rollups.edges_if_built(store) is not None else (None, u)
    parts = [] if edge is None else [edge.filter(edge.feature.notnull())]
    parts = [p.group_by(keys).aggregate(first=p.ts.min()) for p in parts]
    if h is not None:
        h = h.filter(h.feature.notnull())
        parts.append(h.group_by(keys).aggregate(first=h.first_ts.min()))
    if len(parts) == 1:
        return parts[0]
    both = parts[0].union(parts[1])
    return both.group_by(keys).aggregate(first=both.first.min())


def find_changes(ctx: RuleContext, lookback: dt.timedelta) -> list[Change]:
    """Version changes per feature whose first request falls in [since, at)."""
    # the first request of each (feature, release, prompt version), then of each version alone
    seen = _first_seen(ctx.store, ctx.since - lookback, ctx.at).to_pyarrow().to_pylist()
    first: dict[tuple[str, str, str], dt.datetime] = {}
    for g in seen:
        for dim in VERSION_DIMENSIONS:
            if g[dim] is not None:
                key = (g["feature"], g[dim], dim)
                first[key] = min(first.get(key, g["first"]), g["first"])
    rows: list[dict[str, Any]] = [{"feature": f, "version": v, "dim": d, "first": t} for (f, v, d), t in first.items()]
    changes: list[Change] = []
    for feature in sorted({r["feature"] for r in rows}):
        timeline = sorted((r for r in rows if r["feature"] == feature), key=lambda r: r["first"])
        # group the release and prompt-version switches that happen within an hour into one change
        groups: list[list[dict[str, Any]]] = []
        for r in timeline:
            if groups and r["first"] - groups[-1][0]["first"] <= dt.timedelta(hours=1):
                groups[-1].append(r)
            else:
                groups.append([r])
        current: dict[str, str] = {}
        for i, g in enumerate(groups):
            new = {r["dim"]: r["version"] for r in g}
            old = {d: current[d] for d in new if d in current}
            start = g[0]["first"]
            if old and start >= ctx.since:
                replaced = groups[i + 1][0]["first"] if i + 1 < len(groups) else None
                changes.append(Change(feature, start, new, old, replaced))
            current.update(new)
    return changes


@dataclass(frozen=True)
class _SideSpec:
    """The requests of one side of a change: a feature on a version, in [lo, hi)."""

    feature: str
    version: dict[str, str]
    lo: dt.datetime
    hi: dt.datetime


_NO_UNITS = {"n": 0, "c": 0.0, "s": 0.0, "cc": 0.0, "cs": 0.0}


def _side_requests(ctx: RuleContext, spec: _SideSpec) -> ir.Table:
    u = usage_in_range(ctx.store, spec.lo, spec.hi)
    return u.filter(u.feature == spec.feature, *[u[dim] == value for dim, value in spec.version.items()])


def _request_stats(ctx: RuleContext, spec: _SideSpec) -> dict[str, dict[str, Any]]:
    """Per model of one side, its priced requests' count ``n``, cost sum ``s`` and squared-cost sum ``ss``.

    Cost is linear in the price components inside a price segment, so the squared costs sum from the
    components' second moments: with rates v and fee f, sum (v.x + f)^2 = v'Mv + 2f v.S + n f^2. The moments of
    the side's whole hours come from the ``usage_hourly`` rollup, those of its partial hours from the requests.
    """
    _, seg, lookup = price_lookup(ctx.config, ctx.store, spec.lo, spec.hi)
    edges = rollups.edges_if_built(ctx.store)
    u: ir.Table | None = _side_requests(ctx, spec)
    assert u is not None
    letters = list(rollups.COMPONENT_SQL)  # the components in COMPONENTS order, as the rollup names them
    keys = ("provider", "model", "epoch", "bracket", "cache_hit")
    sums = ("requests", *(f"s_{a}" for a in letters), *rollups.MOMENTS)
    parts = []
    if edges is not None and rollups.covers(seg, edges):
        h, u = rollups.split_range(ctx.store, u, spec.lo, spec.hi)
        if h is not None:
            h = h.filter(h.feature == spec.feature, *[h[dim] == value for dim, value in spec.version.items()])
            component = dict(zip(letters, token_components(h).values(), strict=True))
            parts.append(
                h.group_by(
                    provider=h.provider, model=h.model, **rollups.segment_of(h, seg, edges), cache_hit=h.cache_hit
                ).aggregate(
                    requests=h.requests.sum(),
                    **{f"s_{a}": e.sum().cast("float64") for a, e in component.items()},
                    **{m: h[m].sum() for m in rollups.MOMENTS},
                )
            )
    if u is not None:
        x = {a: e.cast("float64") for a, e in zip(letters, token_components(u).values(), strict=True)}
        parts.append(
            u.group_by(
                provider=u.provider,
                model=u.model,
                **seg.of_requests(u),
                cache_hit=u.response_cache_hit.fill_null(False),
            ).aggregate(
                requests=u.count(),
                **{f"s_{a}": x[a].sum() for a in x},
                **{m: (x[m[2]] * x[m[3]]).sum() for m in rollups.MOMENTS},
            )
        )
    both = parts[0] if len(parts) == 1 else parts[0].union(parts[1].cast(parts[0].schema()))
    g = both.group_by(list(keys)).aggregate(**{c: both[c].sum() for c in sums})
    j = g.left_join(
        lookup,
        [g.provider == lookup.provider, g.model == lookup.model, g.epoch == lookup.epoch, g.bracket == lookup.bracket],
    )
    rates = COMPONENT_RATES
    rows = j.select(*[g[c] for c in (*keys, *sums)], *[j[c] for c in (*rates, "per_request_usd")]).to_pyarrow()
    out: dict[str, dict[str, Any]] = {}
    for row in rows.to_pylist():
        if not row["cache_hit"] and row["input_per_mtok"] is None:
            continue  # unpriced: left out, as the requests' path leaves them out
        m = out.setdefault(row["model"], {"model": row["model"], "n": 0, "s": 0.0, "ss": 0.0})
        n = int(row["requests"] or 0)
        m["n"] += n
        if row["cache_hit"]:
            continue  # answered from the response cache: priced at 0
        v = {a: float(row[rate]) / 1e6 for a, rate in zip(letters, rates, strict=True)}
        fee = float(row["per_request_usd"] or 0.0)
        linear = sum(v[a] * float(row[f"s_{a}"] or 0.0) for a in letters)
        quad = sum((1 if mm[2] == mm[3] else 2) * v[mm[2]] * v[mm[3]] * float(row[mm] or 0.0) for mm in rollups.MOMENTS)
        m["s"] += linear + fee * n
        m["ss"] += quad + 2 * fee * linear + n * fee * fee
    return out


def _sides(ctx: RuleContext, specs: list[_SideSpec]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Per-model request stats (:func:`_request_stats`) and per-unit outcome stats of each side.

    (One pass for all sides, labelling each request with its side, measured slower at 100M rows: the label is a
    CASE over strings on every request of the union of the sides' ranges, and the unit ``GROUP BY`` is as large.)
    """
    out = []
    for spec in specs:
        u = _side_requests(ctx, spec)
        r = build_ledger(ctx.store, ctx.config, spec.lo, spec.hi, usage=u).requests  # price only these requests
        r = r.filter(r.priced)
        units = _units(ctx.store, r, c=r.cost_usd.sum())  # each unit's cost and success, no join back to requests
        ok = units.success.cast("float64")
        agg = units.aggregate(
            n=units.count(), c=units.c.sum(), s=ok.sum(), cc=(units.c * units.c).sum(), cs=(units.c * ok).sum()
        )
        stats = agg.to_pyarrow().to_pylist()[0]
        out.append((_request_stats(ctx, spec), {k: stats[k] or v for k, v in _NO_UNITS.items()}))
    return out


def _request_index(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float] | None:
    models = [m for m in after if m in before and before[m]["n"] > 1 and after[m]["n"] > 1]
    if not models:
        return None
    a = b = var_a = var_b = 0.0
    n0 = n1 = 0
    for m in models:
        x0, x1 = before[m], after[m]
        mean0, mean1 = x0["s"] / x0["n"], x1["s"] / x1["n"]
        v0 = max(x0["ss"] / x0["n"] - mean0**2, 0.0) * x0["n"] / (x0["n"] - 1)
        v1 = max(x1["ss"] / x1["n"] - mean1**2, 0.0) * x1["n"] / (x1["n"] - 1)
        a += x1["n"] * mean1
        b += x1["n"] * mean0
        var_a += x1["n"] * v1
        var_b += x1["n"] ** 2 * v0 / x0["n"]
        n0 += x0["n"]
        n1 += x1["n"]
    if a <= 0 or b <= 0:
        return None
    ratio = a / b
    se = math.sqrt(var_a / a**2 + var_b / b**2)
    return {"ratio": ratio, "se_log": se, "a": a, "b": b, "n_before": n0, "n_after": n1, "models": len(models)}


def _outcome_ratio(side: dict[str, Any]) -> tuple[float, float] | None:
    """Cost per successful outcome and the variance of its log (ratio estimator)."""
    n, c, s = side["n"] or 0, side["c"] or 0.0, side["s"] or 0.0
    if n < 2 or s <= 0 or c <= 0:
        return None
    r = c / s
    # var(c - r s) per unit, from the sums: E[c^2] - 2 r E[cs] + r^2 E[s^2] (s is 0/1, so s^2 = s)
    resid = (side["cc"] - 2 * r * side["cs"] + r * r * s) / n - ((c - r * s) / n) ** 2
    var_r = max(resid, 0.0) * n / (n - 1) / (n * (s / n) ** 2)
    return r, var_r / r**2


def _test(ratio: float, se_log: float, alpha: float) -> dict[str, float]:
    z_crit = float(norm.ppf(0.975))
    z = math.log(ratio) / se_log if se_log > 0 else math.inf
    return {
        "change_pct": 100 * (ratio - 1),
        "ci95_low_pct": 100 * (math.exp(math.log(ratio) - z_crit * se_log) - 1),
        "ci95_high_pct": 100 * (math.exp(math.log(ratio) + z_crit * se_log) - 1),
        "p_value": float(2 * norm.sf(abs(z))) if math.isfinite(z) else 0.0,
    }


def deployment_rule(ctx: RuleContext) -> list[Finding]:
    """Findings for releases or prompt versions that raised cost per request or per successful outcome."""
    cfg = ctx.config.alerts.deployment
    if not cfg.enabled:
        return []
    window = dt.timedelta(days=cfg.window_days)
    findings = []
    changes = find_changes(ctx, window)
    ends = [min(ch.at + window, ctx.at, ch.replaced_at or ctx.at) for ch in changes]
    specs = [
        side
        for ch, end in zip(changes, ends, strict=True)
        for side in (_SideSpec(ch.feature, ch.old, ch.at - window, ch.at), _SideSpec(ch.feature, ch.new, ch.at, end))
    ]
    stats = _sides(ctx, specs)
    for k, (ch, end) in enumerate(zip(changes, ends, strict=True)):
        (before_models, before_units), (after_models, after_units) = stats[2 * k], stats[2 * k + 1]
        idx = _request_index(before_models, after_models)
        if idx is None or idx["n_before"] < cfg.min_requests or idx["n_after"] < cfg.min_requests:
            continue
        per_request = _test(idx["ratio"], idx["se_log"], cfg.alpha)
        o0, o1 = _outcome_ratio(before_units), _outcome_ratio(after_units)
        per_outcome = _test(o1[0] / o0[0], math.sqrt(o0[1] + o1[1]), cfg.alpha) if o0 and o1 else None
        fired = [
            name
            for name, t in (("cost per request", per_request), ("cost per successful outcome", per_outcome))
            if t and t["p_value"] < cfg.alpha and t["change_pct"] >= cfg.min_effect_pct
        ]
        if not fired:
            continue
        days = max((end - ch.at).total_seconds() / 86400, 1 / 24)
        impact = (idx["a"] - idx["b"]) / days * 30
        what = " and ".join(f"{d} {v}" for d, v in ch.new.items())
        was = " and ".join(f"{d} {v}" for d, v in ch.old.items())
        lead = per_request if "cost per request" in fired else per_outcome
        assert lead is not None
        message = (
            f"{what} raised {fired[0]} of {ch.feature} by {lead['change_pct']:.0f}% "
            f"(95% CI {lead['ci95_low_pct']:.0f}-{lead['ci95_high_pct']:.0f}%) against {was}, "
            f"about {'+' if impact >= 0 else '-'}${abs(impact):,.0f}/month"
        )
        findings.append(
            Finding(
                rule="deployment_regression",
                kind="deployment_regression",
                scope={"feature": ch.feature, **ch.new},
                started_at=ch.at,
                ended_at=ch.replaced_at if ch.replaced_at and ch.replaced_at <= ctx.at else None,
                impact_usd_per_month=impact,
                message=message,
                details={
                    "previous": ch.old,
                    "cost_per_request": per_request,
                    "cost_per_successful_outcome": per_outcome,
                    "requests_before": idx["n_before"],
                    "requests_after": idx["n_after"],
                    "models_compared": idx["models"],
                    "after_window": {"from": ch.at.isoformat(), "to": end.isoformat()},
                },
            )
        )
    return findings
