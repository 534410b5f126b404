"""The cost stack on a bill and usage small enough to check on paper.

Usage (override prices: 1,000 input tokens cost $1): tenant A makes 3 OpenAI calls ($3) and one call
to a provider with no bill lines, acme-ai ($2); tenant B makes 1 OpenAI call ($1). A used 30 GPU-seconds,
B 10. Bill: OpenAI invoice $4.40 (telemetry says $4), GPU pool $100, vector DB $20 tagged tenant B,
storage EUR 10 (rate 1.1 USD/EUR), tax $1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import write_csv
from focus_lines import focus_line
from unitcost.analysis.stack import cost_stack
from unitcost.config import Config
from unitcost.errors import CurrencyError
from unitcost.workspace import open_workspace

CONFIG = Config.model_validate(
    {
        "prices": {
            "overrides": [
                {"provider": "openai", "model": "m1", "input_per_mtok": 1000, "output_per_mtok": 0},
                {"provider": "acme-ai", "model": "m2", "input_per_mtok": 1000, "output_per_mtok": 0},
            ]
        },
        "currency_rates": {"EUR": 1.1},
    }
)

USAGE = [
    ("a1", "A", "openai", "m1", 1000, 10),
    ("a2", "A", "openai", "m1", 1000, 10),
    ("a3", "A", "openai", "m1", 1000, 10),
    ("a4", "A", "acme-ai", "m2", 2000, 0),
    ("b1", "B", "openai", "m1", 1000, 10),
]

BILL = [
    # ProviderName, ServiceCategory, ServiceName, cost, currency, tags
    ("OpenAI", "AI and Machine Learning", "OpenAI API", "4.40", "USD", None),
    ("Acme Cloud", "Compute", "GPU inference pool", "100", "USD", None),
    ("Pinecone", "Databases", "Pinecone vector index", "20", "USD", {"tenant": "B"}),
    ("Acme Cloud", "Storage", "Object storage", "10", "EUR", None),
    ("Acme Cloud", "Other", "Tax", "1.00", "USD", None),
]


def _line(provider: str, category: str, service: str, cost: str, currency: str, tags: dict | None) -> dict:  # type: ignore[type-arg]
    return focus_line(cost=cost, provider=provider, service=service, category=category, description=service,
                      currency=currency, Tags=json.dumps(tags) if tags else "")  # fmt: skip


def _usage_rows(
    ts: str = "2026-10-01T12:00:00Z",
    pool: Callable[[str, int], str | None] | None = None,
    gpu: Callable[[str, int], int] | None = None,
) -> list[dict[str, object]]:
    """USAGE as canonical rows; ``pool(provider, gpu_seconds)`` names the serving pool, ``gpu`` overrides GPU time."""
    rows = []
    for rid, tenant, provider, model, tokens, gpu_seconds in USAGE:
        seconds = gpu(provider, gpu_seconds) if gpu else gpu_seconds
        row: dict[str, object] = {
            "request_id": rid,
            "ts": ts,
            "tenant": tenant,
            "provider": provider,
            "model": model,
            "input_tokens": tokens,
            "output_tokens": 0,
            "gpu_seconds": seconds,
            "status": "ok",
        }
        if pool:
            row["serving"] = pool(provider, seconds) or "api"
        rows.append(row)
    return rows


def _load(ws, tmp: Path, usage: list[dict[str, object]], bill: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    """Ingest usage rows and bill lines into ``ws``; return the bill's ingest result."""
    ws.ingest("usage", [write_csv(tmp / "u.csv", usage)])
    [res] = ws.ingest("focus", [write_csv(tmp / "bill.csv", bill)])
    return res


def _workspace(tmp_path: Path, config: Config):  # type: ignore[no-untyped-def]
    ws = open_workspace(tmp_path / "w.duckdb", config)
    res = _load(ws, tmp_path, _usage_rows(), [_line(*b) for b in BILL])
    assert res.rows_landed == len(BILL), res.first_problem
    return ws


