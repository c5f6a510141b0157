"""The readers of a contract's values, shared by the import and the contract card.

Amounts and dates use the product's one reader each (``procurement.shared.money`` and
``procurement.shared.dates``); a cell adds only what a spreadsheet can hold (numbers,
date cells, Excel serial dates). The other readers raise ``ValueError`` with a Norwegian
message; ``CellError`` carries an English one too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal, TypeVar

from procurement.contracts.importing.cells import SPACES, cell_text, match_key
from procurement.contracts.model import AgreementType, Category, PlannedControl, RiskLevel
from procurement.shared.dates import parse_date, read_date
from procurement.shared.money import Ore, parse_nok
from procurement.shared.text import fold

CONTRACT_ORE: Ore = "round"
"""A contract's value is recorded, not compared with a threshold: øre are rounded."""

K = TypeVar("K", bound=str)

_EXCEL_SERIAL_MIN, _EXCEL_SERIAL_MAX = 18264, 73051  # 1950-01-01 .. 2099-12-31
_EXCEL_EPOCH = date(1899, 12, 30)  # serial 0 (Excel's 1900 leap-year bug included)


class CellError(ValueError):
    """A value that cannot be read; ``str()`` is the Norwegian message."""

    def __init__(self, message_nb: str, message_en: str) -> None:
        super().__init__(message_nb)
        self.message_nb = message_nb
        self.message_en = message_en


def read_date_cell(value: object) -> tuple[date | None, bool]:
    """(the date or None, whether the cell has the shape of a date); see `parse_date_cell`."""
    if isinstance(value, datetime):
        return value.date(), True
    if isinstance(value, date):
        return value, True
    if isinstance(value, bool):
        return None, False
    if isinstance(value, int | float):
        if _EXCEL_SERIAL_MIN <= value <= _EXCEL_SERIAL_MAX:
            return _EXCEL_EPOCH + timedelta(days=int(value)), True
        return None, False
    if not isinstance(value, str):
        return None, False
    return read_date(value)


def parse_date_cell(value: object) -> date | None:
    """A date from a cell, or None. Never raises.

    Text as ``procurement.shared.dates.parse_date`` reads it, ``date`` and ``datetime``
    cells, and Excel serial numbers between 1950 and 2099.
    """
    return read_date_cell(value)[0]


