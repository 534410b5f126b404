"""Scenarios (Monte Carlo against closed forms), ROI arithmetic, the review, and the CLI on the demo workspace."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from unitcost.analysis.baseline import Baseline, FeatureBaseline, ModelUse, variable_shares
from unitcost.analysis.review import review
from unitcost.analysis.roi import roi
from unitcost.analysis.scenarios import (
    Distribution,
    Prices,
    Route,
    Scenario,
    ScenarioFile,
    evaluate,
    load_scenarios,
    run_scenarios,
)
from unitcost.errors import ConfigError

START, END = dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 31)


def _model(name: str, calls: float, cost_in: float, cost_out: float, *, pool: bool = False) -> ModelUse:
    # 1,000 input tokens (none cached) and 100 output tokens per call
    return ModelUse("p", name, pool, calls, calls * 1000, 0.0, calls * 100, cost_in, 0.0, cost_out, 0.0)


def _baseline(layers: dict[str, float] | None = None, shares: dict[str, float] | None = None) -> Baseline:
    big = _model("big", 10_000, cost_in=3_000.0, cost_out=1_000.0)  # $0.40 a call
    small = _model("small", 10_000, cost_in=300.0, cost_out=100.0)  # $0.04 a call
    f = FeatureBaseline("bot", units=10_000, successes=8_000, requests=20_000, cache_hits=0, models=[big, small],
                        fully_loaded_usd=6_400.0, layers={"model_api": 4_400.0, "people": 2_000.0})  # fmt: skip
    layers = layers or {"model_api": 4_400.0}
    return Baseline(START, END, {"bot": f}, layers, shares or {k: 1.0 for k in layers}, True, 10, 1_000.0, 0.05)


def test_point_drivers_by_hand() -> None:
    b = _baseline()
    one = {"traffic_growth_pct": np.array([10.0]), "input_tokens_pct": np.array([50.0])}
    out = evaluate(b, one, Scenario(name="x"))
    # tokens: (3000 x 1.5 + 1000 + 300 x 1.5 + 100) x 1.1 = 6,655; the bill's layer scales with it
    assert float(out.layers["model_api"][0]) == pytest.approx(4_400 * 6_655 / 4_400)
    assert float(out.requests[0]) == pytest.approx(22_000)
    assert float(out.successes[0]) == pytest.approx(8_800)
    # half the cache hit share: 10 points of the calls answered from the application cache cost nothing
    cached = evaluate(b, {"app_cache_hit_pts": np.array([10.0])}, Scenario(name="x"))
    assert float(cached.layers["model_api"][0]) == pytest.approx(4_400 * 0.9)


def test_monte_carlo_matches_the_normal_closed_form() -> None:
    """Cost linear in traffic, traffic growth ~ Normal(10%, 5%): P10 / P50 / P90 are 4,400 x (1.1 +- 1.2816 x 0.05)."""
    spec = ScenarioFile(samples=200_000, scenarios=[
        Scenario(name="expected", traffic_growth_pct=Distribution(dist="normal", mean=10, sd=5))])  # fmt: skip
    result = run_scenarios(_baseline(), spec).results[0]
    z = stats.norm.ppf(0.9)
    assert result.total_usd.p50 == pytest.approx(4_400 * 1.1, rel=2e-3)
    assert result.total_usd.p10 == pytest.approx(4_400 * (1.1 - z * 0.05), rel=2e-3)
    assert result.total_usd.p90 == pytest.approx(4_400 * (1.1 + z * 0.05), rel=2e-3)


def test_monte_carlo_matches_the_triangular_closed_form() -> None:
    """Input tokens +x%, x ~ Triangular(0, 10, 40): cost = 4,400 + 3,300 x / 100, quantiles from the inverse CDF."""
    spec = ScenarioFile(samples=200_000, seed=3, scenarios=[
        Scenario(name="t", input_tokens_pct=Distribution(dist="triangular", min=0, mode=10, max=40))])  # fmt: skip
    result = run_scenarios(_baseline(), spec).results[0]

    def tri(q: float, a: float = 0, c: float = 10, b: float = 40) -> float:
        if q <= (c - a) / (b - a):
            return a + math.sqrt(q * (b - a) * (c - a))
        return b - math.sqrt((1 - q) * (b - a) * (b - c))

    for q, got in ((0.1, result.total_usd.p10), (0.5, result.total_usd.p50), (0.9, result.total_usd.p90)):
        assert got == pytest.approx(4_400 + 3_300 * tri(q) / 100, rel=2e-3)


def test_layers_scale_with_their_variable_share_and_people_with_support_burden() -> None:
    b = _baseline({"model_api": 4_400.0, "storage": 100.0, "people": 2_000.0},
                  {"model_api": 1.0, "storage": 0.25, "people": 0.0})  # fmt: skip
    out = evaluate(b, {"traffic_growth_pct": np.array([100.0]), "support_burden_pct": np.array([50.0])},
                   Scenario(name="x"))  # fmt: skip
    assert float(out.layers["storage"][0]) == pytest.approx(100 * (0.75 + 0.25 * 2))
    assert float(out.layers["people"][0]) == pytest.approx(3_000)
    assert float(out.layers["model_api"][0]) == pytest.approx(8_800)


def test_ops_hours_per_activity_by_hand() -> None:
    b = _baseline({"model_api": 4_400.0, "people": 2_000.0}, {"model_api": 1.0, "people": 0.0})
    b.people_by_activity = {"incident": 500.0, "on-call": 1_500.0}
    scenario = Scenario(name="x", ops_hours_pct={"incident": 100}, support_burden_pct=10)
    out = evaluate(b, {n: np.array([float(v)]) for n, v in scenario.drivers().items()}, scenario)
    assert float(out.layers["people"][0]) == pytest.approx((2_000 + 500) * 1.1)
    with pytest.raises(ConfigError, match="no 'release' hours"):
        bad = Scenario(name="x", ops_hours_pct={"release": 10})
        evaluate(b, {"ops_hours_pct.release": np.array([10.0])}, bad)


def test_a_new_tenant_brings_its_support_time() -> None:
    b = _baseline({"model_api": 4_400.0, "people": 2_000.0}, {"model_api": 1.0, "people": 0.0})
    b.support_per_tenant_usd = 50.0
    out = evaluate(b, {"new_tenants": np.array([2.0])}, Scenario(name="x"))
    # 2 median tenants: +2,000 units on 10,000 (+20% of model_api) and 2 x $50 of support time
    assert float(out.layers["model_api"][0]) == pytest.approx(4_400 * 1.2)
    assert float(out.layers["people"][0]) == pytest.approx(2_100)


def test_tiered_routing_by_hand() -> None:
    b = _baseline()
    route = Route(
        feature="bot", from_model="big", to_model="small", share=0.5, escalation_rate=0.2, quality_cost_usd=1.0
    )
    scenario = Scenario(name="x", routing=[route])
    small_prices = Prices.of(b.features["bot"].models[1])
    out = evaluate(b, {n: np.array([float(v)]) for n, v in scenario.drivers().items()}, scenario,
                   resolve=lambda model, provider: (small_prices, False))  # fmt: skip
    # big keeps 5,000 + 1,000 escalated calls at $0.40; 5,000 go to small at its $0.04 (same tokens); small's own
    # 10,000 calls stay: 2,400 + 200 + 400 = 3,000; 1,000 escalations cost $1 of quality each
    assert float(out.layers["model_api"][0]) == pytest.approx(3_000)
    assert float(out.layers["quality"][0]) == pytest.approx(1_000)


def test_variable_shares_by_hand() -> None:
    days = [dt.datetime(2026, 1, d) for d in range(1, 8)]
    requests = {d: 1000.0 + 100 * i for i, d in enumerate(days)}
    cost = {"networking": {d: 0.01 * requests[d] for d in days}, "people": {d: 100.0 for d in days}}
    shares = variable_shares(cost, requests)
    assert shares["networking"] == pytest.approx(1.0)
    assert shares["people"] == 0.0


def test_roi_arithmetic() -> None:
    b = _baseline({"model_api": 4_400.0, "people": 2_000.0}, {"model_api": 1.0, "people": 0.0})
    r = roi("bot", 1.0, b)
    # value 8,000 outcomes x $1 = 8,000; cost 6,400 of which variable 4,400 (model_api) and fixed 2,000
    assert r.monthly_value_usd == 8_000 and r.monthly_cost_usd == 6_400
    assert r.roi == pytest.approx(1_600 / 6_400) and r.margin == pytest.approx(0.2)
    assert r.variable_cost_per_outcome_usd == pytest.approx(0.55)
    assert r.break_even_outcomes == pytest.approx(2_000 / 0.45)
    assert r.at_scale["10x"]["monthly_cost_usd"] == pytest.approx(2_000 + 44_000)
    assert r.at_scale["10x"]["profitable"] is True
    losing = roi("bot", 0.5, b)  # each outcome costs $0.55 of variable cost: never breaks even
    assert losing.break_even_outcomes is None and losing.at_scale["2x"]["profitable"] is False


def test_review_sections_by_hand() -> None:
    b = _baseline({"model_api": 4_400.0, "people": 2_000.0}, {"model_api": 1.0, "people": 0.0})
    small_prices = Prices.of(b.features["bot"].models[1])
    r = review(b, [roi("bot", 1.0, b)], resolve=lambda m, p: (small_prices, False))
    costs = {u["traffic"]: u for u in r.unit_costs}
    assert costs[10.0]["monthly_cost_usd"] == pytest.approx(44_000 + 2_000)
    assert costs[1.0]["cost_per_successful_outcome_usd"] == pytest.approx(6_400 / 8_000)
    assert r.dominates_first == "model_api"  # 44,000 of 46,000 at 10x
    # one more median tenant: 1,000 units on 10,000 = +10% traffic -> +440 of model_api, people unchanged
    assert r.marginal_tenant["monthly_cost_usd"] == pytest.approx(440)
    levers = {lever.lever: lever for lever in r.levers}
    assert levers["prompt compression"].monthly_savings_usd == pytest.approx(0.2 * 3_300)
    assert levers["response caching"].monthly_savings_usd == pytest.approx(440)
    savings = [lever.monthly_savings_usd for lever in r.levers]
    assert savings == sorted(savings, reverse=True)
    doc = r.to_json()
    assert set(doc) >= {"unit_costs", "scaling_risk", "gpu_stress", "marginal_tenant", "break_even", "levers"}


def test_bad_scenario_files(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("scenarios:\n  - {name: a, traffic_growth_pct: {dist: triangular, min: 5, mode: 1, max: 9}}\n")
    with pytest.raises(ConfigError, match="min <= mode <= max"):
        load_scenarios(path)
    path.write_text("scenarios:\n  - {name: a, traffic_growth: 5}\n")
    with pytest.raises(ConfigError, match="traffic_growth"):
        load_scenarios(path)
    path.write_text("scenarios:\n  - {name: a}\n  - {name: a}\n")
    with pytest.raises(ConfigError, match="unique"):
        load_scenarios(path)


def test_scenarios_and_review_on_the_demo_workspace(demo_workspace, tmp_path: Path) -> None:
    from unitcost.analysis.outlook import review_report, scenario_report
    from unitcost.demo_files import write_outlook_files

    files = write_outlook_files(tmp_path, Path(demo_workspace.store.path))
    doc = scenario_report(demo_workspace.store, demo_workspace.config, files.scenarios).to_json()
    assert doc["capacity_replanned"]
    json.dumps(doc, allow_nan=False)  # strict JSON: no NaN or Infinity
    by_name = {s["name"]: s for s in doc["scenarios"]}
    assert list(by_name) == ["best", "expected", "stress"]
    p50 = {n: s["monthly_cost_usd"]["p50"] for n, s in by_name.items()}
    assert p50["best"] < p50["expected"] < p50["stress"]
    for s in doc["scenarios"]:
        band = s["monthly_cost_usd"]
        assert band["p10"] <= band["p50"] <= band["p90"]
    bars = doc["tornado"]["bars"]
    assert bars and [b["swing_usd"] for b in bars] == sorted((b["swing_usd"] for b in bars), reverse=True)
    baseline = doc["baseline"]
    assert sum(baseline["layers_usd"].values()) == pytest.approx(baseline["monthly_cost_usd"])
    r, extras = review_report(demo_workspace.store, demo_workspace.config, plan=files.plan)
    rdoc = r.to_json()
    json.dumps({**rdoc, "gpu_cost_curve": extras["gpu_cost_curve"]}, allow_nan=False)
    assert rdoc["unit_costs"][0]["monthly_cost_usd"] == pytest.approx(baseline["monthly_cost_usd"])
    assert rdoc["scaling_risk"]["dominates_first"] in baseline["layers_usd"]
    assert {lever["lever"] for lever in rdoc["levers"]} >= {"response caching", "prompt compression", "context caps"}
    assert [c["name"] for c in rdoc["gpu_stress"]] == ["ramp x2", "ramp x10", "lose 25% GPUs", "lose 50% GPUs"]
    assert extras["gpu_cost_curve"]["cost_per_hour_usd"][3] > 0  # the pool re-planned at 1x
    # the demo values its outcomes: support-bot's ROI is (value - cost) / cost from its own figures
    bot = next(x for x in rdoc["break_even"] if x["feature"] == "support-bot")
    assert bot["monthly_value_usd"] == pytest.approx(6.0 * bot["successful_outcomes"])
    assert bot["roi"] == pytest.approx((bot["monthly_value_usd"] - bot["monthly_cost_usd"]) / bot["monthly_cost_usd"])
    plain, _ = review_report(demo_workspace.store, demo_workspace.config)
    assert plain.gpu_stress is None and any("no capacity plan" in n for n in plain.notes)


def test_cli_scenarios_and_review(demo_workspace, tmp_path: Path) -> None:
    import json
    import shutil

    from typer.testing import CliRunner

    from unitcost.cli import app
    from unitcost.demo import CONFIG_YAML
    from unitcost.demo_files import write_outlook_files

    demo_workspace.store.raw.execute("CHECKPOINT")
    db = tmp_path / "copy.duckdb"
    shutil.copy(demo_workspace.store.path, db)
    config = tmp_path / "unitcost.yaml"
    config.write_text(CONFIG_YAML)
    files = write_outlook_files(tmp_path, db)
    runner = CliRunner()
    base = ["--db", str(db), "--config", str(config)]
    run = runner.invoke(app, [*base, "scenarios", str(files.scenarios), "--json", "--html", str(tmp_path / "s.html")])
    assert run.exit_code == 0, run.output
    assert [s["name"] for s in json.loads(run.stdout)["scenarios"]] == ["best", "expected", "stress"]
    assert 'id="chart-tornado"' in (tmp_path / "s.html").read_text()
    text = runner.invoke(app, [*base, "review"])
    assert text.exit_code == 0, text.output
    assert "Levers, largest saving first" in text.output and "support-bot" in text.output
    missing = runner.invoke(app, [*base, "scenarios", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2 and "does not exist" in " ".join(missing.output.split())


def test_the_same_model_through_two_providers_keeps_both() -> None:
    """Calls are kept per (provider, model), not per model name: a no-change scenario reproduces the baseline."""
    via_azure = ModelUse("azure", "gpt-4o", False, 900, 900_000, 0.0, 90_000, 6.0, 0.0, 3.0, 0.0)
    via_openai = ModelUse("openai", "gpt-4o", False, 100, 100_000, 0.0, 10_000, 0.7, 0.0, 0.3, 0.0)
    f = FeatureBaseline("bot", units=1_000, successes=900, requests=1_000, cache_hits=0, models=[via_azure, via_openai])
    b = Baseline(START, END, {"bot": f}, {"model_api": 10.0}, {"model_api": 1.0}, False, 1, 1_000.0, 0.0)
    out = evaluate(b, {"traffic_growth_pct": np.array([0.0])}, Scenario(name="x"))
    assert float(out.layers["model_api"][0]) == pytest.approx(10.0)
    route = Route(feature="bot", from_model="gpt-4o", to_model="gpt-4o-mini", share=0.5)
    with pytest.raises(ConfigError, match="several providers"):
        evaluate(b, {"routing.0.share": np.array([0.5])}, Scenario(name="x", routing=[route]),
                 resolve=lambda m, p: (Prices(0, 0, 0, 0), False))  # fmt: skip


def test_roi_without_successes_has_no_break_even() -> None:
    f = FeatureBaseline("bot", units=100, successes=0, requests=100, cache_hits=0, fully_loaded_usd=50.0,
                        layers={"model_api": 50.0})  # fmt: skip
    b = Baseline(START, END, {"bot": f}, {"model_api": 50.0}, {"model_api": 1.0}, True, 1, 100.0, 0.0)
    r = roi("bot", 5.0, b)
    assert r.variable_cost_per_outcome_usd is None and r.break_even_outcomes is None and r.cost_per_outcome_usd is None
    assert r.monthly_value_usd == 0 and r.roi == -1.0


def test_baseline_window_never_starts_before_the_data(demo_workspace) -> None:
    from unitcost.analysis.baseline import measure_baseline

    month = measure_baseline(demo_workspace.store, demo_workspace.config, window_days=30)
    longer = measure_baseline(demo_workspace.store, demo_workspace.config, window_days=90)
    # the demo holds 30 days: asking for 90 measures the same days, scaled the same way
    assert longer.days == pytest.approx(month.days, abs=0.01)
    assert longer.requests == pytest.approx(month.requests, rel=1e-9)
    assert longer.total_usd == pytest.approx(month.total_usd, rel=1e-9)
