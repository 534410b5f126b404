"""Regenerate docs/schema.md from src/unitcost/schema.py (run after changing the schema)."""

from __future__ import annotations

from pathlib import Path

from unitcost.schema import TABLES

INTRO = {
    "usage": "One row per model call (or per request answered from the application's response cache). "
    "Deduplicated on `request_id`.",
    "outcomes": "One row per unit of work whose outcome is known. "
    "Deduplicated on `trace_id` (the first row seen wins).",
    "quarantine": "Rows that could not be used, kept with the reason. Nothing is dropped silently.",
    "ingest_log": "One row per ingested file and target table (`unitcost sources` lists it).",
    "unit_keys": "Internal dictionary: unit of work key -> dense integer id (lets reports group on an integer).",
    "ops_hours": "People time spent on the AI application (`unitcost ingest ops`): the `people` layer of the "
    "cost stack. Deduplicated on `row_hash`.",
    "bill_lines": "One row per line of a FOCUS cost and usage file (`unitcost ingest focus`, FOCUS 1.0-1.3): every "
    "FOCUS column under its FOCUS name, typed; custom `x_` and other columns in `attributes`. Amounts are in the "
    "line's `BillingCurrency` (not always USD): never sum across currencies. Deduplicated on `row_hash`. "
    "See [formats/focus.md](formats/focus.md).",
}

HEAD = """# Canonical schema

Every table unitcost stores, column by column. `src/unitcost/schema.py` declares them once and
`scripts/gen_schema_doc.py` writes this page from it; a test fails when this page misses a column.
Times are UTC (`TIMESTAMP` without zone, UTC by convention); money is USD.
"""

TAIL = Path(__file__).with_name("schema_rules.md")


def main() -> None:
    out = [HEAD]
    for t in TABLES:
        out += [f"## `{t.name}`", "", INTRO.get(t.name, ""), ""]
        out += ["| column | type | unit | required | meaning |", "|---|---|---|---|---|"]
        for c in t.columns:
            req = "yes" if c.required else ""
            out.append(f"| `{c.name}` | {c.sql_type} | {c.unit} | {req} | {c.description} |")
        out.append("")
    out.append(TAIL.read_text())
    Path("docs/schema.md").write_text("\n".join(out))


if __name__ == "__main__":
    main()
