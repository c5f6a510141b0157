from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procurement.shared.calendar import (
    OSLO,
    add_months,
    holiday_name,
    is_public_holiday,
    is_working_day,
    next_send_time,
    next_working_day,
    previous_working_day,
)


def oslo(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=OSLO)


# -- holidays ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 4, 2),  # skjærtorsdag
        date(2026, 4, 3),  # langfredag
        date(2026, 4, 6),  # andre påskedag
        date(2026, 5, 1),
        date(2026, 5, 14),  # Kristi himmelfartsdag
        date(2026, 5, 25),  # andre pinsedag
        date(2026, 12, 25),
        date(2027, 1, 1),
        date(2027, 3, 25),  # skjærtorsdag 2027
        date(2027, 3, 26),  # langfredag 2027
        date(2027, 3, 29),  # andre påskedag 2027
        date(2027, 5, 6),  # Kristi himmelfartsdag 2027
        date(2027, 5, 17),  # grunnlovsdag and andre pinsedag 2027 (a Monday)
    ],
)
def test_public_holidays_on_weekdays_are_not_working_days(day: date) -> None:
    assert day.weekday() < 5
    assert is_public_holiday(day)
    assert not is_working_day(day)


def test_easter_sundays() -> None:
    assert holiday_name(date(2026, 4, 5)) == "Første påskedag"
    assert holiday_name(date(2027, 3, 28)) == "Første påskedag"
    assert "Grunnlovsdag" in (holiday_name(date(2027, 5, 17)) or "")


def test_ordinary_sundays_are_not_in_the_holiday_table_but_are_not_working_days() -> None:
    # The holidays package can mark every Sunday as a Norwegian holiday; we ask it not to.
    sunday = date(2026, 3, 1)
    assert sunday.weekday() == 6
    assert not is_public_holiday(sunday)
    assert holiday_name(sunday) is None
    assert not is_working_day(sunday)
    assert not is_working_day(date(2026, 2, 28))  # Saturday


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 12, 24),
        date(2026, 12, 31),
        date(2026, 4, 1),
        date(2026, 5, 18),
        date(2027, 5, 18),
    ],
)
def test_ordinary_weekdays_around_holidays_are_working_days(day: date) -> None:
    assert is_working_day(day)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2027, 3, 29), date(2027, 3, 24)),  # Easter Monday → Wednesday before Maundy Thursday
        (date(2026, 4, 6), date(2026, 4, 1)),
        (date(2027, 5, 17), date(2027, 5, 14)),  # 17 May 2027 (Monday) → Friday
        (date(2026, 5, 17), date(2026, 5, 15)),  # 17 May 2026 is a Sunday
        # Sunday after Christmas → Christmas Eve (a Friday)
        (date(2027, 12, 26), date(2027, 12, 24)),
        (date(2026, 12, 26), date(2026, 12, 24)),
        (date(2027, 1, 1), date(2026, 12, 31)),
        (date(2026, 3, 4), date(2026, 3, 4)),  # a working day stays
    ],
)
def test_previous_working_day(day: date, expected: date) -> None:
    assert previous_working_day(day) == expected


def test_next_working_day() -> None:
    assert next_working_day(date(2026, 4, 2)) == date(2026, 4, 7)
    assert next_working_day(date(2026, 3, 4)) == date(2026, 3, 4)


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)))
def test_previous_working_day_is_a_working_day_not_after_the_input(day: date) -> None:
    result = previous_working_day(day)
    assert is_working_day(result)
    assert day - timedelta(days=6) <= result <= day
    assert all(not is_working_day(result + timedelta(days=i)) for i in range(1, (day - result).days + 1))


# -- working hours ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (oslo(2026, 3, 6, 17, 0), oslo(2026, 3, 9, 8, 0)),  # Friday 17:00 → Monday 08:00
        (oslo(2026, 3, 6, 16, 0), oslo(2026, 3, 9, 8, 0)),  # 16:00 is after hours
        (oslo(2026, 3, 6, 15, 59), oslo(2026, 3, 6, 15, 59)),  # within hours: now
        (oslo(2026, 3, 4, 8, 0), oslo(2026, 3, 4, 8, 0)),  # 08:00 sharp
        (oslo(2026, 3, 4, 6, 30), oslo(2026, 3, 4, 8, 0)),  # early morning: 08:00 same day
        (oslo(2026, 3, 7, 12, 0), oslo(2026, 3, 9, 8, 0)),  # Saturday
        (oslo(2026, 4, 1, 16, 30), oslo(2026, 4, 7, 8, 0)),  # before Easter → Tuesday after
        (oslo(2027, 5, 14, 20, 0), oslo(2027, 5, 18, 8, 0)),  # Friday → past 17 May Monday
        (oslo(2026, 12, 23, 18, 0), oslo(2026, 12, 24, 8, 0)),  # Christmas Eve is a working day
    ],
)
def test_next_send_time(now: datetime, expected: datetime) -> None:
    result = next_send_time(now)
    assert result == expected
    assert result.tzinfo is not None and str(result.tzinfo) == "Europe/Oslo"


