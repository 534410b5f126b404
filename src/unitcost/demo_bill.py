"""The demo company's bill and people time: a FOCUS 1.2 cost and usage table and ops-hours records.

Split from :mod:`unitcost.demo` (which builds the usage and outcomes and calls :func:`bill_table` and
:func:`ops_table`); docs/demo.md describes every family of bill lines and the people time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from unitcost.config import Config
from unitcost.demo import (
    _US_PER_H,
    EU,
    FEATURES,
    MODELS,
    REGIONS,
    REGRESSION_DAY,
    RELEASES,
    US,
    Floats,
    Ints,
    _expand,
    _Month,
    event_hour,
)
from unitcost.pricing.tokens import build_price_table
from unitcost.schema import TOKEN_COLUMNS

#: The self-hosted pool: AWS p5.4xlarge instances, one NVIDIA H100 each (illustrative us-east-1 prices).
GPU_POOL = "gpu-pool-a"
GPU_INSTANCE = "p5.4xlarge"
GPUS_PER_INSTANCE = 1
GPU_ON_DEMAND_USD_PER_H = 6.88
#: 1-year no-upfront reservation: a daily recurring fee, amortised onto the instance hours it covers
GPU_RESERVED_USD_PER_H = 4.30
GPU_RESERVED_INSTANCES = 2
#: on-demand instances added at the pool's busiest hour; proportionally fewer as its load falls
GPU_ON_DEMAND_PEAK = 3
#: Planted: from this day, for this many days, a job calls Anthropic without telemetry; its invoice is higher by
#: this factor than the telemetry's token cost.
UNTRACKED_DAY, UNTRACKED_DAYS, UNTRACKED_FACTOR = 9, 3, 1.25
#: API invoice lines differ from the telemetry's list-price token cost by up to this share (rounding, timing).
INVOICE_NOISE = 0.02
#: (usage provider id, FOCUS ProviderName, ServiceName, billing account)
API_PROVIDERS = (("openai", "OpenAI", "OpenAI API", "org-demo-co"), ("anthropic", "Anthropic", "Claude API", "demo-co"))

_DECIMAL = pa.decimal128(38, 10)
#: The FOCUS 1.2 columns of the demo bill, in order.
BILL_COLUMNS: tuple[str, ...] = (
    "BillingAccountId", "BillingAccountName", "BillingAccountType", "SubAccountId", "SubAccountName",
    "SubAccountType", "InvoiceId", "InvoiceIssuerName", "ProviderName", "PublisherName", "BillingPeriodStart",
    "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargeFrequency", "BilledCost", "EffectiveCost", "ListCost", "ContractedCost",
    "BillingCurrency", "PricingCategory", "PricingQuantity", "PricingUnit", "ListUnitPrice", "ContractedUnitPrice",
    "ConsumedQuantity", "ConsumedUnit", "CommitmentDiscountId", "CommitmentDiscountName", "CommitmentDiscountType",
    "CommitmentDiscountCategory", "CommitmentDiscountStatus", "CommitmentDiscountQuantity", "CommitmentDiscountUnit",
    "ServiceCategory", "ServiceSubcategory", "ServiceName", "SkuId", "SkuPriceId", "SkuMeter", "RegionId",
    "RegionName", "AvailabilityZone", "ResourceId", "ResourceName", "ResourceType", "Tags",
)  # fmt: skip
_TIMES = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")
_MONEY = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
_DECIMALS = (*_MONEY, "PricingQuantity", "ListUnitPrice", "ContractedUnitPrice", "ConsumedQuantity",
             "CommitmentDiscountQuantity")  # fmt: skip

_AWS = {
    "ProviderName": "AWS", "PublisherName": "AWS", "InvoiceIssuerName": "AWS", "BillingAccountId": "111122223333",
    "BillingAccountName": "Demo Co", "BillingAccountType": "Billing Account", "SubAccountId": "444455556666",
    "SubAccountName": "llm-production", "SubAccountType": "Linked Account", "BillingCurrency": "USD",
    "RegionId": "us-east-1", "RegionName": "US East (N. Virginia)", "InvoiceId": "AWS-US",
}  # fmt: skip
#: The EU entity's account, billed in EUR.
_AWS_EU = _AWS | {
    "InvoiceIssuerName": "Amazon Web Services EMEA SARL", "BillingAccountId": "777788889999",
    "BillingAccountName": "Demo Co Europe GmbH", "SubAccountId": "222233334444", "SubAccountName": "llm-production-eu",
    "BillingCurrency": "EUR", "RegionId": "eu-west-1", "RegionName": "Europe (Ireland)", "InvoiceId": "AWS-EU",
}  # fmt: skip
_TAGS = '{"env": "production", "team": "ai-platform"}'
_POOL_TAGS = f'{{"env": "production", "team": "ml-platform", "pool": "{GPU_POOL}"}}'
_EC2 = {
    "ServiceName": "Amazon Elastic Compute Cloud", "ServiceCategory": "Compute",
    "ServiceSubcategory": "Virtual Machines", "Tags": _POOL_TAGS,
}  # fmt: skip
_INSTANCE_HOUR = {
    "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based", "PricingQuantity": 1.0, "PricingUnit": "Hours",
    "ConsumedQuantity": 1.0, "ConsumedUnit": "Hours", "ListUnitPrice": GPU_ON_DEMAND_USD_PER_H,
    "ContractedUnitPrice": GPU_ON_DEMAND_USD_PER_H, "ListCost": GPU_ON_DEMAND_USD_PER_H,
    "ContractedCost": GPU_ON_DEMAND_USD_PER_H, "ResourceType": "Instance", "AvailabilityZone": "us-east-1a",
    "SkuId": "8QZ4KX2M7RJN3WTP", "SkuMeter": "Instance Hours",
}  # fmt: skip
_RESERVATION = {
    "PricingCategory": "Committed",
    "CommitmentDiscountId": "arn:aws:ec2:us-east-1:444455556666:reserved-instances/7c1e5f0a-2d4b-4e8c-9a61-gpupoola",
    "CommitmentDiscountName": f"{GPU_POOL} {GPU_INSTANCE} x{GPU_RESERVED_INSTANCES}, 1 year, no upfront",
    "CommitmentDiscountType": "Reserved Instance", "CommitmentDiscountCategory": "Usage",
}  # fmt: skip
_DAY = np.timedelta64(24 * _US_PER_H, "us")
_HOUR = np.timedelta64(_US_PER_H, "us")


def untracked_days(days: int) -> range:
    """Return the days (from the start) on which the planted untracked Anthropic calls happen.

    >>> untracked_days(30), untracked_days(7)
    (range(9, 12), range(3, 4))
    """
    first = -(-event_hour(UNTRACKED_DAY, days) // 24)  # the first whole day from the (scaled) event hour
    n = UNTRACKED_DAYS if days >= 30 else max(1, UNTRACKED_DAYS * days // 30)
    return range(first, min(first + n, days))


class _Lines:
    """Bill lines gathered family by family, typed once: a column is one value for every line or an array."""

    def __init__(self, month: _Month) -> None:
        self.day = np.datetime64(month.start, "us") + np.arange(month.days) * _DAY
        self.blocks: list[tuple[int, dict[str, Any]]] = []

    def add(self, start: NDArray[np.datetime64], length: np.timedelta64, account: dict[str, str], **cols: Any) -> None:
        """Lines charged from ``start`` for ``length``, in the billing period and invoice of their month."""
        month = start.astype("datetime64[M]")
        invoice = np.char.add(f"{account['InvoiceId']}-", np.datetime_as_string(month).astype(str))
        cols |= {"ChargePeriodStart": start, "ChargePeriodEnd": start + length, "InvoiceId": invoice}
        cols |= {
            "BillingPeriodStart": month.astype("datetime64[us]"),
            "BillingPeriodEnd": (month + 1).astype("datetime64[us]"),
        }
        if start.size:
            self.blocks.append((start.size, account | cols))

    def daily(self, account: dict[str, str], **cols: Any) -> None:
        """One line per day (array values have one entry per day); days with a zero cost are left out."""
        keep = np.broadcast_to(np.asarray(cols["BilledCost"]) != 0, self.day.shape)
        cols = {k: v[keep] if isinstance(v, np.ndarray) and v.shape == self.day.shape else v for k, v in cols.items()}
        self.add(self.day[keep], _DAY, account, ChargeFrequency=cols.pop("ChargeFrequency", "Usage-Based"), **cols)

    def table(self) -> pa.Table:
        """The bill: FOCUS types (Decimal as decimal128(38, 10), costs to the micro-unit), lines in time order."""
        arrays = {}
        for name in BILL_COLUMNS:
            kind = pa.timestamp("us") if name in _TIMES else _DECIMAL if name in _DECIMALS else pa.string()
            parts = []
            for n, cols in self.blocks:
                value = cols.get(name)
                if value is None:
                    parts.append(pa.nulls(n, kind))
                elif kind == _DECIMAL:
                    rounded = np.round(
                        np.broadcast_to(np.asarray(value, np.float64), (n,)), 6 if name in _MONEY else 10
                    )
                    parts.append(pa.array(rounded, pa.float64()).cast(kind))
                else:
                    parts.append(pa.array(np.broadcast_to(np.asarray(value, object), (n,)), kind))
            arrays[name] = pa.concat_arrays(parts)
        table = pa.table(arrays)
        return table.take(pa.array(np.argsort(table.column("ChargePeriodStart").to_numpy(), kind="stable")))


def _per_day(usage: pa.Table, month: _Month) -> Ints:
    """The day (from the start) of each usage row."""
    ts = usage.column("ts").to_numpy()
    return ((ts - np.datetime64(month.start, "us")) // _DAY).astype(np.int64)


def api_token_cost(usage: pa.Table, month: _Month) -> tuple[Floats, Floats]:
    """Return list-price token cost (USD) and tokens of each API model per day, as the telemetry prices them.

    Both are ``(days, len(MODELS))`` arrays; the self-hosted model's columns are zero.
    """
    names = [m[0] for m in MODELS]
    model = pc.index_in(usage.column("model"), value_set=pa.array(names)).to_numpy(zero_copy_only=False)
    ts = usage.column("ts").to_numpy()
    tokens = {c: usage.column(c).to_numpy() for c in TOKEN_COLUMNS}
    cache_hit = usage.column("response_cache_hit").to_numpy(zero_copy_only=False)
    begin = dt.datetime.combine(month.start, dt.time())
    pairs = [(m[1], m[0]) for m in MODELS if m[2] == "api"]
    prices = build_price_table(pairs, Config(), begin, begin + dt.timedelta(days=month.days))
    cost = np.zeros(ts.size)
    for p in prices.to_arrow().to_pylist():
        inside = (
            (model == names.index(p["model"]))
            & (ts >= np.datetime64(p["valid_from"], "us"))
            & (ts < np.datetime64(p["valid_to"], "us"))
            & (tokens["input_tokens"] > p["input_tokens_above"])
            & (tokens["input_tokens"] <= p["input_tokens_upto"])
            & ~cache_hit
        )
        t = {c: v[inside] for c, v in tokens.items()}
        uncached = t["input_tokens"] - t["cache_read_tokens"] - t["cache_write_tokens"]
        rate = {k: float(v) for k, v in p.items() if k.endswith(("_per_mtok", "_usd"))}
        cost[inside] = (
            uncached * rate["input_per_mtok"]
            + t["cache_read_tokens"] * rate["cache_read_per_mtok"]
            + t["cache_write_tokens"] * rate["cache_write_per_mtok"]
            + (t["output_tokens"] - t["reasoning_tokens"]) * rate["output_per_mtok"]
            + t["reasoning_tokens"] * rate["reasoning_per_mtok"]
        ) / 1e6 + rate["per_request_usd"]
    cell = _per_day(usage, month) * len(MODELS) + model
    size = month.days * len(MODELS)
    by_day = np.bincount(cell, weights=cost, minlength=size).astype(np.float64)
    volume = np.bincount(cell, weights=tokens["input_tokens"] + tokens["output_tokens"], minlength=size)
    return by_day.reshape(month.days, len(MODELS)), volume.astype(np.float64).reshape(month.days, len(MODELS))


def _api_invoices(lines: _Lines, rng: np.random.Generator, usage: pa.Table, month: _Month) -> None:
    """Daily lines per model from OpenAI and Anthropic: the telemetry's cost within ±2%, plus the planted gap."""
    cost, tokens = api_token_cost(usage, month)
    noise = 1 + rng.uniform(-INVOICE_NOISE, INVOICE_NOISE, cost.shape)
    untracked = np.isin(np.arange(month.days), untracked_days(month.days)) & month.incidents
    for provider, name, service, account in API_PROVIDERS:
        for m in (i for i, spec in enumerate(MODELS) if spec[1] == provider):
            factor = noise[:, m] * np.where(untracked & (provider == "anthropic"), UNTRACKED_FACTOR, 1.0)
            billed = np.round(cost[:, m] * factor, 6)
            volume = tokens[:, m]
            quantity = volume / 1e6
            unit_price = np.divide(billed, quantity, out=np.zeros_like(billed), where=quantity > 0)
            lines.daily(
                {"ProviderName": name, "PublisherName": name, "InvoiceIssuerName": name, "BillingCurrency": "USD",
                 "BillingAccountId": account, "BillingAccountName": "Demo Co", "BillingAccountType": "Organization",
                 "SubAccountId": "proj-production", "SubAccountName": "production", "SubAccountType": "Project",
                 "InvoiceId": f"{name[:3].upper()}-{account}"},
                ChargeCategory="Usage", ChargeDescription=f"{MODELS[m][0]}: input, cached input and output tokens",
                BilledCost=billed, EffectiveCost=billed, ListCost=billed, ContractedCost=billed,
                PricingCategory="Standard", PricingQuantity=quantity, PricingUnit="1M Tokens",
                ListUnitPrice=unit_price, ContractedUnitPrice=unit_price, ConsumedQuantity=volume,
                ConsumedUnit="Tokens", ServiceCategory="AI and Machine Learning",
                ServiceSubcategory="Generative AI", ServiceName=service, SkuId=MODELS[m][0], SkuMeter="Tokens",
                Tags='{"env": "production"}',
            )  # fmt: skip