def test_stack_by_hand(tmp_path: Path) -> None:
    with _workspace(tmp_path, CONFIG) as ws:
        stack = cost_stack(ws.store, ws.config, by="tenant")
    got = stack.by_key()
    assert got["A"] == {
        "model_api": Decimal("3.30") + Decimal("2"),  # 3/4 of the OpenAI invoice + acme-ai from telemetry
        "gpu_compute": Decimal("75"),  # 30 of 40 GPU-seconds
        "storage": Decimal("8.8"),  # 4 of 5 requests of EUR 10 x 1.1
        "other": Decimal("0.8"),
    }
    assert got["B"] == {
        "model_api": Decimal("1.10"),
        "gpu_compute": Decimal("25"),
        "retrieval": Decimal("20"),  # tagged: straight to B
        "storage": Decimal("2.2"),
        "other": Decimal("0.2"),
    }
    assert stack.layer_totals_usd == {
        "model_api": Decimal("6.40"),
        "gpu_compute": Decimal("100"),
        "retrieval": Decimal("20"),
        "storage": Decimal("11"),
        "other": Decimal("1"),
    }
    assert stack.unallocated_usd == {}
    bases = {(r.key, r.layer, r.basis) for r in stack.rows}
    assert ("A", "model_api", "telemetry") in bases and ("B", "retrieval", "bill: tag") in bases


def test_every_layer_adds_up_to_its_total(tmp_path: Path) -> None:
    with _workspace(tmp_path, CONFIG) as ws:
        stack = cost_stack(ws.store, ws.config, by="tenant")
    for layer, total in stack.layer_totals_usd.items():
        allocated = sum((r.cost_usd for r in stack.rows if r.layer == layer), Decimal(0))
        idle = sum(stack.idle_usd.values(), Decimal(0)) if layer == "gpu_compute" else Decimal(0)
        assert allocated + stack.unallocated_usd.get(layer, Decimal(0)) + idle == total


def test_a_layer_without_driver_stays_unallocated(tmp_path: Path) -> None:
    config = CONFIG.model_copy(deep=True)
    config.allocation.drivers["gpu_compute"] = "successful_outcomes"
    with _workspace(tmp_path, config) as ws:
        ws.store.raw.execute("UPDATE usage SET status = 'error'")  # no unit of work succeeds
        stack = cost_stack(ws.store, ws.config, by="tenant")
    assert stack.unallocated_usd == {"gpu_compute": Decimal("100")}
    assert all(r.layer != "gpu_compute" for r in stack.rows)


def test_a_currency_without_rate_is_an_error(tmp_path: Path) -> None:
    config = CONFIG.model_copy(deep=True)
    config.currency_rates = {}
    with _workspace(tmp_path, config) as ws, pytest.raises(CurrencyError, match="EUR"):
        cost_stack(ws.store, ws.config, by="tenant")


