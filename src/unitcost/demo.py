"""The demo company: a deterministic, synthetic but realistic month of LLM usage and outcomes.

A B2B SaaS company runs three LLM features for 40 customer tenants (heavy-tailed volumes,
one power tenant, ``acme``):

- ``support-bot``: a ticket (trace ``tkt-...``) is a ``triage`` call (gpt-4o-mini), one or more
  ``answer`` turns on a small model (the self-hosted ``llama-3.1-70b-support-ft`` on
  ``gpu-pool-a`` for us-east-1 tenants, ``claude-haiku-4-5`` for eu-west-1 tenants), an
  ``escalation`` to ``claude-sonnet-4-5`` for hard tickets, and a ``handoff`` summary when a
  human takes over. Outcome: ``success`` = resolved ticket ($6), ``escalated`` to a human,
  ``abandoned`` or ``failure``.
- ``knowledge-search``: a question (trace ``ks-...``) is an ``embeddings`` call
  (text-embedding-3-small) plus an ``answer`` (gpt-4o-mini, or gpt-4o in deep mode); a few %
  are answered from the application response cache (``response_cache_hit``, no tokens). About
  half the questions get feedback: an outcome row, ``success`` = answer accepted ($1.5).
- ``proposal-drafting``: a workflow run (trace ``prop-...``): ``outline`` and ``research``
  (gpt-4o-mini, research at ``batch`` priority), ``draft`` (gpt-4.1) and ``review``
  (claude-sonnet-4-5 with extended thinking: reasoning tokens). ``success`` = proposal sent ($40).

The month also has a FOCUS 1.2 bill (``DemoData.bill``: the self-hosted GPU pool ``gpu-pool-a``, a vector
database, object storage, egress, monitoring partly billed in EUR, a Kubernetes cluster, and the OpenAI and
Anthropic invoices, which match the telemetry's token cost within 2%) and people time (``DemoData.ops``:
on-call, an incident, releases, prompt tuning, evaluations); docs/demo.md has the families and figures.

Arrivals follow each tenant region's business hours (weekday peak, quiet weekends). Token
lengths are drawn from the Azure LLM inference traces (CC-BY-4.0, Patel et al., "Splitwise",
ISCA 2024; quantiles in ``unitcost/data/azure_token_quantiles.json``) and scaled per use case.
Some calls fail and are retried (``attempt`` 2, 3).

Planted events (day ``d`` = ``start + d days`` 00:00 UTC; with ``days < 30`` every day is
scaled by ``days / 30`` and rounded down to the hour, so events stay inside the range):

1. day 18, ``prompt-regression``: support-bot switches from prompt ``support-v13`` to
   ``support-v14`` with release ``<yyyy>.<m>.4``; input tokens per chat call rise by ~33%.
2. day 22, ``cache-drop``: knowledge-search release ``<yyyy>.<m>.5`` (prompt ``search-v8`` puts
   the time at the top of the prompt): the prompt-cache read share of input falls from ~50%
   to ~10%.
3. day 25, ``onboarding-spike``: new tenant ``northwind`` (no rows before) sends the volume of
   a top-3 tenant from its first business day, mostly on support-bot.
4. days 9-11, ``untracked-anthropic-calls``: a job calls Anthropic without telemetry; the bill's Anthropic
   cost is 25% above the telemetry's token cost on those days.
5. no-op releases that change nothing in cost: proposal-drafting ``<yyyy>.<m>.2`` (day 7),
   knowledge-search ``<yyyy>.<m>.3`` (day 12), proposal-drafting ``<yyyy>.<m>.6`` (day 27).

>>> data = generate(days=7, requests=2_000, seed=1)
>>> data.usage.schema == arrow_schema(USAGE), abs(data.usage.num_rows - 2_000) < 100
(True, True)
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from unitcost.demo_columns import Floats, Ints, arrow_schema, float_column, ids, string_column
from unitcost.errors import UnitcostError
from unitcost.schema import OUTCOMES, TOKEN_COLUMNS, USAGE

Bools = NDArray[np.bool_]
Progress = Callable[[str, float], None]

#: The configuration the demo needs: a price for the self-hosted model genai-prices cannot know, the rate of
#: the bill's EUR lines and the loaded hourly cost of the roles in the ops records.
CONFIG_YAML = """\
# unitcost.yaml for the demo company
prices:
  overrides:
    - {provider: self-hosted, model: llama-3.1-70b-support-ft, input_per_mtok: 0.60, output_per_mtok: 0.80}
currency_rates: {EUR: 1.08}   # USD per EUR, for the bill lines of the EU account
people:
  rates: {sre: 120, ml-engineer: 140}   # loaded USD per hour
pools:   # the self-hosted model's GPUs: capacity from the pool's instance-hours on the bill, one H100 each
  - {name: gpu-pool-a, gpus_per_instance: 1}
budgets:   # fully loaded USD per month; unitcost watch warns when the month-end projection crosses one
  - {name: company-month, amount_usd: 34000}
  - {name: support-bot-month, scope: {feature: support-bot}, amount_usd: 11000}
value:   # what one successful outcome is worth, for ROI and break-even (unitcost review)
  - {feature: support-bot, per_outcome_usd: 6.0, note: a resolved ticket a human agent did not handle}
  - {feature: knowledge-search, minutes_saved_per_outcome: 1.5, hourly_rate_usd: 60, note: an accepted answer}
  - {feature: proposal-drafting, per_outcome_usd: 40.0, note: a proposal sent (a qualified lead)}
