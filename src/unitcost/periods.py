"""Parse --from / --to values into a half-open UTC range [start, end)."""

from __future__ import annotations

import datetime as dt

from unitcost.errors import PeriodError


def naive_utc(t: dt.datetime) -> dt.datetime:
    """The same instant as a naive UTC datetime (how the store keeps times); naive input is taken as UTC.

    >>> naive_utc(dt.datetime(2026, 10, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    datetime.datetime(2026, 10, 1, 10, 0)
    """
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo is not None else t


def parse_instant(
    value: str, option: str, expected: str = "a date (2026-10-01) or a timestamp (2026-10-01T12:00:00Z)"
) -> tuple[dt.datetime, bool]:
    """Return (instant in naive UTC, was_a_plain_date); a bad value is a PeriodError naming the option."""
    text = value.strip()
    try:
        if len(text) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time()), True
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise PeriodError(f"{option} {value!r}: expected {expected}") from e
    return naive_utc(parsed), False


def parse_range(start: str | None, end: str | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Return [start, end) in naive UTC; a plain date as ``end`` includes that whole day.

    >>> parse_range("2026-10-01", "2026-10-31")
    (datetime.datetime(2026, 10, 1, 0, 0), datetime.datetime(2026, 11, 1, 0, 0))
    >>> parse_range(None, "2026-10-01T12:00:00+02:00")
    (None, datetime.datetime(2026, 10, 1, 10, 0))
    """
    lo = parse_instant(start, "--from")[0] if start else None
    hi = None
    if end:
        hi, is_date = parse_instant(end, "--to")
        if is_date:
            hi += dt.timedelta(days=1)
    if lo is not None and hi is not None and hi <= lo:
        raise PeriodError(f"--to ({end}) must be after --from ({start})")
    return lo, hi