def test_stack_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml
    from typer.testing import CliRunner

    from unitcost.cli import app

    with _workspace(tmp_path, CONFIG):
        pass
    (tmp_path / "unitcost.yaml").write_text(yaml.safe_dump(CONFIG.model_dump(by_alias=True, mode="json")))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["--db", str(tmp_path / "w.duckdb"), "stack", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["total_cost_usd"] == pytest.approx(6.40 + 100 + 20 + 11 + 1)
    assert sum(r["cost_usd"] for r in doc["rows"]) == pytest.approx(doc["total_cost_usd"])
    res = runner.invoke(app, ["--db", str(tmp_path / "w.duckdb"), "stack"])
    assert res.exit_code == 0 and "gpu_compute" in res.output and "$75.00" in res.output


def test_people_time_joins_the_stack(tmp_path: Path) -> None:
    config = CONFIG.model_copy(deep=True)
    config.people.rates = {"sre": 100}
    ops = [
        {"date": "2026-10-01", "activity": "on-call", "hours": 2, "role": "sre"},  # shared: split by requests 4:1
        {"date": "2026-10-01", "activity": "prompt-tuning", "hours": 1, "role": "sre", "tenant": "B"},  # direct
        {"date": "2026-11-01", "activity": "release", "hours": 5, "role": "sre"},  # outside the period
    ]
    with _workspace(tmp_path, config) as ws:
        ws.ingest("ops", [write_csv(tmp_path / "ops.csv", ops)])
        stack = cost_stack(ws.store, ws.config, end=__import__("datetime").datetime(2026, 11, 1), by="tenant")
    got = stack.by_key()
    assert got["A"]["people"] == Decimal("160")
    assert got["B"]["people"] == Decimal("40") + Decimal("100")
    assert stack.layer_totals_usd["people"] == Decimal("300")


def test_gpu_pool_idle_is_reported_apart_or_shared(tmp_path: Path) -> None:
    """The $100 GPU line is tagged pool: gpu-a, a pool of 2 GPUs; the period is 12 hours, so 24 GPU-hours of
    capacity, of which the requests used 40 GPU-seconds: the busy share is (40/3600)/24 of $100, the rest idle.
    """
    import datetime as dt

    bill = [_line(*b) for b in BILL]
    bill[1]["Tags"] = json.dumps({"pool": "gpu-a"})
    config = CONFIG.model_copy(deep=True)
    config.pools = [__import__("unitcost.config", fromlist=["PoolConfig"]).PoolConfig(name="gpu-a", gpus=2)]
    with open_workspace(tmp_path / "w.duckdb", config) as ws:
        _load(ws, tmp_path, _usage_rows(ts="2026-10-01T11:00:00Z", pool=lambda p, g: "gpu-a" if g else None), bill)
        start, end = dt.datetime(2026, 10, 1), dt.datetime(2026, 10, 1, 12)
        stack = cost_stack(ws.store, ws.config, start, end, by="tenant")
        config.share_idle = True
        shared = cost_stack(ws.store, config, start, end, by="tenant")
    busy = Decimal(100) * Decimal(40) / Decimal(3600) / Decimal(24)
    got = stack.by_key()
    assert got["A"]["gpu_compute"] + got["B"]["gpu_compute"] == pytest.approx(busy, abs=Decimal("0.000002"))
    assert got["A"]["gpu_compute"] == pytest.approx(busy * 3 / 4, abs=Decimal("0.000002"))
    assert stack.idle_usd["gpu-a"] == pytest.approx(Decimal(100) - busy, abs=Decimal("0.000002"))
    gpu_rows = sum(r.cost_usd for r in stack.rows if r.layer == "gpu_compute")
    assert gpu_rows + stack.idle_usd["gpu-a"] == stack.layer_totals_usd["gpu_compute"] == Decimal(100)
    assert shared.idle_usd == {}
    assert shared.by_key()["A"]["gpu_compute"] == Decimal(75)  # idle shared by GPU-seconds, 30:10


def test_report_is_fully_loaded(tmp_path: Path) -> None:
    with _workspace(tmp_path, CONFIG) as ws:
        report = ws.report(by=["tenant"])
        plain = ws.report()
    full = 6.40 + 100 + 20 + 11 + 1
    assert report.total_cost_usd == pytest.approx(full)
    assert plain.total_cost_usd == pytest.approx(full)  # the same totals without a breakdown
    assert report.token_cost_usd == pytest.approx(6)  # telemetry: A $3 + $2, B $1
    assert report.layers == pytest.approx(
        {"model_api": 6.4, "gpu_compute": 100, "retrieval": 20, "storage": 11, "other": 1}
    )
    rows = {r.key: r for r in report.breakdown["tenant"]}
    assert rows["A"].cost_usd == pytest.approx(5)  # token cost stays token cost
    assert rows["A"].fully_loaded_cost_usd == pytest.approx(5.30 + 75 + 8.8 + 0.8)
    assert rows["B"].layers["retrieval"] == pytest.approx(20)
    assert rows["A"].fully_loaded_cost_per_successful_outcome_usd == pytest.approx((5.30 + 75 + 8.8 + 0.8) / 4)
    assert report.fully_loaded_cost_per_successful_outcome_usd == pytest.approx(full / 5)


@pytest.mark.parametrize(
    ("driver", "extra", "expected_a"),
    [
        ("requests", {}, Decimal("8.8")),  # 4 of 5 requests
        ("tokens", {}, Decimal("11") * 5000 / 6000),  # A sent 5,000 of 6,000 tokens
        ("gpu_seconds", {}, Decimal("11") * 30 / 40),
        ("even", {}, Decimal("5.5")),
        ("fixed", {"storage": {"A": 1, "B": 10}}, Decimal("1")),
        ("retrieval_queries", {}, Decimal("8.8")),  # no embeddings calls: split by requests, and said so
        ("egress_bytes", {}, Decimal("8.8")),  # no egress recorded: likewise
    ],
)
def test_each_driver_by_hand(tmp_path: Path, driver: str, extra: dict, expected_a: Decimal) -> None:  # type: ignore[type-arg]
    config = CONFIG.model_copy(deep=True)
    config.allocation.drivers["storage"] = driver
    config.allocation.fixed_weights = extra
    with _workspace(tmp_path, config) as ws:
        stack = cost_stack(ws.store, ws.config, by="tenant")
    got = stack.by_key()
    assert got["A"]["storage"] == pytest.approx(expected_a, abs=Decimal("0.000001"))
    assert got["A"]["storage"] + got["B"]["storage"] == Decimal("11")
    bases = {r.basis for r in stack.rows if r.layer == "storage"}
    if driver in ("retrieval_queries", "egress_bytes"):
        assert bases == {f"bill: requests (no {driver} in the data)"}


def test_report_says_which_basis_each_layer_and_provider_uses(tmp_path: Path) -> None:
    with _workspace(tmp_path, CONFIG) as ws:
        report = ws.report(by=["tenant"])
    assert report.model_api_basis == {"acme-ai": "telemetry", "openai": "bill"}
    assert report.layer_basis["model_api"] == ["bill: token_cost", "telemetry"]
    assert report.layer_basis["retrieval"] == ["bill: tag"]
    assert report.layer_basis["storage"] == ["bill: requests"]


def test_self_hosted_requests_are_paid_through_their_pool_not_twice(tmp_path: Path) -> None:
    """acme-ai's call ran on gpu-a, whose GPU line is on the bill: its token estimate is not added to model_api."""
    bill = [_line(*b) for b in BILL]
    bill[1]["Tags"] = json.dumps({"pool": "gpu-a"})
    with open_workspace(tmp_path / "w.duckdb", CONFIG) as ws:
        _load(
            ws,
            tmp_path,
            _usage_rows(
                ts="2026-10-01T11:00:00Z",
                pool=lambda p, g: "gpu-a" if p == "acme-ai" else None,
                gpu=lambda p, g: 20 if p == "acme-ai" else 0,
            ),
            bill,
        )
        stack = cost_stack(ws.store, ws.config, by="tenant")
    assert stack.layer_totals_usd["model_api"] == Decimal("4.40")  # the OpenAI invoice only
    assert stack.by_key()["A"]["gpu_compute"] == Decimal(100)  # A's 20 GPU-seconds are all the pool's use
    assert "acme-ai" not in stack.provider_basis


bill_lines = st.lists(
    st.tuples(
        st.sampled_from(BILL),  # a family of line (provider, category, service)
        st.decimals(min_value=Decimal("-50"), max_value=Decimal("500"), places=4),
        st.sampled_from(["USD", "EUR"]),
        st.sampled_from([None, "A", "B", "C"]),  # tenant tag (C has no usage)
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=bill_lines, driver=st.sampled_from(["requests", "tokens", "gpu_seconds", "successful_outcomes", "even"]))
def test_the_stack_adds_up_to_the_bill_for_random_bills(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list,
    driver: str,  # type: ignore[type-arg]
) -> None:
    tmp = tmp_path_factory.mktemp("stack")
    config = CONFIG.model_copy(deep=True)
    for layer in ("storage", "retrieval", "gpu_compute", "other"):
        config.allocation.drivers[layer] = driver
    rows = []
    for (provider, category, service, _, _, _), amount, currency, tenant in lines:
        rows.append(_line(provider, category, service, str(amount), currency, {"tenant": tenant} if tenant else None))
    with open_workspace(tmp / "w.duckdb", config) as ws:
        res = _load(ws, tmp, _usage_rows(ts="2026-10-01T12:00:00Z"), rows)
        stack = cost_stack(ws.store, ws.config, by="tenant")
    bill_usd = sum(
        (amount * (Decimal("1.1") if currency == "EUR" else 1) for _, amount, currency, _ in lines), Decimal(0)
    )
    telemetry = sum((r.cost_usd for r in stack.rows if r.basis == "telemetry"), Decimal(0))
    held = sum(stack.unallocated_usd.values(), Decimal(0)) + sum(stack.idle_usd.values(), Decimal(0))
    allocated = sum((r.cost_usd for r in stack.rows if r.basis != "telemetry"), Decimal(0))
    assert res.rows_landed + res.duplicates_skipped == len(lines)
    assert abs(allocated + held - bill_usd) < Decimal("0.01")  # every dollar of the bill, to the cent
    assert stack.total_usd() == allocated + held + telemetry  # and nothing counted twice
    for layer, total in stack.layer_totals_usd.items():
        parts = sum((r.cost_usd for r in stack.rows if r.layer == layer), Decimal(0))
        assert (
            parts
            + stack.unallocated_usd.get(layer, Decimal(0))
            + (sum(stack.idle_usd.values(), Decimal(0)) if layer == "gpu_compute" else Decimal(0))
            == total
        )


def test_pool_priced_from_config_per_purchase_option(tmp_path: Path) -> None:
    """No GPU line on the bill: 2 reserved GPUs at $2/h and 1 on-demand at $4/h = $8/h; over 12 h, $96."""
    import datetime as dt

    from unitcost.config import PoolConfig

    bill = [_line(*b) for b in BILL if b[2] != "GPU inference pool"]
    config = CONFIG.model_copy(deep=True)
    config.pools = [
        PoolConfig(
            name="gpu-a", gpus={"reserved": 2, "on_demand": 1}, hourly_usd_per_gpu={"reserved": 2, "on_demand": 4}
        )
    ]
    with open_workspace(tmp_path / "w.duckdb", config) as ws:
        _load(ws, tmp_path, _usage_rows(ts="2026-10-01T11:00:00Z", pool=lambda p, g: "gpu-a" if g else None), bill)
        stack = cost_stack(ws.store, ws.config, dt.datetime(2026, 10, 1), dt.datetime(2026, 10, 1, 12), by="tenant")
    assert stack.layer_totals_usd["gpu_compute"] == Decimal(96)
    assert stack.pool_hours["gpu-a"] == (pytest.approx(40 / 3600), 36)
    gpu = sum((r.cost_usd for r in stack.rows if r.layer == "gpu_compute"), Decimal(0))
    assert gpu + stack.idle_usd["gpu-a"] == Decimal(96)


def test_pool_prices_must_match_its_purchase_options() -> None:
    from pydantic import ValidationError

    from unitcost.config import PoolConfig

    with pytest.raises(ValidationError, match="each purchase option"):
        PoolConfig(name="p", gpus={"reserved": 2, "spot": 1}, hourly_usd_per_gpu={"reserved": 2})


def test_egress_bytes_driver(tmp_path: Path) -> None:
    config = CONFIG.model_copy(deep=True)
    config.allocation.drivers["storage"] = "egress_bytes"
    with _workspace(tmp_path, config) as ws:
        ws.store.raw.execute("UPDATE usage SET egress_bytes = CASE WHEN tenant = 'A' THEN 100 ELSE 1000 END")
        stack = cost_stack(ws.store, ws.config, by="tenant")
    got = stack.by_key()
    assert got["A"]["storage"] == pytest.approx(Decimal(11) * 400 / 1400, abs=Decimal("0.000001"))  # 4 x 100 vs 1000
    assert {r.basis for r in stack.rows if r.layer == "storage"} == {"bill: egress_bytes"}


def test_breakdown_rows_carry_fully_loaded_unit_costs(tmp_path: Path) -> None:
    with _workspace(tmp_path, CONFIG) as ws:
        rows = {r.key: r for r in ws.report(by=["tenant"]).breakdown["tenant"]}
    assert rows["B"].fully_loaded_cost_per_request_usd == pytest.approx(1.10 + 25 + 20 + 2.2 + 0.2)  # 1 request
    assert rows["A"].fully_loaded_cost_per_request_usd == pytest.approx((5.30 + 75 + 8.8 + 0.8) / 4)
