"""Spend anomalies: a planted spike is found with its expected value, impact and root cause; noise is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_drift import Traffic, build, day
from unitcost.alerts.anomaly import anomaly_rule
from unitcost.alerts.model import Finding, RuleContext
from unitcost.config import Config

DAILY_ONLY = Config(alerts={"anomaly": {"grains": ["day"], "min_impact_usd": 0.01}})


def findings(tmp_path: Path, traffic: list[Traffic]) -> list[Finding]:
    with build(tmp_path, traffic, config=DAILY_ONLY) as ws:
        return anomaly_rule(RuleContext(ws.store, ws.config, day(22), day(29)))


def test_a_volume_spike_is_one_episode_with_its_impact_and_cause(tmp_path: Path) -> None:
    # 400 requests a day for four weeks; on Monday Oct 26 another 800 (three times the usual day)
    found = findings(tmp_path, [Traffic("chat", 1, 28), Traffic("chat", 26, 26, per_day=800)])
    assert sorted((f.rule, tuple(f.scope.items())) for f in found) == [
        ("anomaly:day", ()),
        ("anomaly:day", (("feature", "chat"),)),
    ]
    for f in found:
        assert (f.started_at, f.ended_at) == (day(26), day(27))  # over: Oct 27 and 28 are normal again
        d = f.details
        assert d["actual_usd"] == pytest.approx(3 * d["expected_usd"], rel=0.1)
        assert d["impact_usd"] == pytest.approx(d["actual_usd"] - d["expected_usd"])
        assert d["impact_pct"] == pytest.approx(200, abs=20)
        assert f.impact_usd_per_month == pytest.approx(d["impact_usd"])  # an ended episode: its excess, once
        assert "above the usual range" in f.message
    cause = next(f for f in found if f.scope).details["root_cause"]
    assert cause[0]["driver"] == "volume" and cause[0]["change_usd"] > 0


def test_steady_traffic_raises_nothing(tmp_path: Path) -> None:
    assert findings(tmp_path, [Traffic("chat", 1, 28), Traffic("search", 1, 28, per_day=300)]) == []


def test_an_ongoing_drop_is_active(tmp_path: Path) -> None:
    # the feature loses two thirds of its traffic from Oct 27 on, up to the evaluation time
    found = findings(tmp_path, [Traffic("chat", 1, 26), Traffic("chat", 27, 28, per_day=130)])
    f = next(f for f in found if f.scope == {"feature": "chat"})
    assert f.started_at == day(27) and f.active and "below the usual range" in f.message
    assert f.impact_usd_per_month is not None and f.impact_usd_per_month < 0


def test_a_long_episode_is_explained_against_whole_weeks_before_it(tmp_path: Path) -> None:
    # traffic doubles from Sunday Oct 18 on; that Sunday has only two earlier Sundays (3 are needed to judge a
    # slot), so the episode starts on Monday Oct 19: 10 days, compared with the same days two weeks earlier
    with build(tmp_path, [Traffic("chat", 1, 28), Traffic("chat", 18, 28)], config=DAILY_ONLY) as ws:
        found = anomaly_rule(RuleContext(ws.store, ws.config, day(15), day(29)))
    f = next(f for f in found if f.scope)
    assert f.started_at == day(19) and f.active
    assert f.details["root_cause_baseline"] == "2026-10-05..2026-10-14"
    assert f.details["root_cause"][0]["driver"] == "volume" and "Against 2 weeks earlier" in f.message