"""

US, EU = 0, 1
REGIONS = ("us-east-1", "eu-west-1")
#: UTC offset of each region's business day in October (EDT, IST).
REGION_UTC_OFFSET_H = (-4, 1)
#: (tenant, region). The first is the power tenant; the rest have Zipf-like volumes.
TENANTS = (
    ("acme", US), ("globex", US), ("initech", US), ("umbrella", EU), ("hooli", US), ("stark", US),
    ("wayne", US), ("wonka", EU), ("cyberdyne", US), ("tyrell", US), ("aperture", US), ("soylent", EU),
    ("oscorp", US), ("vandelay", US), ("dunder-mifflin", US), ("pied-piper", US), ("bluth", US),
    ("massive-dynamic", EU), ("nakatomi", US), ("weyland", EU), ("black-mesa", US), ("virtucon", EU),
    ("sterling-cooper", US), ("planet-express", US), ("monsters-inc", US), ("krusty-krab", EU),
    ("gringotts", EU), ("spacely", US), ("cogswell", US), ("wernham-hogg", EU), ("paper-street", US),
    ("oceanic", US), ("nuka-cola", US), ("prestige-worldwide", US), ("los-pollos", US), ("duff", EU),
    ("bubba-gump", US), ("gekko", US), ("octan", EU), ("northwind", US),
)  # fmt: skip
TENANT_NAMES = tuple(t for t, _ in TENANTS)
NEW_TENANT = len(TENANTS) - 1  # northwind

FEATURES = ("support-bot", "knowledge-search", "proposal-drafting")
SUPPORT, KNOWLEDGE, PROPOSAL = 0, 1, 2
TRACE_PREFIX = ("tkt-", "ks-", "prop-")
USE_CASES = ("resolved support ticket", "accepted knowledge answer", "sent sales proposal")
VALUE_USD = (6.0, 1.5, 40.0)
#: Share of usage rows per feature.
ROW_SHARE = (0.56, 0.34, 0.10)

WORKFLOWS = (
    "triage", "answer", "escalation", "handoff", "retrieve", "outline", "research", "draft", "review",
)  # fmt: skip
W_TRIAGE, W_ANSWER, W_ESCALATION, W_HANDOFF, W_RETRIEVE, W_OUTLINE, W_RESEARCH, W_DRAFT, W_REVIEW = range(9)

#: model, provider, serving, first-token ms, ms per output token, prefill ms per 1k input tokens.
MODELS = (
    ("gpt-4o-mini", "openai", "api", 350.0, 9.0, 25.0),
    ("gpt-4o", "openai", "api", 500.0, 16.0, 40.0),
    ("gpt-4.1", "openai", "api", 550.0, 14.0, 35.0),
    ("text-embedding-3-small", "openai", "api", 40.0, 0.0, 8.0),
    ("claude-sonnet-4-5", "anthropic", "api", 900.0, 20.0, 45.0),
    ("claude-haiku-4-5", "anthropic", "api", 450.0, 8.0, 20.0),
    ("llama-3.1-70b-support-ft", "self-hosted", "gpu-pool-a", 180.0, 24.0, 60.0),
)
MINI, GPT4O, GPT41, EMBED, SONNET, HAIKU, LLAMA = range(7)
ANTHROPIC_MODELS = (SONNET, HAIKU)
#: GPUs per replica of the self-hosted model / requests it serves at once.
GPU_SECONDS_PER_SECOND = 4 / 12

OUTCOME_NAMES = ("success", "failure", "escalated", "abandoned")
SUCCESS, FAILURE, ESCALATED, ABANDONED = range(4)
PRIORITIES = ("interactive", "batch")
ATTRIBUTES = (
    '{"channel": "web"}', '{"channel": "email"}', '{"channel": "slack"}', '{"top_k": 12}',
    '{"response_cache": "semantic"}', '{"crm": "salesforce"}', '{"crm": "hubspot"}',
    '{"error": "rate_limit"}', '{"error": "server_error"}', '{"error": "timeout"}',
)  # fmt: skip
A_WEB, A_TOPK, A_CACHE, A_CRM, A_ERROR = 0, 3, 4, 5, 7

#: (feature, day, release number, prompt version); release number n is named <year>.<month>.n.
RELEASES = (
    (SUPPORT, 0, 1, "support-v13"), (KNOWLEDGE, 0, 1, "search-v7"), (PROPOSAL, 0, 1, "proposal-v3"),
    (PROPOSAL, 7, 2, "proposal-v3"), (KNOWLEDGE, 12, 3, "search-v7"), (SUPPORT, 18, 4, "support-v14"),
    (KNOWLEDGE, 22, 5, "search-v8"), (PROPOSAL, 27, 6, "proposal-v3"),
)  # fmt: skip
REGRESSION_DAY, CACHE_DROP_DAY, ONBOARDING_DAY = 18, 22, 25
PROMPT_REGRESSION_FACTOR = 4 / 3
PROMPT_VERSIONS = tuple(dict.fromkeys(r[3] for r in RELEASES))
NO_OP_RELEASES = (2, 3, 6)

_US_PER_H = 3_600_000_000
_US_PER_MS = 1000


class DemoError(ValueError, UnitcostError):
    """The demo cannot be generated with the arguments given."""


@dataclass(frozen=True)
class PlantedEvent:
    """A change planted in the demo data that analyses should (or, for no-op releases, should not) flag."""

    name: str
    description: str
    start: dt.datetime
    expected_effect: str
    feature: str | None = None
    tenant: str | None = None
    prompt_version: str | None = None
    release: str | None = None
    expects_alert: bool = True


@dataclass(frozen=True)
class DemoData:
    """The demo company's canonical tables, its bill and people time, planted events and configuration.

    ``bill`` is a FOCUS 1.2 cost and usage table for the same days (``unitcost ingest focus``),
    ``ops`` the people-time records (``unitcost ingest ops``).
    """

    usage: pa.Table
    outcomes: pa.Table
    events: tuple[PlantedEvent, ...]
    config_yaml: str
    bill: pa.Table
    ops: pa.Table


class DemoFiles(NamedTuple):
    """The Parquet files :func:`write_parquet` wrote, one per table, with the format that ingests each."""

    usage: Path  # format "usage"
    outcomes: Path  # format "outcomes"
    bill: Path  # format "focus"
    ops: Path  # format "ops"


@dataclass
class _Units:
    """One row per unit of work (ticket, question, proposal) of one feature."""

    tenant: Ints
    t0_us: Ints
    release: Ints  # index into RELEASES
    user: Ints
    outcome: Ints  # -1: no outcome row
    attribute: Ints


@dataclass
class _Calls:
    """One row per logical model call (before retries); ``unit`` is sorted."""

    unit: Ints
    workflow: Ints
    model: Ints
    attempts: Ints
    gives_up: Bools
    input_tokens: Ints
    cache_read_tokens: Ints
    cache_write_tokens: Ints
    output_tokens: Ints
    reasoning_tokens: Ints
    gap_ms: Floats
    priority: Ints
    cache_hit: Bools


@dataclass(frozen=True)
class _Month:
    """The time frame and the tenant mix shared by every feature."""

    start: dt.date
    days: int
    hours: int
    intensity: Floats  # (region, hour) arrival weight
    tenant_weight: Floats  # (feature, tenant) share of units, northwind included
    users_per_tenant: Ints
    user_offset: Ints
    user_ids: tuple[str, ...]
    #: False: a quiet month with none of the planted incidents (no-op releases only), to measure false alarms
    incidents: bool = True

    @property
    def release_names(self) -> tuple[str, ...]:
        """The name of each entry of RELEASES: ``<year>.<month>.<number>``."""
        return tuple(f"{self.start.year}.{self.start.month}.{r[2]}" for r in RELEASES)


def event_hour(day: int, days: int) -> int:
    """Return the hour (from ``start``) of an event planned for ``day`` in a run of ``days`` days.

    >>> event_hour(18, 30), event_hour(18, 10)
    (432, 144)
    """
    return day * 24 if days >= 30 else day * days * 24 // 30


@lru_cache(maxsize=1)
def token_quantiles() -> dict[str, dict[str, Floats]]:
    """Return the Azure trace quantiles: ``{"conv"|"code": {"context_tokens"|"generated_tokens": q}}``."""
    text = resources.files("unitcost").joinpath("data/azure_token_quantiles.json").read_text()
    traces = json.loads(text)["traces"]
    return {
        name: {col: np.asarray(trace[col], dtype=np.float64) for col in ("context_tokens", "generated_tokens")}
        for name, trace in traces.items()
    }


def _draw(rng: np.random.Generator, trace: str, column: str, n: int) -> Floats:
    """Token counts drawn by inverse-CDF interpolation over a trace's quantiles."""
    q = token_quantiles()[trace][column]
    return np.interp(rng.random(n) * (q.size - 1), np.arange(q.size), q)


