"""A spreadsheet cell as text, and the folded form in which names and words are matched."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime

from procurement.shared.text import fold

Cells = list[object]
"""One row as read from the file: text (CSV) or cell values (XLSX)."""

# Blanks that exports put where a space is meant (Excel's thousands separator is U+00A0).
SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " ", "\t": " "})


def match_key(text: str) -> str:
    """`fold` without anything but letters and digits: "Org.nr", "Org nr" and "ORGNR" match."""
    return re.sub(r"[^0-9a-z]", "", fold(text))


def cell_text(value: object) -> str:
    """The cell as the user sees it, blanks collapsed ("" for an empty cell)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nei"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return " ".join(str(value).translate(SPACES).split())


def is_blank(cells: Sequence[object]) -> bool:
    return all(cell_text(c) == "" for c in cells)
