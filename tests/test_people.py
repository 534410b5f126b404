"""People time: the ops format and its cost, computed by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_csv
from unitcost.config import Config
from unitcost.ledger.people import people_costs
from unitcost.workspace import open_workspace

RECORDS = [
    {"date": "2026-10-01", "activity": "on-call", "hours": 8, "role": "sre"},
    {"date": "2026-10-01", "activity": "prompt-tuning", "hours": 3, "hourly_rate_usd": 150, "feature": "support-bot"},
    {"date": "2026-10-02", "activity": "release", "hours": 2, "role": "intern"},  # no rate for this role
    {"date": "2026-10-02", "activity": "incident", "hours": 30, "role": "sre"},  # more than a day: quarantined
    {"date": "2026-10-02", "activity": "evaluation", "hours": 1},  # neither rate nor role: quarantined
]
CONFIG = Config.model_validate({"people": {"rates": {"sre": 120}}})


def test_ops_records_and_their_cost(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ops.csv", RECORDS)
    with open_workspace(tmp_path / "w.duckdb", CONFIG) as ws:
        [res] = ws.ingest("ops", [path])
        assert (res.rows_read, res.rows_landed, res.rows_quarantined) == (5, 3, 2)
        reasons = ws.store.sql("SELECT record, field FROM quarantine ORDER BY record")
        assert reasons == [(4, "hours"), (5, "role")]
        [again] = ws.ingest("ops", [path])
        assert (again.rows_landed, again.duplicates_skipped) == (0, 3)
        costs = {(r["activity"], r["feature"]): r for r in people_costs(ws.store, CONFIG).to_pylist()}
    assert costs[("on-call", None)]["cost_usd"] == pytest.approx(8 * 120)
    assert costs[("prompt-tuning", "support-bot")]["cost_usd"] == pytest.approx(3 * 150)
    assert costs[("release", None)]["cost_usd"] == 0 and costs[("release", None)]["unpriced_hours"] == 2