def _tokens(x: Floats) -> Ints:
    return np.maximum(np.rint(x), 1).astype(np.int64)


def _expand(counts: Ints) -> tuple[Ints, Ints]:
    """For groups of ``counts`` rows: each row's group index and its index within the group."""
    parent = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    return parent, np.arange(parent.size, dtype=np.int64) - starts[parent]


def _attempts(rng: np.random.Generator, n: int, p_fail: float | Floats) -> Ints:
    """Tries per call: a failed try is retried (at most 3 tries); a retry fails again 25% of the time."""
    first = rng.random(n) < p_fail
    again = first & (rng.random(n) < 0.25)
    return 1 + first.astype(np.int64) + again.astype(np.int64)


def _keep_units(rows_per_unit: Ints, target_rows: int) -> int:
    """How many leading units make ``target_rows`` rows (units are i.i.d., so a prefix is a fair sample)."""
    total = np.cumsum(rows_per_unit)
    return min(int(np.searchsorted(total, target_rows)) + 1, rows_per_unit.size)


def _cache_split(
    rng: np.random.Generator, input_tokens: Ints, model: Ints, a: float | Floats, b: float | Floats
) -> tuple[Ints, Ints]:
    """Prompt-cache reads (a Beta(a, b) share of input) and, on Anthropic, writes; none when self-hosted."""
    share = rng.beta(a, b, input_tokens.size) * (model != LLAMA)
    read = np.floor(input_tokens * share).astype(np.int64)
    write_share = np.where(np.isin(model, ANTHROPIC_MODELS), rng.beta(2, 6, input_tokens.size), 0.0)
    write = np.floor((input_tokens - read) * write_share).astype(np.int64)
    return read, write


