"""People time: on-call, incidents, releases, evaluations, prompt tuning (the ``people`` layer).

``unitcost ingest ops FILE`` reads CSV, Parquet or JSONL labour records with the columns
of the ``ops_hours`` table (docs/schema.md): ``date``, ``activity``, ``hours`` and either
``hourly_rate_usd`` or a ``role`` whose rate comes from ``people.rates`` in unitcost.yaml;
``feature`` / ``tenant`` when the work was for one of them. Records have no natural id, so
the key is a hash of the record's values: re-ingesting a file never double counts.
"""

from __future__ import annotations

from pathlib import Path

from unitcost.ingest.base import Adapter, Mapping, identity_mapping, quote_ident, sql_literal
from unitcost.ingest.registry import register
from unitcost.schema import OPS_HOURS


@register
class OpsAdapter(Adapter):
    """Labour records into ``ops_hours``."""

    name = "ops"
    description = "people time (date, activity, hours, hourly rate or role, optional feature / tenant)"

    def mappings(self, columns: list[str], path: Path) -> list[Mapping]:
        columns = [c for c in columns if c != "row_hash"]
        base = identity_mapping(OPS_HOURS, columns, path)
        values = ", ".join(f"COALESCE(CAST(s.{quote_ident(c)} AS VARCHAR), '')" for c in sorted(columns))
        exprs = dict(base.columns)
        exprs["row_hash"] = f"md5(concat_ws({sql_literal(chr(31))}, {values}))"
        checks = (
            ("hours", "hours < 0 OR hours > 24", "hours must be between 0 and 24 for one day"),
            ("hourly_rate_usd", "hourly_rate_usd < 0", "cannot be negative"),
            ("role", "hourly_rate_usd IS NULL AND role IS NULL", "give an hourly_rate_usd or a role"),
        )
        return [Mapping(OPS_HOURS, exprs, extra=base.extra, checks=checks)]
