"""Norwegian dates as users write and read them: dd.mm.yyyy, Oslo time.

`parse_date` is the one reader of typed dates (the contract card and the contract import
use it); `format_date` the one writer. The time zone is `calendar.OSLO`.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from procurement.shared.calendar import OSLO

MIN_YEAR, MAX_YEAR = 1900, 2199

# Blanks that spreadsheets and web pages put where a space is meant.
_BLANKS = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " ", "\t": " "})
_ISO_RE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DMY_RE = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})$")
_TIME_SUFFIX_RE = re.compile(r"(?:[ T]\d{1,2}[:.]\d{2}(?:[:.]\d{2}(?:\.\d+)?)?)$")


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


def read_date(text: str) -> tuple[date | None, bool]:
    """(the date or None, whether `text` has the shape of a date).

    The flag lets a caller tell "31.02.2026" (a date that does not exist) from "snart"
    (not a date at all) and only show an example of how to write a date for the latter.
    """
    text = _TIME_SUFFIX_RE.sub("", text.translate(_BLANKS).strip()).strip()
    if m := _ISO_RE.match(text):
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    elif m := _DMY_RE.match(text):
        d, mo, y = int(m.group(1)), int(m.group(3)), int(m.group(4))
        if len(m.group(4)) == 2:
            y += 2000 if y < 70 else 1900
    else:
        return None, False
    if not MIN_YEAR <= y <= MAX_YEAR:
        return None, True
    try:
        return date(y, mo, d), True
    except ValueError:
        return None, True


def parse_date(value: str | date) -> date | None:
    """A date from typed text, or None. Never raises.

    Accepts ``31.12.2026``, ``31.12.26`` (years 00–69 → 20xx), ``2026-12-31``,
    ``31/12/2026``, ``31-12-2026``, any of these followed by a time of day, and
    ``date``/``datetime`` values (a datetime gives its own calendar date).
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    return read_date(value)[0]