def test_next_send_time_across_spring_dst_change() -> None:
    # Summer time starts Sunday 29 March 2026 at 02:00 → 03:00.
    result = next_send_time(oslo(2026, 3, 27, 17, 0))
    assert result == oslo(2026, 3, 30, 8, 0)
    assert result.utcoffset() == timedelta(hours=2)
    assert result.astimezone(UTC) == datetime(2026, 3, 30, 6, 0, tzinfo=UTC)


def test_next_send_time_across_autumn_dst_change() -> None:
    # Summer time ends Sunday 25 October 2026 at 03:00 → 02:00.
    result = next_send_time(datetime(2026, 10, 23, 14, 0, tzinfo=UTC))  # 16:00 Oslo (CEST)
    assert result == oslo(2026, 10, 26, 8, 0)
    assert result.utcoffset() == timedelta(hours=1)
    assert result.astimezone(UTC) == datetime(2026, 10, 26, 7, 0, tzinfo=UTC)


def test_next_send_time_converts_from_utc() -> None:
    # 05:30 UTC is 07:30 in Oslo in June (CEST) → 08:00 Oslo = 06:00 UTC
    result = next_send_time(datetime(2026, 6, 15, 5, 30, tzinfo=UTC))
    assert result.astimezone(UTC) == datetime(2026, 6, 15, 6, 0, tzinfo=UTC)
    # 14:30 UTC is 16:30 Oslo → next morning
    assert next_send_time(datetime(2026, 6, 15, 14, 30, tzinfo=UTC)) == oslo(2026, 6, 16, 8, 0)


def test_next_send_time_custom_hours_and_zone() -> None:
    now = datetime(2026, 3, 4, 7, 30, tzinfo=UTC)
    assert next_send_time(now, tz=ZoneInfo("UTC"), start=time(9, 0), end=time(15, 0)) == datetime(
        2026, 3, 4, 9, 0, tzinfo=ZoneInfo("UTC")
    )


def test_next_send_time_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError):
        next_send_time(datetime(2026, 3, 4, 9, 0))
    with pytest.raises(ValueError):
        next_send_time(oslo(2026, 3, 4, 9, 0), start=time(16, 0), end=time(8, 0))


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)))
def test_next_send_time_is_in_working_hours_and_not_before_now(now: datetime) -> None:
    result = next_send_time(now)
    local = result.astimezone(OSLO)
    assert result >= now
    assert is_working_day(local.date())
    assert time(8, 0) <= local.time() < time(16, 0)
    if result > now:  # moved: it is the opening of a working day
        assert local.time() == time(8, 0)
        # and no working-hour moment was skipped: every day between is closed
        day = now.astimezone(OSLO).date() + timedelta(days=1)
        while day < local.date():
            assert not is_working_day(day)
            day += timedelta(days=1)


# -- month arithmetic -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 5, 31), -3, date(2026, 2, 28)),
        (date(2028, 5, 31), -3, date(2028, 2, 29)),  # leap year
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2027, 1, 31), 1, date(2027, 2, 28)),
        (date(2026, 1, 15), -12, date(2025, 1, 15)),
        (date(2026, 12, 31), 2, date(2027, 2, 28)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
    ],
)
def test_add_months_clamps(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


def test_add_months_keep_month_end() -> None:
    assert add_months(date(2027, 2, 28), 12, keep_month_end=True) == date(2028, 2, 29)
    assert add_months(date(2026, 6, 30), -3, keep_month_end=True) == date(2026, 3, 31)
    assert add_months(date(2026, 6, 29), -3, keep_month_end=True) == date(2026, 3, 29)


@given(st.dates(min_value=date(1950, 1, 1), max_value=date(2150, 12, 31)), st.integers(-240, 240))
def test_add_months_lands_in_the_right_month(start: date, months: int) -> None:
    result = add_months(start, months)
    assert (result.year * 12 + result.month) - (start.year * 12 + start.month) == months
    assert result.day <= start.day
    assert result.day == start.day or result.day >= 28
