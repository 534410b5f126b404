"""Time windows for ``explain`` and ``watch``: dates, ranges and shortcuts, resolved to half-open UTC ranges.

Shortcuts count whole days (UTC) and are anchored on the *reference day*: the day of ``--at`` when given,
else the day of the newest usage row. ``yesterday`` is the last whole day before the reference day.

=========================  ==========================================================================
``today``                  the reference day itself (may be partial)
``yesterday``              the day before the reference day
``this-week``              Monday of the reference day's week up to the reference day (excluded)
``last-week``              the whole Monday-Sunday week before ``this-week``
``month-to-date``          the 1st of the reference day's month up to the reference day (excluded)
``previous-month-to-date`` the same number of days from the 1st of the previous month
``same-day-last-week``     as a baseline: the period moved back 7 days; as a period: 8 days before
``previous-period``        as a baseline: the window of the same length just before the period
=========================  ==========================================================================

Dates (``2026-10-19``) are that whole day; ranges ``2026-10-12..2026-10-18`` include both end dates;
timestamps ranges ``2026-10-19T08:00..2026-10-19T12:00`` are half-open.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from unitcost.errors import PeriodError
from unitcost.periods import parse_instant

SHORTCUTS = (
    "today",
    "yesterday",
    "this-week",
    "last-week",
    "month-to-date",
    "previous-month-to-date",
    "same-day-last-week",
    "previous-period",
)
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """A half-open UTC range [start, end) and the text it came from."""

    start: dt.datetime
    end: dt.datetime
    label: str

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400

    def describe(self) -> str:
        """A short human label: ``2026-10-19`` or ``2026-10-12..2026-10-18``.

        >>> Window(dt.datetime(2026, 10, 12), dt.datetime(2026, 10, 19), "x").describe()
        '2026-10-12..2026-10-18'
        """
        if self.start.time() == dt.time() and self.end.time() == dt.time():
            last = (self.end - _DAY).date()
            return str(self.start.date()) if last == self.start.date() else f"{self.start.date()}..{last}"
        return f"{self.start.isoformat(timespec='minutes')}..{self.end.isoformat(timespec='minutes')}"


def _day(value: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(value.date(), dt.time())


def _point(text: str, what: str) -> tuple[dt.datetime, bool]:
    expected = "a date (2026-10-19), a range (2026-10-12..2026-10-18), a timestamp or one of " + ", ".join(SHORTCUTS)
    return parse_instant(text, what, expected)


def _months_back(day: dt.datetime, n: int) -> dt.datetime:
    y, m = divmod(day.year * 12 + day.month - 1 - n, 12)
    return day.replace(year=y, month=m + 1, day=min(day.day, calendar.monthrange(y, m + 1)[1]))


def parse_window(
    text: str, reference: dt.datetime, *, relative_to: Window | None = None, what: str = "--period"
) -> Window:
    """Resolve a period text to a :class:`Window`; baseline shortcuts use the period (``relative_to``).

    >>> ref = dt.datetime(2026, 10, 20, 15, 30)
    >>> parse_window("yesterday", ref).describe()
    '2026-10-19'
    >>> p = parse_window("2026-10-19", ref)
    >>> parse_window("same-day-last-week", ref, relative_to=p).describe()
    '2026-10-12'
    >>> parse_window("month-to-date", ref).describe(), parse_window("previous-month-to-date", ref).describe()
    ('2026-10-01..2026-10-19', '2026-09-01..2026-09-19')
    """
    t = text.strip().lower()
    today = _day(reference)
    if t == "today":
        lo, hi = today, today + _DAY
    elif t == "yesterday":
        lo, hi = today - _DAY, today
    elif t == "this-week":
        lo, hi = today - dt.timedelta(days=today.weekday()), today
    elif t == "last-week":
        hi = today - dt.timedelta(days=today.weekday())
        lo = hi - dt.timedelta(days=7)
    elif t == "month-to-date":
        lo, hi = today.replace(day=1), today
    elif t == "previous-month-to-date":
        anchor = relative_to.end if relative_to is not None else today
        start = _months_back(anchor.replace(day=1), 1)
        lo, hi = start, start + (anchor - anchor.replace(day=1))
    elif t == "same-day-last-week":
        if relative_to is not None:
            lo, hi = relative_to.start - dt.timedelta(days=7), relative_to.end - dt.timedelta(days=7)
        else:
            lo, hi = today - dt.timedelta(days=8), today - dt.timedelta(days=7)
    elif t == "previous-period":
        if relative_to is None:
            raise PeriodError(f"{what} previous-period: only a baseline can be the previous period")
        span = relative_to.end - relative_to.start
        lo, hi = relative_to.start - span, relative_to.start
    elif ".." in t:
        a, b = text.strip().split("..", 1)
        lo, _ = _point(a.strip(), what)
        hi, is_date = _point(b.strip(), what)
        if is_date:
            hi += _DAY
    else:
        lo, is_date = _point(text.strip(), what)
        if not is_date:
            raise PeriodError(f"{what} {text!r}: a single timestamp is not a window; give a range a..b")
        hi = lo + _DAY
    if hi <= lo:
        raise PeriodError(f"{what} {text!r} is empty (from {lo} to {hi}); the reference day is {today.date()}")
    return Window(lo, hi, text)