def _month(rng: np.random.Generator, days: int, start: dt.date, incidents: bool = True) -> _Month:
    """Arrival intensity per region and hour, tenant weights per feature and user pools."""
    hours = days * 24
    utc_hour = np.arange(hours, dtype=np.int64)
    intensity = np.empty((len(REGIONS), hours))
    for region, offset in enumerate(REGION_UTC_OFFSET_H):
        local = utc_hour + offset
        hour_of_day = np.mod(local, 24)
        weekday = np.mod(start.weekday() + np.floor_divide(local, 24), 7)
        diurnal = (
            0.06
            + np.exp(-0.5 * ((hour_of_day - 10.5) / 2.0) ** 2)
            + 0.9 * np.exp(-0.5 * ((hour_of_day - 15.0) / 2.3) ** 2)
        )
        weekly = np.where(weekday == 5, 0.36, np.where(weekday == 6, 0.30, 1.0))
        growth = 1.0 + 0.004 * utc_hour / 24
        intensity[region] = diurnal * weekly * growth
    n_old = len(TENANTS) - 1
    base = np.arange(1, n_old + 1) ** -1.05 * rng.lognormal(0.0, 0.25, n_old)
    base[0] = 1.15  # the power tenant: about 28% of all rows
    weight = np.zeros((len(FEATURES), len(TENANTS)))
    for feature in range(len(FEATURES)):
        w = base * rng.lognormal(0.0, 0.45, n_old)
        w[0] = base[0]
        if feature == PROPOSAL:
            w[1:] *= rng.random(n_old - 1) > 0.35  # not every tenant buys proposal drafting
        weight[feature, :n_old] = w / w.sum()
    # northwind: from its first day, about the daily rows of the third largest tenant (x1.1)
    onboarding = event_hour(ONBOARDING_DAY, days)
    active = intensity[US, onboarding:].sum() / intensity[US].sum()
    third = np.sort(weight[:, :n_old].T @ np.asarray(ROW_SHARE))[-3]
    for feature, part in ((SUPPORT, 0.92), (KNOWLEDGE, 0.08)):
        share = 1.1 * third * part * active / ROW_SHARE[feature] if incidents else 0.0
        weight[feature, :n_old] *= 1.0 - share
        weight[feature, NEW_TENANT] = share
    overall = weight.T @ np.asarray(ROW_SHARE)
    users = np.clip(np.rint(4000 * overall), 8, 600).astype(np.int64)
    users[NEW_TENANT] = 150
    user_ids = tuple(f"{name}-u{k:04d}" for name, count in zip(TENANT_NAMES, users, strict=True) for k in range(count))
    return _Month(start, days, hours, intensity, weight, users, np.cumsum(users) - users, user_ids, incidents)


def _units(rng: np.random.Generator, month: _Month, feature: int, tenant: Ints, outcome: Ints) -> _Units:
    """Arrival times, release and user of units whose tenant and outcome are drawn."""
    n = tenant.size
    region = np.asarray([r for _, r in TENANTS])[tenant]
    new = tenant == NEW_TENANT
    t0_hour = np.empty(n, dtype=np.int64)
    onboarding = event_hour(ONBOARDING_DAY, month.days)
    groups = (
        (~new & (region == US), month.intensity[US]),
        (~new & (region == EU), month.intensity[EU]),
        (new, np.where(np.arange(month.hours) >= onboarding, month.intensity[US], 0.0)),
    )
    for mask, intensity in groups:  # inverse-CDF sampling of the arrival hour
        cdf = np.cumsum(intensity)
        u = rng.random(int(mask.sum())) * cdf[-1]
        t0_hour[mask] = np.minimum(np.searchsorted(cdf, u, side="right"), month.hours - 1)
    t0_us = t0_hour * _US_PER_H + (rng.random(n) * _US_PER_H).astype(np.int64)
    releases = [i for i, r in enumerate(RELEASES) if r[0] == feature]
    edges = np.asarray([event_hour(RELEASES[i][1], month.days) * _US_PER_H for i in releases])
    release = np.asarray(releases)[np.searchsorted(edges, t0_us, side="right") - 1]
    user = month.user_offset[tenant] + np.floor(month.users_per_tenant[tenant] * rng.random(n) ** 1.8).astype(np.int64)
    return _Units(tenant, t0_us, release, user, outcome, np.zeros(n, dtype=np.int64))


def _calls(unit: Ints, workflow: Ints, model: Ints, attempts: Ints) -> _Calls:
    """A call table with the structure set and every token count still zero."""
    n = unit.size
    zeros = np.zeros(n, dtype=np.int64)
    return _Calls(
        unit, workflow, model, attempts, np.zeros(n, dtype=bool), zeros, zeros.copy(), zeros.copy(),
        zeros.copy(), zeros.copy(), np.zeros(n), zeros.copy(), np.zeros(n, dtype=bool),
    )  # fmt: skip


