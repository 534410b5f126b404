"""Shared pieces of the application-log formats (LiteLLM, Langfuse).

SQL expressions over the staged record ``s`` (text, JSON, tags, durations), staging of
JSON documents, and the provider/model resolution done once per distinct
(provider hint, model) of a file through genai-prices' model matching, never per row.
"""

from __future__ import annotations

import functools
from pathlib import Path

import duckdb
from genai_prices import data_snapshot

from unitcost.errors import IngestError
from unitcost.ingest.base import Adapter, quote_ident, stage_file

#: Lookup table of (provider hint, model as logged) -> (provider, model), filled once per file.
MODEL_LOOKUP = "_model_lookup"
#: the working tables stage_records() and register_models() leave for the mappings (dropped after each file)
WORKING_TABLES = (MODEL_LOOKUP, "_pages")


def text_of(columns: list[str], name: str) -> str:
    """SQL: staged column ``name`` as text (JSON strings unquoted), or NULL when the file lacks it."""
    return f"json_extract_string(to_json(s.{quote_ident(name)}), '$')" if name in columns else "NULL"


def json_of(expr: str) -> str:
    """SQL: ``expr`` (a struct, a JSON value, or text holding JSON) as a JSON value; NULL if not JSON."""
    j = f"to_json({expr})"
    return f"(CASE WHEN json_type({j}) = 'VARCHAR' THEN TRY_CAST(json_extract_string({j}, '$') AS JSON) ELSE {j} END)"


def tag_value(tags: str, key: str) -> str:
    """SQL: the value of the first ``key:value`` tag in the JSON list ``tags`` (NULL if none)."""
    tag = f"list_filter(TRY_CAST({tags} AS VARCHAR[]), t -> lower(trim(t)) LIKE '{key}:%')[1]"
    return f"NULLIF(trim(substr({tag}, strpos({tag}, ':') + 1)), '')"


def ms_between(start: str, end: str) -> str:
    """SQL: milliseconds from timestamp text ``start`` to ``end`` (quotes around the text ignored)."""

    def ts(x: str) -> str:
        return f"TRY_CAST(trim({x}, '\"') AS TIMESTAMPTZ)"

    return f"((epoch_us({ts(end)}) - epoch_us({ts(start)})) / 1000.0)"


def stage_records(adapter: Adapter, con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    """Stage ``path`` with the base reader; API pages ``{"data": [records]}`` are unwrapped into records."""
    columns = stage_file(adapter, con, path, in_place=False)  # re-staged below and by normalize()
    if "data" in columns and "id" not in columns and "request_id" not in columns:
        kind = con.execute("SELECT typeof(data) FROM _stage LIMIT 1").fetchone()
        if kind and str(kind[0]).endswith("[]"):
            try:
                con.execute("CREATE OR REPLACE TEMP TABLE _pages AS SELECT * FROM _stage")
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE _stage AS "
                    "SELECT unnest(r) FROM (SELECT unnest(data) AS r FROM _pages ORDER BY rowid)"
                )
            except duckdb.Error as e:
                raise IngestError(f"the records in 'data' are not objects ({adapter.name})", path=str(path)) from e
            con.execute("DROP TABLE _pages")
            columns = [r[0] for r in con.execute("DESCRIBE _stage").fetchall()]
    return columns


def normalize(
    con: duckdb.DuckDBPyConnection,
    columns: list[str],
    json_columns: tuple[str, ...],
    text_columns: tuple[str, ...] = (),
) -> None:
    """Re-stage ``_stage`` once: ``json_columns`` as JSON values (from objects, or JSON text in a CSV),
    ``text_columns`` as text without surrounding JSON quotes (dates in Langfuse's CSV export)."""
    replace = [f"{json_of('s.' + quote_ident(c))} AS {quote_ident(c)}" for c in json_columns if c in columns]
    replace += [f"trim({text_of(columns, c)}, '\"') AS {quote_ident(c)}" for c in text_columns if c in columns]
    if replace:
        select = f"SELECT * REPLACE ({', '.join(replace)}) FROM _stage s ORDER BY rowid"
        con.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS {select}")


@functools.lru_cache(maxsize=4096)
def resolve_model(hint: str | None, model: str | None) -> tuple[str, str | None]:
    """Return (provider as genai-prices names it, model without a provider prefix).

    ``hint`` is the provider the source logged (LiteLLM's ``custom_llm_provider``, a
    Langfuse metadata ``provider``), matched through genai-prices' provider aliases
    (``bedrock`` -> ``aws``, ``vertex_ai`` -> ``google``) and kept as logged when
    genai-prices does not know it (a self-hosted server is never priced as an API).
    Without one: an ``openai/`` style prefix of the model, else genai-prices' model
    matching, else ``unknown``.

    >>> resolve_model(None, "openai/gpt-4o"), resolve_model("bedrock", "bedrock/anthropic.claude-v2")
    (('openai', 'gpt-4o'), ('aws', 'anthropic.claude-v2'))
    >>> resolve_model("hosted_vllm", "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct")
    ('hosted_vllm', 'meta-llama/Llama-3.1-8B-Instruct')
    """
    snapshot = data_snapshot.get_snapshot()

    def by_id(name: str | None) -> str | None:
        try:
            return snapshot.find_provider(None, name, None).id if name else None
        except LookupError:
            return None

    def by_model(name: str | None) -> str | None:
        try:
            return snapshot.find_provider(name, None, None).id if name else None
        except LookupError:
            return None

    if model and "/" in model:  # a provider prefix: "openai/gpt-4o", "bedrock/anthropic.claude-..."
        prefix, rest = model.split("/", 1)
        known = by_id(prefix)
        if (hint is None and known) or (hint and (prefix.lower() == hint.lower() or (known and known == by_id(hint)))):
            hint, model = hint or prefix, rest
    if hint:
        return by_id(hint) or hint, model
    return by_model(model) or "unknown", model


def register_models(con: duckdb.DuckDBPyConnection, hint: str, model: str) -> None:
    """Fill :data:`MODEL_LOOKUP` for the distinct (hint, model) SQL values over ``_stage s``."""
    pairs = con.execute(f"SELECT DISTINCT {hint}, {model} FROM _stage s").fetchall()
    columns = "hint VARCHAR, raw_model VARCHAR, provider VARCHAR, model VARCHAR"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {MODEL_LOOKUP} ({columns})")
    rows = [(h, m, *resolve_model(h or None, m or None)) for h, m in pairs]
    if rows:
        con.executemany(f"INSERT INTO {MODEL_LOOKUP} VALUES (?, ?, ?, ?)", rows)


def looked_up(field: str, hint: str, model: str) -> str:
    """SQL: the resolved ``provider`` or ``model`` of the record (see :func:`register_models`)."""
    return (
        f"(SELECT l.{field} FROM {MODEL_LOOKUP} l "
        f"WHERE l.hint IS NOT DISTINCT FROM {hint} AND l.raw_model IS NOT DISTINCT FROM {model})"
    )
