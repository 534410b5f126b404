"""The search finds the true cheapest configuration; the plan command's JSON, HTML and stress output."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from unitcost.capacity.plan import configurations, load_plan
from unitcost.capacity.search import Planner, _score, pareto_front, run_plan
from unitcost.capacity.workload import build_requests, workload_stats
from unitcost.cli import app

EXAMPLE = Path(__file__).parent.parent / "examples" / "capacity" / "azure-conv.yaml"

SMALL = """
name: small grid
workload:
  arrivals: {rate_per_s: 3.0, process: gamma, burstiness: 1.5}
  input_tokens: {distribution: lognormal, mean: 900, sd: 600, max: 6000}
  output_tokens: {distribution: lognormal, mean: 180, sd: 120, max: 1000}
  duration_s: 900
  seed: 7
model: llama-3.1-8b
deployment:
  gpu: [h100-sxm, a100-80gb, l40s, l4]
  precision: [bf16, fp8]
  max_batch: 64
  replicas: {min: [1, 2, 3], max: 3}
autoscaling: {policy: fixed}
purchase: {reserved_gpus: [0, 1]}
slo: {ttft_p95_s: 1.0, tpot_p95_ms: 40, e2e_p95_s: 12}
search: {finalists: 3}
"""


@pytest.fixture(scope="module")
def small_plan(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("plan") / "small.yaml"
    path.write_text(SMALL)
    return load_plan(path)


def test_search_returns_the_true_cheapest_of_an_exhaustive_grid(small_plan) -> None:
    configs = list(configurations(small_plan))
    assert len(configs) == 4 * 2 * 3 * 2  # GPUs x precisions x fixed replica counts x reserved
    planner = Planner(small_plan)
    requests = build_requests(small_plan)
    stats = workload_stats(requests)
    # brute force: simulate every configuration that fits
    truth = {}
    for i, config in enumerate(configs):
        evaluation, _ = planner.simulate(config, requests, stats, config.replicas_min)
        truth[i] = evaluation
    meeting = [i for i, e in truth.items() if e.slo_met]
    assert meeting, "the grid must hold at least one configuration that meets the SLOs"
    assert len(meeting) < len([e for e in truth.values() if e.feasible]), "and some that do not"
    cheapest = min(meeting, key=lambda i: truth[i].metrics["cost_per_hour_usd"])
    result = run_plan(small_plan)
    assert result.best is not None
    assert result.simulated[result.best].metrics["cost_per_hour_usd"] == pytest.approx(
        truth[cheapest].metrics["cost_per_hour_usd"]
    )
    assert result.configurations[result.best] == configs[cheapest]
    assert len(result.simulated) < len(configs)  # it got there without simulating everything


def test_weights_that_do_not_fit_are_infeasible(small_plan) -> None:
    text = SMALL.replace("llama-3.1-8b", "llama-3.1-70b")
    path = Path(small_plan.base_dir) / "big.yaml"
    path.write_text(text)
    result = run_plan(load_plan(path))
    l4 = [i for i, c in enumerate(result.configurations) if c.gpu == "l4"]
    assert l4 and all(not result.screened[i].feasible for i in l4)  # 70B never fits on one 24 GB L4
    assert all(_score(result.screened[i])[0] == 2 for i in l4)


def test_pareto_front_is_not_dominated() -> None:
    points = [(3.0, 1.0), (1.0, 3.0), (2.0, 2.0), (2.5, 2.5), (1.0, 4.0), (math.inf, 0.1)]
    front = pareto_front(points)
    assert sorted(front) == [0, 1, 2]
    for i in front:
        assert not any(p[0] <= points[i][0] and p[1] < points[i][1] for p in points if math.isfinite(p[0]))


@pytest.fixture(scope="module")
def example_json() -> dict:
    result = CliRunner().invoke(app, ["plan", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_plan_json_contract(example_json: dict) -> None:
    doc = example_json
    assert doc["configurations"] == 2304 and doc["requests"] == 19366
    assert len(doc["results"]) == 2304
    required = {
        "gpu", "tensor_parallel", "precision", "max_batch", "replicas_min", "replicas_max", "policy",
        "target_utilization", "warm_pool", "reserved_gpus", "spot_share", "ttft_p50_s", "ttft_p95_s",
        "tpot_p50_ms", "tpot_p95_ms", "e2e_p95_s", "output_tokens_per_s", "requests_per_s", "gpu_utilization",
        "replicas_avg", "cost_per_hour_usd", "cost_per_month_usd", "cost_per_1k_output_tokens_usd",
        "cost_per_request_usd", "slo_met",
    }  # fmt: skip
    feasible = [r for r in doc["results"] if r["feasible"]]
    assert all(required <= set(r) for r in feasible)
    best = doc["best"]
    assert best is not None and best["method"] == "simulated" and best["slo_met"]
    assert best["ttft_p95_s"] <= 2.0 and best["tpot_p95_ms"] <= 60 and best["e2e_p95_s"] <= 20
    # nothing simulated that meets the SLOs is cheaper than the best
    cheaper = [r for r in feasible if r["method"] == "simulated" and r["slo_met"]]
    assert all(r["cost_per_hour_usd"] >= best["cost_per_hour_usd"] for r in cheaper)
    # the month is 730 hours; per-request cost is the hourly cost over the requests served in an hour
    assert best["cost_per_month_usd"] == pytest.approx(best["cost_per_hour_usd"] * 730)
    assert best["cost_per_request_usd"] == pytest.approx(best["cost_per_hour_usd"] / (best["requests_per_s"] * 3600))
    # 70B in bf16 does not fit on one 80 GB GPU: reported, not dropped
    h100_tp1_bf16 = [r for r in doc["results"] if r["gpu"] == "h100-sxm" and r["tensor_parallel"] == 1
                     and r["precision"] == "bf16"]  # fmt: skip
    assert h100_tp1_bf16 and all(not r["feasible"] and r["reason"] for r in h100_tp1_bf16)
    assert any(r["pareto"] for r in feasible)


def test_plan_html_and_stress(tmp_path: Path) -> None:
    html = tmp_path / "plan.html"
    result = CliRunner().invoke(app, ["plan", str(EXAMPLE), "--html", str(html), "--stress", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    page = html.read_text()
    for chart in ("chart-latency-vs-load", "chart-replicas-over-time", "chart-cost-vs-p95", "table-stress"):
        assert f'id="{chart}"' in page or f"id='{chart}'" in page
    names = [c["name"] for c in doc["stress"]]
    assert names == ["ramp x2", "ramp x10", "lose 25% GPUs", "lose 50% GPUs"]
    x10 = doc["stress"][1]
    # ten times the traffic on a fleet capped at 8 replicas must break an SLO, and name it and the load
    assert not x10["slo_met"] and x10["first_breach"] in ("ttft_p95_s", "tpot_p95_ms", "e2e_p95_s")
    assert 1.0 <= x10["breach_load_multiplier"] <= 10.0


def test_bad_plan_is_a_clear_cli_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("workload: {concurrency: 4}\nmodel: llama-3.1-8b\ndeployment: {gpu: h100}\n")
    result = CliRunner().invoke(app, ["plan", str(bad)])
    assert result.exit_code == 2
    assert "input_tokens is required" in result.output


def test_classes_get_their_own_slo_and_priority(tmp_path: Path) -> None:
    path = tmp_path / "classes.yaml"
    path.write_text(
        """
