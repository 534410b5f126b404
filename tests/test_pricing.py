"""The price table reproduces genai-prices' own calc_price, model by model."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from genai_prices import Usage, calc_price, data_snapshot
from genai_prices import types as gp

from unitcost.config import Config
from unitcost.errors import ConfigError
from unitcost.pricing import build_price_table

SUPPORTED = {"input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "output_reasoning_mtok"}
PROVIDERS = ("openai", "anthropic", "google", "mistral", "deepseek", "x-ai", "groq")
WHEN = dt.datetime(2026, 10, 1, 12, 0)


def _models() -> list[tuple[str, str]]:
    out = []
    for provider in data_snapshot.get_snapshot().providers:
        if provider.id not in PROVIDERS:
            continue
        for model in provider.models:
            mp = model.get_prices(WHEN.replace(tzinfo=dt.UTC))
            keys = {k for k, v in mp.__dict__.items() if v is not None}
            # only models whose prices are all token prices our schema carries (others: web search etc.)
            if keys and keys <= SUPPORTED | {"web_searches_kcount", "storage_searches_kcount"}:
                try:  # a few ids are not matched by their own match rules; users send real model names
                    found = data_snapshot.get_snapshot().find_provider_model(model.id, None, provider.id, None)
                except LookupError:
                    continue
                if "input_mtok" in keys and found[1] is model:
                    out.append((provider.id, model.id))
    return out


MODELS = _models()


def test_enough_models_are_checked() -> None:
    assert len(MODELS) > 100


def _our_cost(row: dict[str, object], u: dict[str, int]) -> float:
    cr, cw, reasoning = u["cache_read_tokens"], u["cache_write_tokens"], u["reasoning_tokens"]
    return (
        (u["input_tokens"] - cr - cw) * row["input_per_mtok"]  # type: ignore[operator]
        + cr * row["cache_read_per_mtok"]  # type: ignore[operator]
        + cw * row["cache_write_per_mtok"]  # type: ignore[operator]
        + (u["output_tokens"] - reasoning) * row["output_per_mtok"]  # type: ignore[operator]
        + reasoning * row["reasoning_per_mtok"]  # type: ignore[operator]
    ) / 1e6 + row["per_request_usd"]  # type: ignore[operator]


def test_every_model_matches_calc_price() -> None:
    rng = random.Random(1)
    table = build_price_table(MODELS, Config(), WHEN, WHEN + dt.timedelta(hours=1))
    assert table.unpriced == []
    mismatches = []
    for provider, model in MODELS:
        rows = [r for r in table.rows if r["provider"] == provider and r["model"] == model]
        for _ in range(4):
            inp = rng.choice([rng.randint(0, 5000), rng.randint(100_000, 400_000)])
            cr = rng.randint(0, inp // 2)
            cw = rng.randint(0, (inp - cr) // 2)
            out = rng.randint(0, 4000)
            reasoning = rng.randint(0, out)
            usage = {
                "input_tokens": inp,
                "cache_read_tokens": cr,
                "cache_write_tokens": cw,
                "output_tokens": out,
                "reasoning_tokens": reasoning,
            }
            [row] = [r for r in rows if r["input_tokens_above"] < inp <= r["input_tokens_upto"]]  # type: ignore[operator]
            theirs = calc_price(
                Usage(
                    input_tokens=inp,
                    cache_read_tokens=cr,
                    cache_write_tokens=cw,
                    output_tokens=out,
                    output_reasoning_tokens=reasoning,
                ),
                model,
                provider_id=provider,
                genai_request_timestamp=WHEN.replace(tzinfo=dt.UTC),
            ).total_price
            ours = _our_cost(row, usage)
            if abs(ours - float(theirs)) > 1e-9 * max(1.0, float(theirs)):
                mismatches.append((provider, model, usage, ours, float(theirs)))
    assert mismatches == []


def test_price_periods_follow_genai_prices_start_dates() -> None:
    info = data_snapshot.get_snapshot().find_provider_model("mistral-medium-latest", None, "mistral", None)[1]
    assert not isinstance(info.prices, gp.ModelPrice)  # this model has dated prices
    table = build_price_table(
        [("mistral", "mistral-medium-latest")], Config(), dt.datetime(2026, 6, 1), dt.datetime(2026, 7, 1)
    )
    bounds = [(r["valid_from"], r["valid_to"], r["input_per_mtok"]) for r in table.rows]
    assert bounds[0][1] == bounds[1][0] == dt.datetime(2026, 6, 16)
    assert bounds[0][2] != bounds[1][2]


def test_unknown_model_is_unpriced_not_free() -> None:
    table = build_price_table([("acme", "mystery-1")], Config(), WHEN, WHEN + dt.timedelta(days=1))
    assert table.unpriced == [("acme", "mystery-1")]
    assert table.rows == []


def test_override_before_genai_prices() -> None:
    cfg = Config.model_validate(
        {
            "prices": {
                "overrides": [{"provider": "openai", "model": "gpt-4o", "input_per_mtok": 1, "output_per_mtok": 2}]
            }
        }
    )
    table = build_price_table([("openai", "gpt-4o")], cfg, WHEN, WHEN + dt.timedelta(days=1))
    assert [(r["price_source"], r["input_per_mtok"], r["cache_read_per_mtok"]) for r in table.rows] == [
        ("override", 1.0, 1.0)
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"prices": {"overrides": [{"provider": "p", "model": "m", "input_per_mtok": -1, "output_per_mtok": 1}]}},
            "input_per_mtok",
        ),
        ({"prices": {"discount_pct": {"openai": 120}}}, "discount"),
        ({"prices": {"overides": []}}, "overides"),
        ({"currency": "EUR"}, "only USD"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, raw, message) -> None:  # type: ignore[no-untyped-def]
    import yaml

    from unitcost.config import load_config

    path = tmp_path / "unitcost.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=message) as e:
        load_config(path)
    assert str(path) in str(e.value)