def gpu_pool_hours(usage: pa.Table, month: _Month) -> tuple[Ints, Ints]:
    """Return the pool's reserved and on-demand instances in each hour of the month.

    On-demand instances follow the self-hosted model's load (its GPU-seconds per hour in the usage): up to
    ``GPU_ON_DEMAND_PEAK`` at the busiest hour, none when the load is under a sixth of the peak.
    """
    ts = usage.column("ts").to_numpy()
    hour = ((ts - np.datetime64(month.start, "us")) // _HOUR).astype(np.int64)
    gpu_seconds = np.nan_to_num(usage.column("gpu_seconds").to_numpy(zero_copy_only=False).astype(np.float64))
    load = np.bincount(hour, weights=gpu_seconds, minlength=month.hours)[: month.hours]
    peak = load.max(initial=0.0)
    on_demand = np.rint(GPU_ON_DEMAND_PEAK * load / peak) if peak > 0 else np.zeros(month.hours)
    return np.full(month.hours, GPU_RESERVED_INSTANCES, dtype=np.int64), on_demand.astype(np.int64)


def _gpu_pool(lines: _Lines, usage: pa.Table, month: _Month) -> None:
    """Hourly instance lines of gpu-pool-a (reserved: amortised; on demand) and the reservation's daily fee."""
    reserved, on_demand = gpu_pool_hours(usage, month)
    hour_start = np.datetime64(month.start, "us") + np.arange(month.hours) * _HOUR
    for kind, count in (("reserved", reserved), ("on-demand", on_demand)):
        hour, slot = _expand(count)
        commitment = (
            _RESERVATION | {"CommitmentDiscountStatus": "Used", "CommitmentDiscountQuantity": 1.0,
                            "CommitmentDiscountUnit": "Hours"}
            if kind == "reserved"
            else {"PricingCategory": "Standard"}
        )  # fmt: skip
        lines.add(
            hour_start[hour], _HOUR, _AWS, **_EC2, **_INSTANCE_HOUR, **commitment,
            ChargeDescription=f"{GPU_INSTANCE} Linux instance hour ({GPUS_PER_INSTANCE}x NVIDIA H100), "
            + ("reserved instance applied" if kind == "reserved" else "On Demand"),
            BilledCost=0.0 if kind == "reserved" else GPU_ON_DEMAND_USD_PER_H,
            EffectiveCost=GPU_RESERVED_USD_PER_H if kind == "reserved" else GPU_ON_DEMAND_USD_PER_H,
            ResourceId=np.char.add(f"i-0{kind[0]}7f3c9e2b41d00", slot.astype(str)).astype(object),
            ResourceName=np.char.add(f"{GPU_POOL}-{kind}-", (slot + 1).astype(str)).astype(object),
        )  # fmt: skip
    fee = GPU_RESERVED_INSTANCES * 24 * GPU_RESERVED_USD_PER_H
    lines.daily(
        _AWS, **_EC2, **_RESERVATION, ChargeCategory="Purchase", ChargeFrequency="Recurring",
        ChargeDescription=f"{GPU_INSTANCE} reserved instances x{GPU_RESERVED_INSTANCES}: recurring fee, 1 year, "
        "no upfront", BilledCost=fee, EffectiveCost=0.0, ListCost=fee, ContractedCost=fee,
        PricingQuantity=GPU_RESERVED_INSTANCES * 24.0, PricingUnit="Hours", ListUnitPrice=GPU_RESERVED_USD_PER_H,
        ContractedUnitPrice=GPU_RESERVED_USD_PER_H, ResourceId=_RESERVATION["CommitmentDiscountId"],
        ResourceType="Reserved Instance",
    )  # fmt: skip


def _requests_per_day(usage: pa.Table, month: _Month) -> tuple[Floats, Floats]:
    """Requests per day from us-east-1 and from eu-west-1 tenants."""
    day = _per_day(usage, month)
    eu = pc.equal(usage.column("region"), REGIONS[EU]).to_numpy(zero_copy_only=False)
    per = np.bincount(day * 2 + eu, minlength=2 * month.days).reshape(month.days, 2).astype(np.float64)
    return per[:, US], per[:, EU]


def _metered(price: float, quantity: Floats | float, unit: str) -> dict[str, Any]:
    """Cost columns of a daily usage line: ``quantity`` units at the list ``price``."""
    cost = np.round(np.asarray(quantity) * price, 6)
    return {
        "ChargeCategory": "Usage", "BilledCost": cost, "EffectiveCost": cost, "ListCost": cost,
        "ContractedCost": cost, "PricingCategory": "Standard", "PricingQuantity": quantity, "PricingUnit": unit,
        "ListUnitPrice": price, "ContractedUnitPrice": price, "ConsumedQuantity": quantity, "ConsumedUnit": unit,
    }  # fmt: skip


def _infrastructure(lines: _Lines, usage: pa.Table, month: _Month) -> None:
    """The vector database, object storage, egress, monitoring (partly in EUR) and the Kubernetes clusters."""
    us, eu = _requests_per_day(usage, month)
    requests = us + eu
    calendar_month = lines.day.astype("datetime64[M]")
    days_in_month = ((calendar_month + 1).astype("datetime64[D]") - calendar_month.astype("datetime64[D]")).astype(
        np.float64
    )
    search = {"ServiceName": "Amazon OpenSearch Service", "ServiceCategory": "Analytics",
              "ServiceSubcategory": "Search", "ResourceType": "Domain"}  # fmt: skip
    for domain, nodes, node_type, price, tags in (
        ("kb-vectors", 3, "r6g.xlarge.search", 0.335, '{"env": "production", "feature": "knowledge-search"}'),
        ("support-articles", 2, "r6g.large.search", 0.167, _TAGS),
    ):
        resource = f"arn:aws:es:us-east-1:444455556666:domain/{domain}"
        lines.daily(
            _AWS, **search, **_metered(price, np.full(month.days, 24.0 * nodes), "Hours"),
            ChargeDescription=f"{node_type} instance hours ({nodes} data nodes, vector index)", SkuId=node_type,
            ResourceId=resource, ResourceName=domain, Tags=tags,
        )  # fmt: skip
        lines.daily(
            _AWS, **search, **_metered(0.122, 200.0 * nodes / days_in_month, "GB-Mo"),
            ChargeDescription=f"gp3 storage for {domain} (200 GB per data node)", SkuId="ES:gp3-GB-Mo",
            ResourceId=resource, ResourceName=domain, Tags=tags,
        )  # fmt: skip
    s3 = {"ServiceName": "Amazon Simple Storage Service", "ServiceCategory": "Storage",
          "ServiceSubcategory": "Object Storage", "ResourceId": "arn:aws:s3:::demo-co-llm-transcripts",
          "ResourceName": "demo-co-llm-transcripts", "ResourceType": "Bucket", "Tags": _TAGS}  # fmt: skip
    stored_gb = 1800.0 + np.cumsum(requests) * 0.00012  # transcripts, prompts and documents: ~120 kB per request
    lines.daily(
        _AWS, **s3, **_metered(0.023, stored_gb / days_in_month, "GB-Mo"), SkuId="TimedStorage-ByteHrs",
        ChargeDescription="$0.023 per GB-month of storage used, S3 Standard, first 50 TB",
    )  # fmt: skip
    lines.daily(
        _AWS, **s3, **_metered(0.005 / 1000, requests * 3.0, "Requests"), SkuId="Requests-Tier1",
        ChargeDescription="$0.005 per 1,000 PUT, COPY, POST or LIST requests",
    )  # fmt: skip
    lines.daily(
        _AWS, **_metered(0.09, 12.0 + requests * 0.0006, "GB"), ServiceName="AWS Data Transfer",
        ServiceCategory="Networking", ServiceSubcategory="Network Connectivity", SkuId="DataTransfer-Out-Bytes",
        ChargeDescription="$0.090 per GB data transfer out to the internet, first 10 TB / month", Tags=_TAGS,
    )  # fmt: skip
    watch = {"ServiceName": "Amazon CloudWatch", "ServiceCategory": "Management and Governance",
             "ServiceSubcategory": "Observability", "Tags": _TAGS}  # fmt: skip
    for account, region_requests, per_gb, per_metric in ((_AWS, us, 0.50, 0.30), (_AWS_EU, eu, 0.53, 0.28)):
        unit = "USD" if account is _AWS else "EUR"
        lines.daily(
            account, **watch, **_metered(per_gb, 0.8 + region_requests * 0.00006, "GB"), SkuId="DataProcessing-Bytes",
            ChargeDescription=f"{unit} {per_gb:.2f} per GB of logs ingested (prompts, completions, traces)",
        )  # fmt: skip
        lines.daily(
            account, **watch, **_metered(per_metric, 250.0 / days_in_month, "Metrics"), SkuId="CW:MetricMonitorUsage",
            ChargeDescription=f"{unit} {per_metric:.2f} per custom metric-month (250 metrics)",
        )  # fmt: skip
        lines.daily(
            account, **_metered(0.10 if account is _AWS else 0.093, np.full(month.days, 24.0), "Hours"),
            ServiceName="Amazon Elastic Kubernetes Service", ServiceCategory="Compute", ServiceSubcategory="Containers",
            SkuId="AmazonEKS-Hours:perCluster", ResourceType="Cluster", Tags=_TAGS,
            ResourceName=f"llm-prod-{account['RegionId']}", ChargeDescription="EKS cluster control plane hours",
        )  # fmt: skip
    lines.daily(
        _AWS, **_metered(3.5 / 1e6, requests, "Requests"), ServiceName="Amazon API Gateway",
        ServiceCategory="Integration", ServiceSubcategory="API Management", SkuId="ApiGatewayRequest", Tags=_TAGS,
        ChargeDescription="$3.50 per million API calls received (first 333 million)",
    )  # fmt: skip


def bill_table(rng: np.random.Generator, usage: pa.Table, month: _Month) -> pa.Table:
    """A FOCUS 1.2 cost and usage table for the month, consistent with ``usage``."""
    lines = _Lines(month)
    _gpu_pool(lines, usage, month)
    _api_invoices(lines, rng, usage, month)
    _infrastructure(lines, usage, month)
    return lines.table()


SRES, ML_ENGINEERS = ("alex", "sam"), ("maria", "jon")


def ops_table(month: _Month) -> pa.Table:
    """People time: on-call (shared), the prompt-regression incident, release work, prompt tuning, evaluations."""
    records: list[tuple[Any, ...]] = []  # (day, activity, hours, role, person, feature, release, note)
    weekday = [(month.start.weekday() + d) % 7 for d in range(month.days)]
    for d in range(month.days):
        records.append((d, "on-call", 1.5 if weekday[d] < 5 else 0.5, "sre", SRES[d // 7 % 2], None, None, None))
        if weekday[d] in (1, 3):  # support-bot answers are tuned twice a week
            records.append((d, "prompt-tuning", 1.5, "ml-engineer", ML_ENGINEERS[0], "support-bot", None, None))
        if weekday[d] == 0:  # weekly evaluation runs, one per feature
            records += [(d, "evaluation", 1.0, "ml-engineer", ML_ENGINEERS[1], f, None, None) for f in FEATURES]
    names = month.release_names
    for i, (feature, release_day, _number, _prompt) in enumerate(RELEASES):
        d = event_hour(release_day, month.days) // 24
        if release_day == 0 or d >= month.days:
            continue
        records += [
            (max(d - 1, 0), "evaluation", 1.0, "ml-engineer", ML_ENGINEERS[1], FEATURES[feature], names[i], None),
            (d, "release", 2.0, "ml-engineer", ML_ENGINEERS[0], FEATURES[feature], names[i], None),
            (d, "release", 1.0, "sre", SRES[0], FEATURES[feature], names[i], None),
        ]
    regression = event_hour(REGRESSION_DAY, month.days) // 24
    release = names[next(i for i, r in enumerate(RELEASES) if r[3] == "support-v14")]
    note = '{"incident": "INC-1042", "summary": "support-bot prompt support-v14 raised input tokens a third"}'
    for d, sre_hours, ml_hours in ((regression, 4.0, 5.0), (regression + 1, 2.0, 4.0), (regression + 2, 1.5, 1.5)):
        if d < month.days and month.incidents:
            records += [
                (d, "incident", sre_hours, "sre", SRES[1], "support-bot", release, note),
                (d, "incident", ml_hours, "ml-engineer", ML_ENGINEERS[0], "support-bot", release, note),
            ]
    records.sort(key=lambda r: (r[0], r[1], r[3]))
    fields = ("day", "activity", "hours", "role", "person", "feature", "release", "attributes")
    col = dict(zip(fields, (list(c) for c in zip(*records, strict=True)), strict=True))
    n = len(records)
    return pa.table(
        {
            "date": pa.array([month.start + dt.timedelta(days=d) for d in col["day"]], pa.date32()),
            "activity": pa.array(col["activity"], pa.string()),
            "hours": pa.array(col["hours"], pa.float64()),
            "hourly_rate_usd": pa.nulls(n, pa.float64()),  # the role's rate: people.rates in unitcost.yaml
            **{c: pa.array(col[c], pa.string()) for c in ("role", "person", "feature")},
            "tenant": pa.nulls(n, pa.string()),
            **{c: pa.array(col[c], pa.string()) for c in ("release", "attributes")},
        }
    )
