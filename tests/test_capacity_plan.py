"""Plan files: validation, the searched grid, and the workloads they describe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unitcost.capacity.plan import Plan, configurations, load_plan
from unitcost.capacity.stress import ramp_requests
from unitcost.capacity.workload import arrival_times, build_requests, read_azure_trace, workload_stats
from unitcost.errors import ConfigError, IngestError

EXAMPLE = Path(__file__).parent.parent / "examples" / "capacity" / "azure-conv.yaml"
TRACE = EXAMPLE.parent / "data" / "AzureLLMInferenceTrace_conv.csv"


def _plan(tmp_path: Path, text: str) -> Plan:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return load_plan(path)


BASE = """
workload:
  arrivals: {rate_per_s: 2.0}
  input_tokens: {fixed: 500}
  output_tokens: {distribution: lognormal, mean: 200, sd: 100}
  duration_s: 600
model: llama-3.1-8b
deployment:
  gpu: h100-sxm
"""


def test_example_plan_spans_more_than_a_thousand_configurations() -> None:
    plan = load_plan(EXAMPLE)
    configs = list(configurations(plan))
    # 4 GPUs x 4 TP x 2 precisions x 3 batch limits x 2 targets x 2 warm pools x 3 reserved x 2 spot shares
    assert len(configs) == 4 * 4 * 2 * 3 * 2 * 2 * 3 * 2
    assert len(set(configs)) == len(configs)


def test_lists_are_searched_and_fixed_policy_ignores_scaling_knobs(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        BASE
        + """  tensor_parallel: [1, 2]
  replicas: {min: [1, 3], max: 2}
autoscaling:
  policy: [fixed, utilization]
  target_utilization: [0.5, 0.8]
""",
    )
    configs = list(configurations(plan))
    fixed = [c for c in configs if c.policy == "fixed"]
    scaled = [c for c in configs if c.policy == "utilization"]
    # min 3 > max 2 is skipped for utilization; fixed runs replicas.min (1 or 3) once per TP, targets ignored
    assert len(scaled) == 2 * 1 * 2  # TP x min=1 x targets
    assert sorted((c.tensor_parallel, c.replicas_min) for c in fixed) == [(1, 1), (1, 3), (2, 1), (2, 3)]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("  arrivals: {rate_per_s: 2.0}\n", ""), "exactly one of trace, arrivals, concurrency"),
        (
            lambda t: t.replace("  arrivals: {rate_per_s: 2.0}\n", "  arrivals: {rate_per_s: 2.0}\n  concurrency: 4\n"),
            "got arrivals, concurrency",
        ),
        (lambda t: t.replace("{fixed: 500}", "{distribution: normal, mean: 5}"), "needs mean and sd"),
        (lambda t: t.replace("duration_s: 600", "duration_s: -1"), "workload.duration_s"),
        (lambda t: t.replace("gpu: h100-sxm", "gpu: h100-sxm\n  precision: fp4"), "deployment.precision"),
        (lambda t: t + "workload_extra: 1\n", "workload_extra"),
    ],
)
def test_bad_plans_name_the_key(tmp_path: Path, edit, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _plan(tmp_path, edit(BASE))


def test_class_shares_must_add_up(tmp_path: Path) -> None:
    text = BASE.replace(
        "  duration_s: 600\n",
        "  duration_s: 600\n  classes:\n    - {name: chat, share: 0.5}\n    - {name: batch, share: 0.3}\n",
    )
    with pytest.raises(ConfigError, match="add up to 1"):
        _plan(tmp_path, text)


def test_azure_trace_is_read_sorted_with_its_lengths() -> None:
    trace = read_azure_trace(TRACE)
    assert trace.arrival_s.size == 19366
    assert trace.arrival_s[0] == 0.0 and bool(np.all(np.diff(trace.arrival_s) >= 0))
    assert 3490 < trace.arrival_s[-1] < 3510  # 18:15:46.68 -> 19:14:08.40
    assert trace.input_tokens.mean() == pytest.approx(1154.7, abs=0.1)
    assert trace.output_tokens.mean() == pytest.approx(211.1, abs=0.1)


def test_a_bad_trace_row_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "t.csv"
    bad.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,10,5\n2023-11-16 18:00:01,0,5\n")
    with pytest.raises(IngestError, match=r"t.csv, record 3, field 'ContextTokens': token count below 1"):
        read_azure_trace(bad)
    with pytest.raises(IngestError, match="not an Azure LLM inference trace"):
        (tmp_path / "u.csv").write_text("a,b\n1,2\n")
        read_azure_trace(tmp_path / "u.csv")


def test_time_scale_doubles_the_rate(tmp_path: Path) -> None:
    text = f"""
