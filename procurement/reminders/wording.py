"""How far a reminder's date is from today, as its card says it ("om 2 måneder", "i morgen",
"for 3 dager siden"): computed from the two dates, never from the kind of reminder.

Rules (Europe/Oslo calendar dates; the caller passes today in Oslo):

* Ahead, the time counts to the *end* of the target day: an end date and a notice deadline
  are inclusive (a contract ending 31.01 runs through January, so on 01.12 it ends in
  2 months — the same convention as a contract 01.01.2023–31.12.2026 lasting 48 months).
* Whole calendar months first, the day clamped at month ends (31.01 + 1 month = 28.02,
  29.02 in a leap year), never rounded up: a reminder must not promise more time than
  there is.
* Below one month: calendar days to the date ("i morgen" is 1, "i dag" is 0).
* Past dates count back from the target to today the same way ("for 3 dager siden",
  "for 1 måned siden").

The words themselves are catalog strings (``rm_when_*``); this module returns the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from procurement.shared.calendar import add_months


@dataclass(frozen=True)
class Distance:
    """``count`` days or months ahead of today, or (``past``) behind it."""

    unit: Literal["days", "months"]
    count: int
    past: bool = False

    @property
    def catalog_key(self) -> str:
        """The catalog key of the words: ``rm_when_today``, ``rm_when_in_months`` …"""
        if self.unit == "days" and self.count == 0:
            return "rm_when_today"
        if self.unit == "days" and self.count == 1:
            return "rm_when_yesterday" if self.past else "rm_when_tomorrow"
        one = "month" if self.unit == "months" and self.count == 1 else self.unit
        return f"rm_when_{one}_ago" if self.past else f"rm_when_in_{one}"


def whole_months(start: date, end: date) -> int:
    """The most calendar months ``m`` with ``start`` + ``m`` months ≤ ``end`` (0 if none)."""
    if end < start:
        return 0
    months = (end.year - start.year) * 12 + end.month - start.month
    while months > 0 and add_months(start, months) > end:
        months -= 1
    return months


def distance(today: date, target: date) -> Distance:
    """How far ``target`` is from ``today`` (rules above)."""
    if target >= today:
        months = whole_months(today, target + timedelta(days=1))
        if months >= 1:
            return Distance("months", months)
        return Distance("days", (target - today).days)
    months = whole_months(target, today)
    if months >= 1:
        return Distance("months", months, past=True)
    return Distance("days", (today - target).days, past=True)
