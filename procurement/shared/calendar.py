"""Norwegian working days, working hours and month arithmetic.

Public holidays come from the `holidays` package (country "NO"). That package can
count every Sunday as a holiday ("in Norway all Sundays are holidays"); we ask for
``include_sundays=False`` explicitly so the holiday table holds only the named days
(1 Jan, Maundy Thursday, Good Friday, Easter Sunday/Monday, 1 May, Ascension Day,
17 May, Whit Sunday/Monday, 25/26 Dec). Weekends are non-working days on their own
account, so the result is the same either way; the explicit flag keeps holiday
*names* meaningful and guards against a change of the package's default.

Christmas Eve and New Year's Eve are not public holidays and count as working days
here, although many offices close early on them.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

OSLO = ZoneInfo("Europe/Oslo")
"""The one time zone of the municipality: deadlines, working hours and dates users read."""
WORKDAY_START = time(8, 0)
WORKDAY_END = time(16, 0)

# A long run of non-working days in Norway is at most 5 (Easter: Thu–Mon).
_MAX_SEARCH_DAYS = 31


@lru_cache(maxsize=64)
def _holidays_for_year(year: int) -> frozenset[date]:
    table = holidays.country_holidays("NO", years=year, include_sundays=False)
    return frozenset(d for d in table if d.year == year)


def holiday_name(d: date) -> str | None:
    """The Norwegian name of the public holiday on ``d`` (None if it is not one)."""
    table = holidays.country_holidays("NO", years=d.year, include_sundays=False, language="no")
    name = table.get(d)
    return str(name) if name else None


def is_public_holiday(d: date) -> bool:
    return d in _holidays_for_year(d.year)


def is_working_day(d: date) -> bool:
    """Monday–Friday and not a Norwegian public holiday."""
    return d.weekday() < 5 and not is_public_holiday(d)


def previous_working_day(d: date) -> date:
    """``d`` itself if it is a working day, else the closest working day before it."""
    for _ in range(_MAX_SEARCH_DAYS):
        if is_working_day(d):
            return d
        d -= timedelta(days=1)
    raise AssertionError("no working day within a month")  # pragma: no cover


def next_working_day(d: date) -> date:
    """``d`` itself if it is a working day, else the closest working day after it."""
    for _ in range(_MAX_SEARCH_DAYS):
        if is_working_day(d):
            return d
        d += timedelta(days=1)
    raise AssertionError("no working day within a month")  # pragma: no cover


def _at(d: date, t: time, tz: ZoneInfo) -> datetime:
    """Local wall time ``t`` on ``d``; a time inside a DST gap is moved forward by the gap."""
    naive = datetime.combine(d, t)
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)


def next_send_time(
    now: datetime,
    tz: ZoneInfo = OSLO,
    start: time = WORKDAY_START,
    end: time = WORKDAY_END,
) -> datetime:
    """The earliest moment at or after ``now`` that lies in working hours on a working day.

    Working hours are ``start`` ≤ local time < ``end`` in ``tz`` (end exclusive: 16:00 is
    already after hours). ``now`` must be timezone-aware; the result is in ``tz``.
    Daylight saving changes are handled by zoneinfo (08:00 is 08:00 local time on both
    sides of a change).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if not start < end:
        raise ValueError("start must be before end")
    local = now.astimezone(tz)
    day = local.date()
    if is_working_day(day):
        opens, closes = _at(day, start, tz), _at(day, end, tz)
        if local < opens:
            return opens
        if local < closes:
            return local
    return _at(next_working_day(day + timedelta(days=1)), start, tz)


def add_months(d: date, months: int, *, keep_month_end: bool = False) -> date:
    """``d`` moved by ``months`` calendar months (negative goes back).

    The day is clamped to the target month's length: 31 May − 3 months = 28 Feb
    (29 Feb in a leap year). With ``keep_month_end`` a date on the last day of its month
    lands on the last day of the target month (28 Feb 2027 + 12 months = 29 Feb 2028),
    which suits contract periods that run to a month's end.
    """
    index = d.year * 12 + (d.month - 1) + months
    year, month0 = divmod(index, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    day = d.day
    if keep_month_end and d.day == calendar.monthrange(d.year, d.month)[1]:
        day = last
    return date(year, month0 + 1, min(day, last))


def is_month_end(d: date) -> bool:
    return d.day == calendar.monthrange(d.year, d.month)[1]