workload:
  trace: {{path: {TRACE}, time_scale: 2.0}}
model: llama-3.1-8b
deployment: {{gpu: h100-sxm}}
"""
    requests = build_requests(_plan(tmp_path, text))
    assert requests.count == 19366
    assert requests.duration_s == pytest.approx(3501.7 / 2, abs=1.0)


def test_poisson_rate_and_daily_profile() -> None:
    rng = np.random.default_rng(3)
    flat = arrival_times(5.0, 3600.0, rng)
    assert flat.size == pytest.approx(18000, rel=0.03)
    profile = [1.0] * 12 + [3.0] * 12  # three times the rate in the afternoon
    times = arrival_times(2.0, 86400.0, rng, profile=profile)
    morning = np.sum(times < 43200)
    afternoon = np.sum(times >= 43200)
    assert afternoon / morning == pytest.approx(3.0, rel=0.05)
    # gamma gaps with burstiness 2: squared coefficient of variation ~4
    bursty = arrival_times(5.0, 36000.0, rng, burstiness=2.0)
    gaps = np.diff(bursty)
    assert gaps.var() / gaps.mean() ** 2 == pytest.approx(4.0, rel=0.1)


def test_workload_stats_and_closed_loop(tmp_path: Path) -> None:
    plan = _plan(tmp_path, BASE)
    stats = workload_stats(build_requests(plan))
    assert stats.mean_rate_per_s == pytest.approx(2.0, rel=0.1)
    assert stats.input_mean == 500 and stats.output_mean == pytest.approx(200, rel=0.1)
    assert stats.arrival_cv2 == pytest.approx(1.0, rel=0.2)
    closed = _plan(tmp_path, BASE.replace("arrivals: {rate_per_s: 2.0}", "concurrency: 8"))
    requests = build_requests(closed)
    assert requests.concurrency == 8 and requests.count > 8


def test_ramp_grows_the_rate_linearly() -> None:
    n = 20000
    from unitcost.capacity.types import Requests

    base = Requests(
        np.sort(np.random.default_rng(0).uniform(0, 1000, n)),
        np.ones(n, np.int64),
        np.ones(n, np.int64),
        np.zeros(n, np.int64),
        duration_s=1000.0,
    )
    ramped, load = ramp_requests(base, 10.0, seed=1)
    first = np.sum(ramped.arrival_s < 100)
    last = np.sum(ramped.arrival_s >= 900)
    # the rate at t is 20/s * (1 + 9 t / 1000); integrated over [0, 100) that is 20 * (100 + 45) = 2,900
    # arrivals, over [900, 1000) 20 * (100 + 855) = 19,100
    assert first == pytest.approx(2900, rel=0.05)
    assert last == pytest.approx(19100, rel=0.03)
    assert load[0] == pytest.approx(1.0, abs=0.01) and load[-1] == pytest.approx(10.0, abs=0.01)


def test_zero_replicas_and_empty_workloads_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"replicas\.min must be at least 1"):
        _plan(tmp_path, BASE.replace("gpu: h100-sxm", "gpu: h100-sxm\n  replicas: {min: 0, max: 2}"))
    empty = _plan(
        tmp_path, BASE.replace("rate_per_s: 2.0", "rate_per_s: 0.0001").replace("duration_s: 600", "duration_s: 1")
    )
    with pytest.raises(ConfigError, match="holds no request"):
        build_requests(empty)
