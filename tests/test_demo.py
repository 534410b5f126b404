"""The demo company: shape, invariants, determinism and the planted events."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import yaml

from unitcost import demo
from unitcost.analysis.stack import cost_stack
from unitcost.config import Config
from unitcost.ingest import IngestResult, ingest_files
from unitcost.ingest.focus import FILE_REQUIRED
from unitcost.ledger.layers import classify_sql, explain_layers
from unitcost.ledger.people import people_costs
from unitcost.schema import INTERNAL_COLUMNS, OUTCOMES, USAGE
from unitcost.store import open_store
from unitcost.workspace import Workspace, open_workspace

REQUESTS = 20_000
START = pd.Timestamp("2026-10-01")


@pytest.fixture(scope="module")
def data() -> demo.DemoData:
    return demo.generate(days=30, requests=REQUESTS, seed=7)


@pytest.fixture(scope="module")
def usage(data: demo.DemoData) -> pd.DataFrame:
    return data.usage.to_pandas()


@pytest.fixture(scope="module")
def outcomes(data: demo.DemoData) -> pd.DataFrame:
    return data.outcomes.to_pandas()


def event(data: demo.DemoData, name: str) -> demo.PlantedEvent:
    return next(e for e in data.events if e.name == name)


def test_same_seed_gives_identical_tables(data: demo.DemoData) -> None:
    again = demo.generate(days=30, requests=REQUESTS, seed=7)
    assert again.usage.equals(data.usage)
    assert again.outcomes.equals(data.outcomes)
    assert again.bill.equals(data.bill)
    assert again.ops.equals(data.ops)
    assert again.events == data.events


def test_another_seed_gives_other_tables(data: demo.DemoData) -> None:
    other = demo.generate(days=30, requests=REQUESTS, seed=8)
    assert not other.usage.equals(data.usage)
    assert not other.outcomes.equals(data.outcomes)
    assert not other.bill.equals(data.bill)


@pytest.mark.parametrize(
    ("column", "arrow_type"),
    [
        ("ts", pa.timestamp("us")),
        ("input_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
        ("latency_ms", pa.float64()),
        ("ttft_ms", pa.float64()),
        ("gpu_seconds", pa.float64()),
        ("reported_cost_usd", pa.float64()),
        ("attempt", pa.int32()),
        ("response_cache_hit", pa.bool_()),
        ("attributes", pa.string()),
        ("request_id", pa.string()),
        ("tenant", pa.string()),
    ],
)
def test_usage_column_types(data: demo.DemoData, column: str, arrow_type: pa.DataType) -> None:
    assert data.usage.schema.field(column).type == arrow_type


def test_columns_match_the_canonical_schema(data: demo.DemoData) -> None:
    assert data.usage.column_names == [c for c in USAGE.column_names if c not in INTERNAL_COLUMNS]
    assert data.outcomes.column_names == [c for c in OUTCOMES.column_names if c not in INTERNAL_COLUMNS]
    assert data.usage.schema == demo.arrow_schema(USAGE)
    assert data.outcomes.schema == demo.arrow_schema(OUTCOMES)
    assert data.outcomes.schema.field("ts").type == pa.timestamp("us")


def test_row_count_is_close_to_requests(data: demo.DemoData) -> None:
    assert abs(data.usage.num_rows - REQUESTS) <= 0.05 * REQUESTS


def test_token_invariants(usage: pd.DataFrame) -> None:
    assert (usage.cache_read_tokens + usage.cache_write_tokens <= usage.input_tokens).all()
    assert (usage.reasoning_tokens <= usage.output_tokens).all()
    tokens = usage[["input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens"]]
    assert (tokens >= 0).all().all()
    assert set(usage.loc[usage.reasoning_tokens > 0, "model"]) == {"claude-sonnet-4-5"}


def test_ids_are_unique_and_traces_link(usage: pd.DataFrame, outcomes: pd.DataFrame) -> None:
    assert usage.request_id.is_unique
    assert usage.request_id.str.fullmatch(r"req-\d{9}").all()
    assert usage.trace_id.str.fullmatch(r"(tkt|ks|prop)-\d{8}").all()
    assert outcomes.trace_id.is_unique
    assert set(outcomes.trace_id) <= set(usage.trace_id)
    # every support ticket and proposal run has an outcome; knowledge answers only sometimes
    for feature in ("support-bot", "proposal-drafting"):
        assert set(usage.loc[usage.feature == feature, "trace_id"]) == set(
            outcomes.loc[outcomes.feature == feature, "trace_id"]
        )
    searched = usage.loc[usage.feature == "knowledge-search", "trace_id"].nunique()
    assert 0.3 * searched < (outcomes.feature == "knowledge-search").sum() < 0.8 * searched


def test_outcomes_are_consistent(usage: pd.DataFrame, outcomes: pd.DataFrame) -> None:
    assert set(outcomes.outcome) == {"success", "failure", "escalated", "abandoned"}
    assert outcomes.loc[outcomes.outcome == "success", "value_usd"].notna().all()
    assert outcomes.loc[outcomes.outcome != "success", "value_usd"].isna().all()
    assert set(outcomes.loc[outcomes.feature == "support-bot", "outcome"]) == {
        "success",
        "failure",
        "escalated",
        "abandoned",
    }
    # an outcome is known when its trace's last call has ended, inside the time range
    last_call = usage.groupby("trace_id").ts.max()
    assert (outcomes.set_index("trace_id").ts >= last_call.reindex(outcomes.trace_id).values).all()
    assert outcomes.ts.max() < START + pd.Timedelta(days=30)


def test_timestamps_are_inside_the_range_with_weekly_seasonality(usage: pd.DataFrame) -> None:
    assert usage.ts.min() >= START
    assert usage.ts.max() < START + pd.Timedelta(days=30)
    per_day = (
        usage.groupby(usage.ts.dt.dayofweek).size() / usage.ts.dt.normalize().groupby(usage.ts.dt.dayofweek).nunique()
    )
    assert per_day[[5, 6]].max() < 0.6 * per_day[[0, 1, 2, 3, 4]].min()
    per_hour = usage.groupby(usage.ts.dt.hour).size()
    assert per_hour[13:18].min() > 4 * per_hour[2:6].max()


def test_prompt_regression_raises_support_input_tokens(data: demo.DemoData, usage: pd.DataFrame) -> None:
    regression = event(data, "prompt-regression")
    assert regression.start == dt.datetime(2026, 10, 19)
    chat = usage[(usage.feature == "support-bot") & (usage.operation == "chat")]
    before = chat.loc[chat.ts < regression.start, "input_tokens"].mean()
    after = chat.loc[chat.ts >= regression.start, "input_tokens"].mean()
    assert 1.25 < after / before < 1.45
    assert set(chat.loc[chat.ts < regression.start, "prompt_version"]) == {"support-v13"}
    late = chat.ts >= regression.start + pd.Timedelta(hours=2)
    assert set(chat.loc[late, "prompt_version"]) == {"support-v14"}
    assert set(chat.loc[late, "release"]) == {regression.release}


def test_cache_drop_lowers_knowledge_search_cache_share(data: demo.DemoData, usage: pd.DataFrame) -> None:
    drop = event(data, "cache-drop")
    assert drop.start == dt.datetime(2026, 10, 23)
    chat = usage[(usage.feature == "knowledge-search") & (usage.operation == "chat")]
    before, after = chat[chat.ts < drop.start], chat[chat.ts >= drop.start]
    share_before = before.cache_read_tokens.sum() / before.input_tokens.sum()
    share_after = after.cache_read_tokens.sum() / after.input_tokens.sum()
    assert share_before > 0.4
    assert share_after < 0.15


def test_onboarding_spike_brings_a_top_tenant(data: demo.DemoData, usage: pd.DataFrame) -> None:
    spike = event(data, "onboarding-spike")
    assert spike.tenant == "northwind"
    assert spike.start == dt.datetime(2026, 10, 26)
    northwind = usage[usage.tenant == "northwind"]
    assert northwind.ts.min() >= spike.start
    assert northwind.ts.min() < spike.start + pd.Timedelta(days=1)
    assert (northwind.feature == "support-bot").mean() > 0.8
    after = usage[usage.ts >= spike.start].tenant.value_counts()
    assert "northwind" in after.index[:4]


def test_no_op_releases_are_listed_and_present(data: demo.DemoData, usage: pd.DataFrame) -> None:
    no_ops = [e for e in data.events if not e.expects_alert]
    assert len(no_ops) >= 2
    assert {e.feature for e in no_ops} >= {"knowledge-search", "proposal-drafting"}
    for e in no_ops:
        rows = usage[(usage.feature == e.feature) & (usage.release == e.release)]
        assert len(rows) > 0
        assert rows.ts.min() >= e.start
    assert all(e.expects_alert for e in data.events if e.name in ("prompt-regression", "cache-drop"))


def test_tenants_are_heavy_tailed(usage: pd.DataFrame) -> None:
    share = usage.tenant.value_counts(normalize=True)
    assert 30 <= len(share) <= 50
    assert share.iloc[0] > 0.15
    assert share.index[0] == "acme"
    assert share.iloc[:5].sum() > 0.45
    assert share.iloc[-10:].sum() < 0.1


def test_providers_models_and_serving(usage: pd.DataFrame) -> None:
    assert usage.provider.nunique() >= 3
    assert {"openai", "anthropic", "self-hosted"} <= set(usage.provider)
    assert usage.model.nunique() >= 4
    hosted = usage.provider == "self-hosted"
    assert set(usage.loc[hosted, "model"]) == {"llama-3.1-70b-support-ft"}
    assert set(usage.loc[hosted, "serving"]) == {"gpu-pool-a"}
    assert (usage.loc[hosted, "gpu_seconds"] > 0).all()
    assert set(usage.loc[~hosted, "serving"]) == {"api"}
    assert usage.loc[~hosted, "gpu_seconds"].isna().all()
    embeddings = usage[usage.operation == "embeddings"]
    assert set(embeddings.model) == {"text-embedding-3-small"}
    assert (embeddings.output_tokens == 0).all()
    assert set(usage.operation) == {"chat", "embeddings"}
    assert set(usage.environment) == {"production"}
    assert set(usage.priority) == {"interactive", "batch"}


def test_small_models_carry_volume_large_models_carry_tokens(usage: pd.DataFrame) -> None:
    large = usage.model.isin(["claude-sonnet-4-5", "gpt-4o", "gpt-4.1"])
    assert large.mean() < 0.3
    # list-price weighted tokens: large models cost 10-20x more per token than small ones
    assert usage.loc[large, "input_tokens"].sum() > 0.2 * usage.input_tokens.sum()


def test_response_cache_hits_and_retries(usage: pd.DataFrame) -> None:
    hits = usage[usage.response_cache_hit]
    assert set(hits.feature) == {"knowledge-search"}
    assert (hits[["input_tokens", "output_tokens", "cache_read_tokens"]] == 0).all().all()
    assert (hits.latency_ms < 50).all()
    asked = usage.loc[usage.feature == "knowledge-search", "trace_id"].nunique()
    assert 0.01 < len(hits) / asked < 0.1
    assert set(usage.status) == {"ok", "error"}
    assert set(usage.attempt) == {1, 2, 3}
    retried = usage.loc[usage.attempt > 1, "trace_id"]
    failed = set(usage.loc[usage.status == "error", "trace_id"])
    assert set(retried) <= failed
    assert usage.loc[usage.status == "error", "output_tokens"].max() < 16


def test_latency_grows_with_output_and_model_size(usage: pd.DataFrame) -> None:
    ok = usage[(usage.status == "ok") & ~usage.response_cache_hit & (usage.operation == "chat")]
    assert ok.latency_ms.corr(ok.output_tokens) > 0.3
    assert (ok.ttft_ms <= ok.latency_ms).all()
    by_model = ok.groupby("model").latency_ms.median()
    assert by_model["claude-sonnet-4-5"] > by_model["claude-haiku-4-5"]


def test_events_scale_into_a_short_range() -> None:
    short = demo.generate(days=3, requests=3_000, seed=1)
    start, end = dt.datetime(2026, 10, 1), dt.datetime(2026, 10, 4)
    assert all(start < e.start < end for e in short.events)
    usage = short.usage.to_pandas()
    assert usage.ts.max() < end
    spike = next(e for e in short.events if e.name == "onboarding-spike")
    northwind = usage[usage.tenant == "northwind"]
    assert len(northwind) > 0
    assert northwind.ts.min() >= spike.start


def test_progress_is_reported_a_handful_of_times() -> None:
    calls: list[tuple[str, float]] = []
    demo.generate(days=2, requests=1_000, progress=lambda stage, fraction: calls.append((stage, fraction)))
    fractions = [f for _, f in calls]
    assert 3 <= len(calls) <= 12
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(demo.DemoError):
        demo.generate(days=0)
    with pytest.raises(ValueError):
        demo.generate(requests=0)


def test_config_yaml_prices_the_self_hosted_model(data: demo.DemoData) -> None:
    assert (
        "    - {provider: self-hosted, model: llama-3.1-70b-support-ft, input_per_mtok: 0.60, "
        "output_per_mtok: 0.80}" in data.config_yaml
    )
    config = Config.model_validate(yaml.safe_load(data.config_yaml))
    (override,) = config.prices.overrides
    assert (override.provider, override.model) == ("self-hosted", "llama-3.1-70b-support-ft")
    assert (override.input_per_mtok, override.output_per_mtok) == (0.60, 0.80)
    assert config.currency_rates == {"EUR": 1.08}
    assert config.people.rates == {"sre": 120, "ml-engineer": 140}


def test_token_quantiles_carry_their_attribution() -> None:
    document = json.loads(resources.files("unitcost").joinpath("data/azure_token_quantiles.json").read_text())
    assert "CC-BY-4.0" in document["attribution"]["licence"]
    assert "Splitwise" in document["attribution"]["citation"]
    for trace in ("conv", "code"):
        for column in ("context_tokens", "generated_tokens"):
            q = document["traces"][trace][column]
            assert len(q) == 201
            assert q == sorted(q)


def test_written_files_ingest_cleanly(data: demo.DemoData, tmp_path: Path) -> None:
    files = demo.write_parquet(data, tmp_path / "demo")
    assert [p.name for p in files] == ["usage.parquet", "outcomes.parquet", "bill.parquet", "ops.parquet"]
    assert (files.usage.name, files.outcomes.name) == ("usage.parquet", "outcomes.parquet")
    store = open_store(tmp_path / "w.duckdb")
    try:
        (usage_result,) = ingest_files(store, "usage", [files.usage])
        (outcomes_result,) = ingest_files(store, "outcomes", [files.outcomes])
        assert usage_result.rows_quarantined == 0, usage_result.first_problem
        assert usage_result.rows_landed == data.usage.num_rows
        assert outcomes_result.rows_quarantined == 0, outcomes_result.first_problem
        assert outcomes_result.rows_landed == data.outcomes.num_rows
        ((with_attributes,),) = store.sql("SELECT count(*) FROM usage WHERE attributes IS NOT NULL")
        assert with_attributes > 0
    finally:
        store.close()


# The bill (FOCUS) and people time -------------------------------------------------------------------------------

#: Each family of bill lines (by ServiceName) and the layer the shipped default rules must put it in.
FAMILIES = {
    "Amazon Elastic Compute Cloud": "gpu_compute",
    "OpenAI API": "model_api",
    "Claude API": "model_api",
    "Amazon OpenSearch Service": "retrieval",
    "Amazon Simple Storage Service": "storage",
    "AWS Data Transfer": "networking",
    "Amazon CloudWatch": "observability",
    "Amazon Elastic Kubernetes Service": "orchestration",
    "Amazon API Gateway": "orchestration",
}


Results = dict[str, list[IngestResult]]


@pytest.fixture(scope="module")
def ingested(data: demo.DemoData, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, Results]]:
    """The demo written as Parquet and ingested with its own config; the ingest results by format."""
    directory = tmp_path_factory.mktemp("demo")
    files = demo.write_parquet(data, directory)
    ws = open_workspace(directory / "w.duckdb", Config.model_validate(yaml.safe_load(data.config_yaml)))
    formats = ("usage", "outcomes", "focus", "ops")
    results = {fmt: ws.ingest(fmt, [path]) for fmt, path in zip(formats, files, strict=True)}
    yield ws, results
    ws.close()


@pytest.fixture(scope="module")
def workspace(ingested: tuple[Workspace, Results]) -> Workspace:
    return ingested[0]


def test_bill_has_every_mandatory_focus_column_with_values(data: demo.DemoData) -> None:
    bill = data.bill
    assert set(FILE_REQUIRED) <= set(bill.column_names)
    for column in FILE_REQUIRED:
        nulls = bill.column(column).null_count
        # ChargeClass is null unless the line corrects an earlier period (FOCUS); the demo has no corrections
        assert nulls == (bill.num_rows if column == "ChargeClass" else 0), column
    assert set(bill.column("BillingCurrency").to_pylist()) == {"USD", "EUR"}
    assert bill.schema.field("BilledCost").type == pa.decimal128(38, 10)
    starts = bill.column("ChargePeriodStart").to_pandas()
    assert starts.min() >= START
    assert starts.max() < START + pd.Timedelta(days=30)
    assert (bill.column("ChargePeriodEnd").to_pandas() > starts).all()


def test_every_bill_and_ops_line_ingests(data: demo.DemoData, ingested: tuple[Workspace, Results]) -> None:
    workspace, results = ingested
    for fmt, table in (("focus", data.bill), ("ops", data.ops)):
        (result,) = results[fmt]
        assert result.rows_quarantined == 0, result.first_problem
        assert result.rows_landed == table.num_rows
    ((version,),) = workspace.store.sql("SELECT DISTINCT focus_version FROM bill_lines")
    assert version == "1.2"


def test_each_family_lands_in_its_intended_layer(workspace: Workspace) -> None:
    layer, _ = classify_sql(workspace.config)
    rows = workspace.store.sql(f"SELECT DISTINCT ServiceName, {layer} FROM bill_lines")
    assert dict(rows) == FAMILIES
    (hits,) = [h for h in explain_layers(workspace.store, workspace.config) if h.layer == "gpu_compute"]
    assert hits.rule.startswith("gpu-")


def test_stack_layers_add_up_to_the_bill_telemetry_and_people(workspace: Workspace) -> None:
    store, config = workspace.store, workspace.config
    stack = cost_stack(store, config, by="feature")
    for name, total in stack.layer_totals_usd.items():
        allocated = sum((r.cost_usd for r in stack.rows if r.layer == name), Decimal(0))
        idle = sum(stack.idle_usd.values(), Decimal(0)) if name == "gpu_compute" else Decimal(0)
        assert allocated + stack.unallocated_usd.get(name, Decimal(0)) + idle == total, name
    assert set(stack.layer_totals_usd) == set(FAMILIES.values()) | {"people"}
    bill = {
        c: Decimal(v) for c, v in store.sql("SELECT BillingCurrency, sum(EffectiveCost) FROM bill_lines GROUP BY 1")
    }
    bill_usd = bill["USD"] + bill["EUR"] * Decimal("1.08")
    people = float(people_costs(store, config).column("cost_usd").to_numpy().sum())
    # the self-hosted model's requests are paid through its GPU pool (tagged on the bill), not counted twice
    assert "self-hosted" not in stack.provider_basis
    assert float(stack.total_usd()) == pytest.approx(float(bill_usd) + people, abs=0.01)
    by_key = stack.by_key()
    assert by_key["knowledge-search"]["retrieval"] > by_key["support-bot"].get("retrieval", Decimal(0))


def test_provider_invoices_match_telemetry_except_the_planted_gap(data: demo.DemoData, workspace: Workspace) -> None:
    gap = event(data, "untracked-anthropic-calls")
    assert gap.expects_alert
    assert gap.start == dt.datetime(2026, 10, 10)
    untracked = {START + pd.Timedelta(days=d) for d in demo.untracked_days(30)}
    assert len(untracked) == 3
    telemetry = workspace.timeseries(grain="day", by="provider").to_pandas().set_index(["period", "key"]).cost_usd
    billed = (
        data.bill.to_pandas()
        .assign(period=lambda b: b.ChargePeriodStart.dt.normalize(), key=lambda b: b.ProviderName.str.lower())
        .query("key in ['openai', 'anthropic']")
        .groupby(["period", "key"])
        .BilledCost.sum()
        .astype(float)
    )
    ratio = billed / telemetry.reindex(billed.index)
    assert len(ratio) == 60 and ratio.notna().all()
    on_gap = ratio.index.get_level_values("period").isin(untracked) & (
        ratio.index.get_level_values("key") == "anthropic"
    )
    assert (ratio[on_gap] > 1.15).all()
    assert ((ratio[~on_gap] - 1).abs() < 0.03).all()


def test_gpu_pool_capacity_exceeds_the_gpu_seconds_used(data: demo.DemoData, usage: pd.DataFrame) -> None:
    bill = data.bill.to_pandas()
    pool = bill[bill.Tags.str.contains('"pool": "gpu-pool-a"')]
    instance_hours = pool[pool.ChargeCategory == "Usage"].PricingQuantity.astype(float).sum()
    pool_gpu_hours = instance_hours * demo.GPUS_PER_INSTANCE
    used_gpu_hours = usage.gpu_seconds.sum() / 3600
    assert pool_gpu_hours > used_gpu_hours
    reserved = pool[pool.CommitmentDiscountStatus == "Used"]
    on_demand = pool[(pool.ChargeCategory == "Usage") & (pool.PricingCategory == "Standard")]
    assert len(reserved) == demo.GPU_RESERVED_INSTANCES * 30 * 24
    assert (reserved.BilledCost == 0).all() and (reserved.EffectiveCost > 0).all()
    assert len(on_demand) > 0
    # on-demand instances follow the load: weekday afternoons (UTC), not nights
    hours = on_demand.ChargePeriodStart.dt.hour
    assert ((hours >= 12) & (hours <= 23)).mean() > 0.8
    # the reservation's fee is billed on purchase lines and amortised onto the usage lines: same total
    fees = pool[pool.ChargeCategory == "Purchase"]
    assert (fees.EffectiveCost == 0).all()
    assert fees.BilledCost.sum() == reserved.EffectiveCost.sum()


def test_ops_hours_cover_the_people_work(data: demo.DemoData) -> None:
    ops = data.ops.to_pandas()
    assert set(ops.activity) == {"on-call", "incident", "release", "prompt-tuning", "evaluation"}
    assert set(ops.role) == {"sre", "ml-engineer"}
    assert ops.hourly_rate_usd.isna().all()
    assert ops.loc[ops.activity == "on-call", "feature"].isna().all()
    assert set(ops.loc[ops.activity == "prompt-tuning", "feature"]) == {"support-bot"}
    regression = event(data, "prompt-regression")
    incident = pd.to_datetime(ops.loc[ops.activity == "incident", "date"])
    assert incident.min() == pd.Timestamp(regression.start)
    assert incident.max() <= pd.Timestamp(regression.start) + pd.Timedelta(days=2)
    assert set(ops.loc[ops.activity == "release", "release"]) == {e.release for e in data.events if e.release}
    assert (ops.groupby("date").hours.sum() <= 24).all()


def test_short_runs_keep_the_bill_inside_the_range() -> None:
    short = demo.generate(days=7, requests=2_000, seed=1)
    starts = short.bill.column("ChargePeriodStart").to_pandas()
    assert starts.min() >= START and starts.max() < START + pd.Timedelta(days=7)
    gap = next(e for e in short.events if e.name == "untracked-anthropic-calls")
    assert list(demo.untracked_days(7)) == [(gap.start - dt.datetime(2026, 10, 1)).days]


def test_reconcile_finds_the_planted_invoice_gap(data: demo.DemoData, workspace: Workspace) -> None:
    from unitcost.analysis.reconcile import reconcile

    result = reconcile(workspace.store, workspace.config, threshold_pct=10)
    gap_days = {(START + pd.Timedelta(days=d)).date() for d in demo.untracked_days(30)}
    flagged = {(r.day, r.provider) for r in result.rows if r.flagged}
    assert {(day, "anthropic") for day in gap_days} <= flagged
    assert {day for day, provider in flagged} == gap_days  # nothing else crosses the threshold
    causes = {c for r in result.rows if r.flagged for c in r.likely_causes}
    assert any("telemetry missing" in c for c in causes)


def test_the_gpu_pool_reports_its_idle_capacity(workspace: Workspace) -> None:
    stack = cost_stack(workspace.store, workspace.config, by="feature")
    used_h, capacity_h = stack.pool_hours["gpu-pool-a"]
    instance_hours = workspace.store.sql(
        "SELECT sum(ConsumedQuantity) FROM bill_lines "
        "WHERE json_extract_string(Tags, '$.pool') = 'gpu-pool-a' AND ChargeCategory = 'Usage'"
    )[0][0]
    assert capacity_h == pytest.approx(float(instance_hours))  # one GPU per instance
    assert 0 < used_h < capacity_h
    pool_cost = stack.by_key()["support-bot"]["gpu_compute"] + stack.idle_usd["gpu-pool-a"]
    assert float(stack.idle_usd["gpu-pool-a"]) == pytest.approx(float(pool_cost) * (1 - used_h / capacity_h), rel=1e-4)
    report = workspace.report()
    assert report.idle_usd == pytest.approx(float(stack.idle_usd["gpu-pool-a"]))


def test_demo_config_values_outcomes_as_the_generator_does() -> None:
    import yaml

    from unitcost.config import Config
    from unitcost.demo import CONFIG_YAML, FEATURES, VALUE_USD

    config = Config.model_validate(yaml.safe_load(CONFIG_YAML))
    values = {v.feature: v.value_per_outcome_usd for v in config.value}
    assert values == dict(zip(FEATURES, VALUE_USD, strict=True))