def _support(rng: np.random.Generator, month: _Month, target_rows: int) -> tuple[_Units, _Calls]:
    """Support tickets: triage, answer turns, escalation to a large model, handoff to a human."""
    n = int(target_rows / 3.8 * 1.2) + 50
    tenant = rng.choice(len(TENANTS), n, p=month.tenant_weight[SUPPORT])
    model_escalated = rng.random(n) < 0.28
    human = rng.random(n) < np.where(model_escalated, 0.35, 0.06)
    r = rng.random(n)
    outcome = np.where(human, ESCALATED, np.where(r < 0.09, ABANDONED, np.where(r < 0.14, FAILURE, SUCCESS)))
    turns = 1 + np.where(outcome == ABANDONED, rng.poisson(0.5, n), np.minimum(rng.poisson(1.7, n), 7))
    calls_per_unit = 1 + turns + human
    unit, index = _expand(calls_per_unit)
    small = np.where(np.asarray([r for _, r in TENANTS])[tenant] == US, LLAMA, HAIKU)
    escalation_turn = 1 + np.floor(rng.random(n) * turns).astype(np.int64)
    large = model_escalated[unit] & (index >= escalation_turn[unit]) & (index <= turns[unit])
    workflow = np.where(
        index == 0,
        W_TRIAGE,
        np.where(index > turns[unit], W_HANDOFF, np.where(large, W_ESCALATION, W_ANSWER)),
    )
    model = np.where(workflow == W_TRIAGE, MINI, np.where(large, SONNET, small[unit]))
    attempts = _attempts(rng, unit.size, np.where(model == SONNET, 0.045, 0.025))
    keep = _keep_units(np.bincount(unit, weights=attempts, minlength=n).astype(np.int64), target_rows)
    units = _units(rng, month, SUPPORT, tenant[:keep], outcome[:keep])
    units.attribute = A_WEB + rng.choice(3, keep, p=[0.6, 0.3, 0.1])
    m = int(np.searchsorted(unit, keep))
    c = _calls(unit[:m], workflow[:m], model[:m], attempts[:m])
    turn = index[:m]
    # prompt: system + tool definitions + policies, retrieved articles, the conversation so far
    context = _draw(rng, "conv", "context_tokens", m)
    answer_in = 3200 + 4200 * rng.lognormal(0, 0.35, m) + 1.5 * context + 350 * turn
    regressed = np.asarray([r[3] == "support-v14" for r in RELEASES])[units.release[c.unit]] & month.incidents
    factor = np.where(regressed, PROMPT_REGRESSION_FACTOR, 1.0)
    c.input_tokens = _tokens(
        factor
        * np.select(
            [c.workflow == W_TRIAGE, c.workflow == W_ESCALATION, c.workflow == W_HANDOFF],
            [700 + 0.6 * context, 1.3 * answer_in, 0.8 * answer_in],
            answer_in,
        )
    )
    generated = _draw(rng, "conv", "generated_tokens", m)
    c.output_tokens = _tokens(
        np.select(
            [c.workflow == W_TRIAGE, c.workflow == W_ESCALATION, c.workflow == W_HANDOFF],
            [4 + _draw(rng, "code", "generated_tokens", m), 1.6 * generated, 120 + 0.8 * generated],
            generated,
        )
    )
    c.cache_read_tokens, c.cache_write_tokens = _cache_split(
        rng, c.input_tokens, c.model, np.where(turn > 1, 6.0, 3.0), np.where(turn > 1, 4.0, 6.0)
    )
    think_ms = 1000 * rng.lognormal(np.log(45), 0.8, m)  # the customer reads and types
    c.gap_ms = np.select([turn == 0, turn == 1, c.workflow == W_HANDOFF], [0.0, 150.0, 900.0], think_ms)
    return units, c


def _knowledge(rng: np.random.Generator, month: _Month, target_rows: int) -> tuple[_Units, _Calls]:
    """Knowledge-search questions: an embeddings call and an answer, sometimes from the response cache."""
    n = int(target_rows / 2.0 * 1.2) + 50
    tenant = rng.choice(len(TENANTS), n, p=month.tenant_weight[KNOWLEDGE])
    cache_hit = rng.random(n) < 0.04
    deep = ~cache_hit & (rng.random(n) < 0.3)
    gives_up = ~cache_hit & (rng.random(n) < 0.006)
    accept = rng.random(n) < np.where(deep, 0.86, np.where(cache_hit, 0.8, 0.76))
    feedback = rng.random(n) < 0.55
    outcome = np.where(feedback, np.where(accept & ~gives_up, SUCCESS, FAILURE), -1)
    unit, index = _expand(np.full(n, 2, dtype=np.int64))
    answer = index == 1
    model = np.where(answer, np.where(deep[unit], GPT4O, MINI), EMBED)
    attempts = np.where(gives_up[unit] & answer, 3, _attempts(rng, unit.size, 0.02))
    attempts = np.where(cache_hit[unit] & answer, 1, attempts)
    keep = _keep_units(np.bincount(unit, weights=attempts, minlength=n).astype(np.int64), target_rows)
    units = _units(rng, month, KNOWLEDGE, tenant[:keep], outcome[:keep])
    units.attribute = np.full(keep, A_TOPK)
    m = 2 * keep
    c = _calls(unit[:m], np.where(answer[:m], W_ANSWER, W_RETRIEVE), model[:m], attempts[:m])
    c.gives_up = gives_up[c.unit] & answer[:m]
    c.cache_hit = cache_hit[c.unit] & answer[:m]
    question = 6 + 0.25 * _draw(rng, "conv", "generated_tokens", m)
    chunks = 900 + 3.0 * _draw(rng, "code", "context_tokens", m) + 2400 * rng.lognormal(0, 0.3, m)
    c.input_tokens = np.where(c.cache_hit, 0, _tokens(np.where(answer[:m], chunks + question, question)))
    c.output_tokens = np.where(answer[:m] & ~c.cache_hit, _tokens(_draw(rng, "conv", "generated_tokens", m)), 0)
    dropped = np.asarray([r[3] == "search-v8" for r in RELEASES])[units.release[c.unit]] & month.incidents
    read, write = _cache_split(
        rng, c.input_tokens, c.model, np.where(dropped, 1.5, 10.0), np.where(dropped, 13.5, 10.0)
    )
    c.cache_read_tokens = np.where(answer[:m], read, 0)
    c.cache_write_tokens = np.where(answer[:m], write, 0)
    c.gap_ms = np.where(answer[:m], 20 + 40 * rng.random(m), 0.0)
    return units, c