def parse_amount(value: object) -> int | None:
    """Whole kroner from a cell; None when empty or 0 (no value known: the record folds
    0 and None together). Raises ``CellError`` with the money reader's message."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    cell = value if isinstance(value, str | int | float | Decimal) else cell_text(value)
    result = parse_nok(cell, ore=CONTRACT_ORE)
    if result.code == "zero":
        return None
    if result.value is None:
        shown = cell_text(value)
        raise CellError(
            f"verdien «{shown}»: {result.message('nb').rstrip('.')}",
            f"value «{shown}»: {result.message('en').rstrip('.')}",
        )
    return result.value


_YEAR_UNIT = r"(?:ar|aar|arr|years?|yrs?|y)"
_MONTH_UNIT = r"(?:mnd|mnd\.|mndr|md|md\.|maneder|maned|months?|m)"
_TERM_RE = re.compile(rf"^(\d{{1,3}})\s*({_YEAR_UNIT}|{_MONTH_UNIT})?\.?$")
_TIMES_RE = re.compile(rf"^(\d{{1,2}})\s*[x*]\s*(\d{{1,3}})\s*({_YEAR_UNIT}|{_MONTH_UNIT})?\.?$")
_NO_OPTIONS = {"", "0", "-", "--", "ingen", "nei", "none", "no", "n/a", "na", "0+0"}
_OPTIONS_HINT = "bruk f.eks. «1+1», «2x12 mnd» eller «12;12»"


def _term_months(number: str, unit: str | None, default: Literal["years", "months"]) -> int:
    n = int(number)
    if unit is None:
        return n * 12 if default == "years" else n
    return n * 12 if re.fullmatch(_YEAR_UNIT, unit) else n


def parse_options_spec(value: object) -> list[int]:
    """The lengths in months of the options written in an "Opsjoner" cell.

    Raises ``ValueError`` (Norwegian message) when the text cannot be read.
    """
    raw = "" if value is None else str(value).strip()
    text = fold(raw.translate(SPACES)).replace("×", "x")
    text = re.sub(r"\bopsjon(?:er|sar)?\b", "", text)
    text = " ".join(text.split()).strip(" :")
    if text in _NO_OPTIONS:
        return []
    months: list[int]
    if m := _TIMES_RE.match(text):
        count = int(m.group(1))
        months = [_term_months(m.group(2), m.group(3), "months")] * count
    elif "+" in text:
        months = []
        for term in text.split("+"):
            t = _TERM_RE.match(term.strip())
            if not t:
                raise ValueError(f"opsjoner «{raw}» forstås ikke ({_OPTIONS_HINT})")
            months.append(_term_months(t.group(1), t.group(2), "years"))
    else:
        terms = [t.strip() for t in re.split(r"[;,/]", text)]
        matches = [_TERM_RE.match(t) for t in terms]
        if not all(matches):
            raise ValueError(f"opsjoner «{raw}» forstås ikke ({_OPTIONS_HINT})")
        if len(terms) == 1 and matches[0] and matches[0].group(2) is None:
            raise ValueError(f"opsjoner «{raw}» er tvetydig: skriv enheten, f.eks. «12 mnd» eller «1 år»")
        months = [_term_months(t.group(1), t.group(2), "months") for t in matches if t]
    if not months:
        return []
    if len(months) > 10:
        raise ValueError(f"opsjoner «{raw}»: mer enn 10 opsjoner")
    if any(not 1 <= m <= 120 for m in months):
        raise ValueError(f"opsjoner «{raw}»: hver opsjon må vare 1–120 måneder")
    return months


_CONTROL_KINDS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "wage_conditions",
        ("lonn", "arbeidsvilkar", "arbeidsvilk"),
        "Kontroll av lønns- og arbeidsvilkår",
    ),
    ("serious_employer", ("seriositet",), "Kontroll av seriøsitetskrav"),
    ("hms", ("hms", "sikkerhet"), "HMS-kontroll"),
    ("environment", ("miljo", "klima"), "Miljøkontroll"),
    ("apprentices", ("laerling",), "Kontroll av lærlingkrav"),
    ("ethics", ("etikk", "menneskerett"), "Kontroll av etiske krav"),
    ("quality", ("kvalitet",), "Kvalitetskontroll"),
    ("price", ("pris", "faktura"), "Pris- og fakturakontroll"),
)


def control_kind(description: str) -> str:
    folded = fold(description)
    for kind, words, _label in _CONTROL_KINDS:
        if any(w in folded for w in words):
            return kind
    return "other"


def parse_controls(value: object) -> list[PlannedControl]:
    """Planned controls from a "Kontroller" cell; raises ``ValueError`` (nb) for a bad item."""
    raw = "" if value is None else str(value)
    controls: list[PlannedControl] = []
    for item in re.split(r"[;|\n\r]+", raw.translate(SPACES)):
        item = " ".join(item.split())
        if not item:
            continue
        words = item.split(" ")
        due = parse_date(words[0])
        rest = words[1:]
        if due is None and len(words) > 1:
            due = parse_date(words[-1])
            rest = words[:-1]
        if due is None:
            raise ValueError(f"kontroll «{item}» har ingen gyldig dato (skriv f.eks. «2025-06-30 Lønnskontroll»)")
        description = " ".join(rest).strip(" -–:,")
        kind = control_kind(description)
        if not description:
            description = next((label for k, _w, label in _CONTROL_KINDS if k == kind), "Kontroll")
        controls.append(PlannedControl(kind=kind, due=due, description=description))
    return controls


_CATEGORY_WORDS: dict[Category, set[str]] = {
    "goods": {"vare", "varer", "varekjop", "goods"},
    "services": {"tjeneste", "tjenester", "tjenestekjop", "service", "services"},
    "works": {
        "byggoganlegg",
        "ba",
        "bygganlegg",
        "byggoganleggsarbeid",
        "byggoganleggsarbeider",
        "bygganleggsarbeid",
        "byggoganleggskontrakt",
        "works",
        "entreprise",
    },
}
_RISK_WORDS: dict[RiskLevel, set[str]] = {
    "low": {"lav", "low", "l", "1"},
    "medium": {"middels", "medium", "moderat", "m", "2"},
    "high": {"hoy", "high", "h", "3", "hog"},
}
_SINGLE_WORDS = {
    "",
    "enkeltkontrakt",
    "enkeltavtale",
    "enkeltkjop",
    "kontrakt",
    "avtale",
    "single",
    "kjopsavtale",
    "tjenesteavtale",
    "leveranseavtale",
}
_CASE_NO_RE = re.compile(r"^\d{2}(?:\d{2})?/\d{1,7}(?:-\d{1,4})?$")
_EMAIL_FIND_RE = re.compile(r"[^@\s<>()\[\],;:\"']+@[^@\s<>()\[\],;:\"']+\.[A-Za-z]{2,}")


def _lookup(words: Mapping[K, set[str]], raw: str) -> K | None:
    key = match_key(raw)
    return next((k for k, ws in words.items() if key in ws), None)


def category_of(text: str) -> Category | None:
    """ "Varer" → goods, "Tjenester" → services, "Bygg og anlegg"/"BA" → works; None if unknown."""
    return _lookup(_CATEGORY_WORDS, text)


def risk_level_of(text: str) -> RiskLevel | None:
    """ "Lav"/"Middels"/"Høy" (also English and 1–3) → low/medium/high; None if unknown."""
    return _lookup(_RISK_WORDS, text)


def agreement_type_of(text: str) -> tuple[AgreementType, bool]:
    """(framework or single, whether the text was understood): only "ramme…" is a framework."""
    key = match_key(text)
    if "ramme" in key or key == "framework":
        return "framework", True
    return "single", key in _SINGLE_WORDS


def cpv_cell_text(value: object) -> str:
    """A CPV cell as text. Excel holds a lone code typed as a number, and drops the leading
    zero of division 03 (03000000 becomes 3000000): such a number gets its eight digits back."""
    if isinstance(value, bool):
        return cell_text(value)
    if isinstance(value, int | float) and float(value).is_integer() and 1_000_000 <= value < 10_000_000:
        return f"{int(value):08d}"
    return cell_text(value)


def is_case_no(text: str) -> bool:
    """An archive case number such as 24/01234 (or 2024/1234-5)."""
    return bool(_CASE_NO_RE.match(text))


def find_emails(text: str) -> list[str]:
    """The e-mail addresses in text such as "Kari Nordmann <kari@kommune.no>"."""
    return _EMAIL_FIND_RE.findall(text)