workload:
  arrivals: {rate_per_s: 6.0}
  input_tokens: {distribution: lognormal, mean: 1500, sd: 800, max: 8000}
  output_tokens: {distribution: lognormal, mean: 200, sd: 100, max: 800}
  duration_s: 600
  classes:
    - {name: chat, share: 0.5, priority: 1, slo: {ttft_p95_s: 1.0}}
    - {name: batch, share: 0.5, priority: 0, slo: {e2e_p95_s: 120}}
model: llama-3.1-8b
deployment: {gpu: l4, precision: fp8, max_batch: 16, replicas: {min: [1, 2, 3]}}
search: {finalists: 3}
"""
    )
    result = run_plan(load_plan(path))
    simulated = [result.simulated[i] for i in result.simulated]
    assert simulated and all(set(e.per_class) == {"chat", "batch"} for e in simulated)
    served = [e for e in simulated if math.isfinite(e.per_class["batch"]["ttft_p95_s"])]
    loaded = min(served, key=lambda e: e.metrics["cost_per_hour_usd"])  # the smallest fleet that serves all
    chat, batch = loaded.per_class["chat"], loaded.per_class["batch"]
    assert chat["ttft_p95_s"] < batch["ttft_p95_s"]  # priority: chat is admitted first
    assert 0.0 <= chat["slo_attainment"] <= 1.0 and 0.0 <= batch["slo_attainment"] <= 1.0


def test_closed_loop_plan_counts_only_the_requests_sent(tmp_path: Path) -> None:
    path = tmp_path / "closed.yaml"
    path.write_text(
        """
workload:
  concurrency: 32
  input_tokens: {fixed: 1000}
  output_tokens: {fixed: 200}
  duration_s: 300
model: llama-3.1-8b
deployment: {gpu: [h100-sxm, l40s], precision: fp8, max_batch: 16, replicas: {min: [1, 2]}}
slo: {e2e_p95_s: 20}
search: {finalists: 4}
"""
    )
    result = run_plan(load_plan(path))
    assert result.best is not None
    for i, simulated in result.simulated.items():
        screened = result.screened[i].metrics
        # the clients' rows never sent are not failures: every request sent is served
        assert simulated.metrics["served_share"] == 1.0 and simulated.slo_met
        # screen and simulation agree on closed-loop throughput (N clients / e2e) within 10%
        assert simulated.metrics["requests_per_s"] == pytest.approx(screened["requests_per_s"], rel=0.1)


def test_stress_when_nothing_fits_is_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "nofit.yaml"
    path.write_text(SMALL.replace("llama-3.1-8b", "llama-3.1-70b").replace("[h100-sxm, a100-80gb, l40s, l4]", "l40s")
                    .replace("[bf16, fp8]", "bf16"))  # fmt: skip
    result = CliRunner().invoke(app, ["plan", str(path), "--stress", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["best"] is None and doc["stress"] == [] and not any(r["feasible"] for r in doc["results"])