def _proposal(rng: np.random.Generator, month: _Month, target_rows: int) -> tuple[_Units, _Calls]:
    """Proposal workflow runs: outline, research steps, drafts and a review with extended thinking."""
    n = int(target_rows / 6.7 * 1.2) + 50
    tenant = rng.choice(len(TENANTS), n, p=month.tenant_weight[PROPOSAL])
    r = rng.random(n)
    outcome = np.where(r < 0.25, ABANDONED, np.where(r < 0.45, FAILURE, SUCCESS))
    research = 2 + np.minimum(rng.poisson(1.6, n), 5)
    drafts = 1 + (rng.random(n) < 0.35)
    review = outcome != ABANDONED
    unit, index = _expand(1 + research + drafts + review)
    workflow = np.select(
        [index == 0, index <= research[unit], index <= research[unit] + drafts[unit]],
        [W_OUTLINE, W_RESEARCH, W_DRAFT],
        W_REVIEW,
    )
    model = np.select([workflow == W_DRAFT, workflow == W_REVIEW], [GPT41, SONNET], MINI)
    attempts = _attempts(rng, unit.size, np.where(model == MINI, 0.02, 0.04))
    keep = _keep_units(np.bincount(unit, weights=attempts, minlength=n).astype(np.int64), target_rows)
    units = _units(rng, month, PROPOSAL, tenant[:keep], outcome[:keep])
    units.attribute = A_CRM + (rng.random(keep) < 0.3)
    m = int(np.searchsorted(unit, keep))
    c = _calls(unit[:m], workflow[:m], model[:m], attempts[:m])
    w = c.workflow
    context = _draw(rng, "conv", "context_tokens", m)
    documents = _draw(rng, "code", "context_tokens", m)
    generated = _draw(rng, "conv", "generated_tokens", m)
    c.input_tokens = _tokens(
        np.select(
            [w == W_OUTLINE, w == W_RESEARCH, w == W_DRAFT],
            [1500 + context, 800 + 3.0 * documents, 14000 + 4.0 * documents + 2.0 * context],
            9000 + 4.0 * documents,
        )
    )
    c.output_tokens = _tokens(
        np.select(
            [w == W_OUTLINE, w == W_RESEARCH, w == W_DRAFT],
            [2.0 * generated, 1.5 * generated, np.minimum(9.0 * generated, 7000)],
            250 + 3.0 * generated,
        )
    )
    c.reasoning_tokens = np.where(w == W_REVIEW, np.floor(c.output_tokens * rng.beta(5, 5, m)).astype(np.int64), 0)
    second_draft = (w == W_DRAFT) & (np.roll(w, 1) == W_DRAFT)
    c.cache_read_tokens, c.cache_write_tokens = _cache_split(
        rng,
        c.input_tokens,
        c.model,
        np.select([w == W_RESEARCH, second_draft, w == W_DRAFT], [2.0, 8.0, 2.0], 0.5),
        np.select([w == W_RESEARCH, second_draft, w == W_DRAFT], [6.0, 4.0, 8.0], 20.0),
    )
    c.gap_ms = np.where(w == W_OUTLINE, 0.0, 500 + 2500 * rng.random(m))
    c.priority = (w == W_RESEARCH).astype(np.int64)
    return units, c


def _rows(rng: np.random.Generator, month: _Month, feature: int, units: _Units, calls: _Calls) -> dict[str, Any]:
    """Expand calls into tried rows with status, latency and timestamps; also each unit's end time."""
    call, within = _expand(calls.attempts)
    attempt = within + 1
    error = (attempt < calls.attempts[call]) | calls.gives_up[call]
    n = call.size
    model = calls.model[call]
    unit = calls.unit[call]
    cols: dict[str, Any] = {name: getattr(calls, name)[call] for name in TOKEN_COLUMNS}
    cols["output_tokens"] = np.where(
        error, np.minimum(cols["output_tokens"], rng.integers(0, 16, n)), cols["output_tokens"]
    )
    cols["reasoning_tokens"] = np.where(error, 0, cols["reasoning_tokens"])
    spec = np.asarray([m[3:] for m in MODELS])  # ttft, per-token, prefill per 1k
    ttft = spec[model, 0] * rng.lognormal(0, 0.3, n) + spec[model, 2] * cols["input_tokens"] / 1000
    latency = ttft + spec[model, 1] * cols["output_tokens"] * rng.lognormal(0, 0.2, n)
    timeout = error & (rng.random(n) < 0.3)
    latency = np.where(
        error,
        np.where(timeout, 30000 + 2000 * rng.random(n), np.minimum(latency, 150 + 700 * rng.random(n))),
        latency,
    )
    cache_hit = calls.cache_hit[call]
    latency = np.where(cache_hit, 3 + 20 * rng.random(n), latency)
    ttft = np.minimum(ttft, latency)
    ttft = np.where(cache_hit, latency, ttft)
    gap = np.where(attempt == 1, calls.gap_ms[call], 500.0 * 2.0 ** (attempt - 2) * (1 + rng.random(n)))
    # rows of a unit are contiguous and sequential: each starts after the previous one ends + a gap
    step = gap + latency
    before = np.cumsum(step) - step
    rows_per_unit = np.bincount(unit, minlength=units.tenant.size)
    first_row = np.cumsum(rows_per_unit) - rows_per_unit
    start_ms = before - before[first_row][unit] + gap
    last_row = first_row + rows_per_unit - 1
    end_ms = start_ms[last_row] + latency[last_row]
    # a unit that would end after the last hour is moved earlier as a whole
    shift = np.maximum(units.t0_us + (end_ms * _US_PER_MS).astype(np.int64) - (month.hours * _US_PER_H - 1), 0)
    t0 = units.t0_us - shift
    cols["ts_us"] = t0[unit] + (start_ms * _US_PER_MS).astype(np.int64)
    cols["latency_ms"] = np.round(latency, 1)
    cols["ttft_ms"] = np.where(model == EMBED, np.nan, np.round(ttft, 1))
    cols["gpu_seconds"] = np.where(
        model == LLAMA,
        np.round(latency / 1000 * GPU_SECONDS_PER_SECOND * rng.lognormal(0, 0.15, n), 4),
        np.nan,
    )
    error_kind = A_ERROR + np.where(timeout, 2, (rng.random(n) < 0.6).astype(np.int64))
    cols["attribute"] = np.where(
        error, error_kind, np.where(cache_hit, A_CACHE, np.where(model == EMBED, -1, units.attribute[unit]))
    )
    end_us = t0 + (end_ms * _US_PER_MS).astype(np.int64)
    trace_number = np.empty_like(t0)
    trace_number[np.argsort(t0, kind="stable")] = np.arange(t0.size)  # ids follow arrival order
    cols.update(
        trace=trace_number[unit], feature=np.full(n, feature), workflow=calls.workflow[call], model=model,
        attempt=attempt, error=error, cache_hit=cache_hit, priority=calls.priority[call],
        tenant=units.tenant[unit], release=units.release[unit], user=units.user[unit],
        # per unit, for the outcomes table
        unit_end_us=end_us, unit_trace=trace_number, unit_outcome=units.outcome, unit_tenant=units.tenant,
    )  # fmt: skip
    return cols


