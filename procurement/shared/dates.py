"""Norwegian time and dates as users read them: Europe/Oslo, dd.mm.yyyy."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")


def format_date(d: date) -> str:
    """31.01.2027 (a datetime is shown as its Oslo calendar date)."""
    if isinstance(d, datetime):
        d = d.astimezone(OSLO).date()
    return d.strftime("%d.%m.%Y")


def format_datetime(at: datetime) -> str:
    """31.01.2027 14:05, Oslo time."""
    return at.astimezone(OSLO).strftime("%d.%m.%Y %H:%M")


def oslo_today(now: datetime) -> date:
    return now.astimezone(OSLO).date()
