"""The analytical screen's queueing: Erlang C and its M/M/c limit, priorities, wait quantiles, the screen."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unitcost.capacity.costing import GpuPrices
from unitcost.capacity.plan import Configuration, Slo
from unitcost.capacity.queueing import (
    erlang_c,
    mean_wait_s,
    mixture_quantile_s,
    priority_mean_waits_s,
    wait_quantile_s,
)
from unitcost.capacity.screen import screen
from unitcost.capacity.types import EngineSpec, StepCoefficients
from unitcost.capacity.workload import WorkloadStats


def erlang_c_by_recursion(c: int, a: float) -> float:
    """Textbook Erlang C from the Erlang B recursion B_k = a B_{k-1} / (k + a B_{k-1}), independent of ours."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return c * b / (c - a * (1 - b))


@pytest.mark.parametrize(("c", "a"), [(1, 0.5), (2, 1.5), (8, 6.0), (64, 55.0), (512, 480.0), (4096, 4000.0)])
def test_erlang_c_matches_the_recursion(c: int, a: float) -> None:
    assert float(erlang_c(c, a)) == pytest.approx(erlang_c_by_recursion(c, a), rel=1e-9)


def test_erlang_c_hand_values() -> None:
    # M/M/1: P(wait) = rho. M/M/2 at a = 1: C = 1/3 (by hand: B = 0.2, C = 2*0.2/(2 - 0.8)).
    assert float(erlang_c(1, 0.7)) == pytest.approx(0.7)
    assert float(erlang_c(2, 1.0)) == pytest.approx(1 / 3)
    assert float(erlang_c(3, 3.0)) == 1.0  # unstable
    assert math.isinf(float(mean_wait_s(2, 2.0, 1.0)))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.floats(0.05, 0.98))
def test_erlang_c_is_a_probability_that_grows_with_load(c: int, rho: float) -> None:
    low, high = float(erlang_c(c, c * rho * 0.9)), float(erlang_c(c, c * rho))
    assert 0.0 <= low <= high <= 1.0


def test_priorities_reduce_to_erlang_c_and_conserve_work() -> None:
    c, s = 4, 2.0
    rates = np.array([0.6, 0.9])
    one = float(mean_wait_s(c, rates.sum(), s))
    same_level = priority_mean_waits_s(c, rates, s, np.array([0, 0]))
    assert same_level == pytest.approx([one, one])
    split = priority_mean_waits_s(c, rates, s, np.array([1, 0]))
    assert split[0] < one < split[1]
    # with equal service times the average wait is the same whatever the order (work conservation)
    assert float(np.average(split, weights=rates)) == pytest.approx(one, rel=1e-12)


def test_wait_quantile_of_mm1() -> None:
    # M/M/1, lambda 0.5, mu 1: P(W > t) = 0.5 exp(-0.5 t); the 95th percentile solves 0.5 e^{-t/2} = 0.05
    p, w = float(erlang_c(1, 0.5)), float(mean_wait_s(1, 0.5, 1.0))
    assert float(wait_quantile_s(np.array(p), np.array(w), 0.95)) == pytest.approx(2 * math.log(10))
    assert float(wait_quantile_s(np.array(p), np.array(w), 0.4)) == 0.0  # half the arrivals do not wait
    # the mixture of one window is the same quantile
    got = mixture_quantile_s(np.array([1.0]), np.array([0.0]), np.array([p]), np.array([w]), 0.95)
    assert got == pytest.approx(2 * math.log(10), rel=1e-6)


def _mmc_stats(rate: float, output_mean: float) -> WorkloadStats:
    return WorkloadStats(
        window_s=300.0,
        rates_per_s=np.full(12, rate),
        window_widths_s=np.full(12, 300.0),
        input_mean=1.0,
        input_sq_mean=1.0,
        input_sample=np.ones(64),
        input_quantiles={50: 1.0, 95: 1.0, 99: 1.0},
        output_mean=output_mean,
        output_cv2=1.0,  # exponential service
        output_quantiles={
            50: output_mean * math.log(2),
            95: output_mean * math.log(20),
            99: output_mean * math.log(100),
        },
        arrival_cv2=1.0,  # Poisson
        class_shares=np.array([1.0]),
        class_priority=np.array([0]),
        concurrency=0,
        duration_s=3600.0,
    )


@pytest.mark.parametrize(("slots", "replicas", "rho"), [(1, 1, 0.6), (8, 1, 0.8), (16, 4, 0.9), (256, 2, 0.95)])
def test_screen_mmc_limit_matches_erlang_c_within_2_percent(slots: int, replicas: int, rho: float) -> None:
    """Constant step time, one-token prompts, exponential outputs, Poisson arrivals: the screen is M/M/c."""
    step = 0.01
    output_mean = 200.0
    service = output_mean * step  # one slot held for output_mean steps
    servers = slots * replicas
    rate = rho * servers / service
    engine = EngineSpec(StepCoefficients(step, 0.0, 0.0, 0.0, 0.0), slots, 10**12, 10**9, 1)
    config = Configuration("gpu", 1, "bf16", slots, 10**9, replicas, replicas, "fixed", 0, 0, 0, 0, 0, 0, 0.0)
    e = screen(config, engine, _mmc_stats(rate, output_mean), GpuPrices(1, 1, 1), {"all": Slo()})
    a = rate * service
    expected = erlang_c_by_recursion(servers, a) * service / (servers - a)
    assert e.metrics["wait_mean_s"] == pytest.approx(expected, rel=0.02)
    assert e.metrics["wait_probability"] == pytest.approx(erlang_c_by_recursion(servers, a), rel=0.02)
    assert e.metrics["requests_per_s"] == pytest.approx(rate)
    # cost: replicas GPUs at $1/h
    assert e.metrics["cost_per_hour_usd"] == pytest.approx(replicas)


def test_screen_marks_overload_unstable() -> None:
    engine = EngineSpec(StepCoefficients(0.01, 0.0, 0.0, 0.0, 0.0), 4, 10**12, 10**9, 1)
    config = Configuration("gpu", 1, "bf16", 4, 10**9, 1, 1, "fixed", 0, 0, 0, 0, 0, 0, 0.0)
    stats = _mmc_stats(rate=4 / 2.0 * 1.2, output_mean=200.0)  # 120% of the slots' capacity
    e = screen(config, engine, stats, GpuPrices(1, 1, 1), {"all": Slo(e2e_p95_s=100.0)})
    assert math.isinf(e.metrics["e2e_p95_s"])
    assert not e.slo_met


def test_screen_autoscaling_picks_the_fewest_replicas_under_the_target() -> None:
    engine = EngineSpec(StepCoefficients(0.01, 0.0, 0.0, 0.0, 0.0), 10, 10**12, 10**9, 1)
    # each replica: 10 slots, service 2 s -> a target of 0.5 allows 5 running sequences = 2.5 req/s per replica
    stats = _mmc_stats(rate=6.0, output_mean=200.0)
    config = Configuration("gpu", 1, "bf16", 10, 10**9, 1, 8, "utilization", 0.5, 1.0, 300.0, 600.0, 0, 0, 0.0)
    e = screen(config, engine, stats, GpuPrices(2.0, 1.0, 0.5), {"all": Slo()})
    assert e.metrics["replicas_avg"] == 3  # 6 req/s / 2.5 per replica -> 3
    assert e.metrics["cost_per_hour_usd"] == pytest.approx(3 * 2.0)