def _events(month: _Month) -> tuple[PlantedEvent, ...]:
    """The planted events with their times for this run."""
    begin = dt.datetime(month.start.year, month.start.month, month.start.day)
    names = month.release_names

    def at(day: int) -> dt.datetime:
        return begin + dt.timedelta(hours=event_hour(day, month.days))

    no_op = tuple(
        PlantedEvent(
            f"no-op-release-{names[i]}",
            f"{FEATURES[feature]} release {names[i]} changes nothing that affects cost or outcomes.",
            at(day),
            "none: tokens, cost and outcome rates stay as before (an alert here is a false positive)",
            feature=FEATURES[feature], prompt_version=prompt, release=names[i], expects_alert=False,
        )
        for i, (feature, day, number, prompt) in enumerate(RELEASES)
        if number in NO_OP_RELEASES or (not month.incidents and day > 0)
    )  # fmt: skip
    if not month.incidents:  # a quiet month: every release is a no-op
        return tuple(sorted(no_op, key=lambda e: e.start))
    regression = next(i for i, r in enumerate(RELEASES) if r[3] == "support-v14")
    gap = untracked_days(month.days)
    cache_drop = next(i for i, r in enumerate(RELEASES) if r[3] == "search-v8")
    return (
        PlantedEvent(
            "prompt-regression",
            "support-bot switches to prompt support-v14 (from support-v13) in a new release; the new "
            "prompt is a third longer.",
            at(REGRESSION_DAY),
            "support-bot input tokens per chat call +33%; cost per request and per resolved ticket up",
            feature="support-bot", prompt_version="support-v14", release=names[regression],
        ),
        PlantedEvent(
            "cache-drop",
            "knowledge-search prompt search-v8 puts the current time at the top of the prompt, so the "
            "provider's prompt cache rarely matches.",
            at(CACHE_DROP_DAY),
            "knowledge-search cache_read share of input tokens falls from ~50% to ~10%; input cost up",
            feature="knowledge-search", prompt_version="search-v8", release=names[cache_drop],
        ),
        PlantedEvent(
            "untracked-anthropic-calls",
            f"A ticket re-summarisation job calls Anthropic without unitcost telemetry for {len(gap)} "
            f"day{'s' if len(gap) > 1 else ''}, so the Anthropic invoice is higher than the telemetry's token cost.",
            begin + dt.timedelta(days=gap.start),
            f"the bill's Anthropic cost is ~{UNTRACKED_FACTOR - 1:.0%} above the telemetry's token cost on those days "
            f"(every other provider-day within ±{INVOICE_NOISE:.0%}); reconciling bill and telemetry should flag it",
            feature=None,
        ),
        PlantedEvent(
            "onboarding-spike",
            "New tenant northwind starts and at once sends the volume of a top-3 tenant, mostly "
            "support tickets.",
            at(ONBOARDING_DAY),
            "northwind appears with no history; support-bot requests and GPU-pool load jump",
            feature="support-bot", tenant=TENANT_NAMES[NEW_TENANT],
        ),
        *sorted(no_op, key=lambda e: e.start),
    )  # fmt: skip


def generate(
    days: int = 30,
    requests: int = 1_000_000,
    seed: int = 7,
    start: dt.date = dt.date(2026, 10, 1),
    progress: Progress | None = None,
    incidents: bool = True,
) -> DemoData:
    """Return the demo company's usage (about ``requests`` rows over ``days`` days) and outcomes.

    The same arguments always give the same tables. ``progress(stage, fraction)`` is called a
    handful of times, never per row. ``incidents=False`` gives a quiet month: the same company with
    none of the planted incidents (every release changes nothing), to measure alert false-alarm rates.

    >>> d = generate(days=2, requests=500, seed=3)
    >>> sorted(set(d.usage.column("feature").to_pylist()))
    ['knowledge-search', 'proposal-drafting', 'support-bot']
    """
    if days < 1 or requests < 1:
        raise DemoError(f"days and requests must be at least 1, got days={days}, requests={requests}")

    def report(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(stage, fraction)

    report("tenants", 0.0)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(FEATURES) + 2)]
    month = _month(rngs[len(FEATURES)], days, start, incidents)
    parts = []
    for feature, make in enumerate((_support, _knowledge, _proposal)):
        report(FEATURES[feature], 0.05 + 0.2 * feature)
        target = max(1, round(requests * ROW_SHARE[feature]))
        units, calls = make(rngs[feature], month, target)
        parts.append(_rows(rngs[feature], month, feature, units, calls))
    report("usage table", 0.65)
    start_us = (start - dt.date(1970, 1, 1)).days * 24 * _US_PER_H
    usage = _usage_table(parts, month, start_us)
    report("outcomes table", 0.85)
    outcomes = _outcomes_table(parts, start_us)
    report("bill and people time", 0.92)
    bill = bill_table(rngs[-1], usage, month)
    ops = ops_table(month)
    report("done", 1.0)
    return DemoData(usage, outcomes, _events(month), CONFIG_YAML, bill, ops)


def _usage_table(parts: list[dict[str, Any]], month: _Month, start_us: int) -> pa.Table:
    """The usage table: rows in time order, request ids numbered in that order."""
    order = np.argsort(np.concatenate([p["ts_us"] for p in parts]), kind="stable")
    traces = pa.concat_arrays([ids(TRACE_PREFIX[i], p.pop("trace"), 8) for i, p in enumerate(parts)])

    def col(name: str) -> Any:  # each row column is used once: free it as it is taken
        return np.concatenate([p.pop(name) for p in parts])[order]

    n = order.size
    model, error, tenant, release = col("model"), col("error"), col("tenant"), col("release")
    columns: dict[str, pa.Array] = {
        "ts": pa.array((start_us + col("ts_us")).astype("datetime64[us]")),
        "request_id": ids("req-", np.arange(n, dtype=np.int64), 9),
        "trace_id": traces.take(pa.array(order)),
        "tenant": string_column(tenant, TENANT_NAMES),
        "feature": string_column(col("feature"), FEATURES),
        "workflow": string_column(col("workflow"), WORKFLOWS),
        "user_id": string_column(col("user"), month.user_ids),
        "environment": string_column(np.zeros(n, dtype=np.int64), ("production",)),
        "region": string_column(np.asarray([r for _, r in TENANTS])[tenant], REGIONS),
        "release": string_column(release, month.release_names),
        "prompt_version": string_column(
            np.asarray([PROMPT_VERSIONS.index(r[3]) for r in RELEASES])[release], PROMPT_VERSIONS
        ),
        "provider": string_column(model, tuple(m[1] for m in MODELS)),
        "model": string_column(model, tuple(m[0] for m in MODELS)),
        "operation": string_column((model == EMBED).astype(np.int64), ("chat", "embeddings")),
    }
    for name in TOKEN_COLUMNS:
        columns[name] = pa.array(col(name), pa.int64())
    columns["latency_ms"] = float_column(col("latency_ms"))
    columns["ttft_ms"] = float_column(col("ttft_ms"))
    columns["status"] = string_column(error.astype(np.int64), ("ok", "error"))
    columns["attempt"] = pa.array(col("attempt"), pa.int32())
    columns["response_cache_hit"] = pa.array(col("cache_hit"), pa.bool_())
    columns["serving"] = string_column(model, tuple(m[2] for m in MODELS))
    columns["priority"] = string_column(col("priority"), PRIORITIES)
    columns["gpu_seconds"] = float_column(col("gpu_seconds"))
    # response payload: about 4 bytes per output token plus the envelope
    columns["egress_bytes"] = pa.array(columns["output_tokens"].to_numpy() * 4 + 800, pa.int64())
    columns["reported_cost_usd"] = pa.nulls(n, pa.float64())
    columns["attributes"] = string_column(col("attribute"), ATTRIBUTES)
    return pa.table(columns, schema=arrow_schema(USAGE))


def _outcomes_table(parts: list[dict[str, Any]], start_us: int) -> pa.Table:
    """The outcomes table: one row per unit of work that has an outcome, in time order."""
    chunks = []
    for feature, p in enumerate(parts):
        has = p["unit_outcome"] >= 0
        outcome = p["unit_outcome"][has]
        n = int(has.sum())
        value = np.where(outcome == SUCCESS, VALUE_USD[feature], np.nan)
        chunks.append(
            pa.table(
                {
                    "trace_id": ids(TRACE_PREFIX[feature], p["unit_trace"][has], 8),
                    "ts": pa.array((start_us + p["unit_end_us"][has]).astype("datetime64[us]")),
                    "tenant": string_column(p["unit_tenant"][has], TENANT_NAMES),
                    "feature": string_column(np.full(n, feature), FEATURES),
                    "workflow": pa.nulls(n, pa.string()),
                    "use_case": string_column(np.full(n, feature), USE_CASES),
                    "outcome": string_column(outcome, OUTCOME_NAMES),
                    "value_usd": float_column(value),
                    "attributes": pa.nulls(n, pa.string()),
                },
                schema=arrow_schema(OUTCOMES),
            )
        )
    table = pa.concat_tables(chunks)
    return table.take(pa.array(np.argsort(table.column("ts").to_numpy(), kind="stable")))


def write_parquet(data: DemoData, directory: Path) -> DemoFiles:
    """Write ``usage``, ``outcomes``, ``bill`` and ``ops`` ``.parquet`` into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    files = DemoFiles(*(directory / f"{name}.parquet" for name in DemoFiles._fields))
    for name, path in zip(DemoFiles._fields, files, strict=True):
        pq.write_table(getattr(data, name), path)
    return files


# The bill and people time live in their own module; it builds on the names above, so it is imported last and
# its public names are re-exported here (unitcost.demo.GPU_POOL, untracked_days, ...).
from unitcost.demo_bill import (  # noqa: E402, F401
    GPU_POOL,
    GPU_RESERVED_INSTANCES,
    GPUS_PER_INSTANCE,
    INVOICE_NOISE,
    UNTRACKED_FACTOR,
    bill_table,
    ops_table,
    untracked_days,
)
