"""The needs report (behovsmelding): form fields, labels, limits and server-side validation.

`validate_needs_report(raw, today)` takes what an Adaptive Card submit sends — values may
be missing, None, numbers, booleans, lists, nested junk, 100 kB strings, hostile text —
and never raises. It returns errors per field id (nb and en) or a normalised, typed
`NeedsReportInput`.

Choices made here:

* **Value.** The form asks for the *total* value for the whole period *including
  options*, excluding VAT (see the catalog's `nr_label_estimated_value`), which is what the
  thresholds are compared with (DOMAIN.md: contract value incl. options). So
  `contract_value(input)` is simply `input.estimated_value`; nothing is added for the
  option months.
* **Text.** Outer whitespace is trimmed; the rest is kept exactly as typed (quotes,
  braces, `${x}`, markdown, emoji are data, not markup — escaping is the renderer's job).
  Control characters other than tab and newline, and unpaired surrogates, are refused:
  they cannot be stored in PostgreSQL text or JSON and no keyboard produces them.
* **Dates.** `start_date` must be ISO `yyyy-mm-dd`, not before `today`, and at most
  `MAX_START_YEARS_AHEAD` years ahead.
* **Durations.** Whole months; 1–240 for the term, 0–240 for options, and at most 240
  (20 years) together.
* Unknown extra keys (the card's `token`, `verb` …) are ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from procurement.needs.assessment import NeedsReportFacts
from procurement.needs.fields import (
    AGREEMENT_TYPES,
    LIMITS,
    MAX_FAGGRUPPE,
    MAX_FAGGRUPPE_MEMBERS,
    MAX_MONTHS,
    MAX_START_YEARS_AHEAD,
    NEEDS_REPORT_FIELDS,
    SERVICE_AREA_VALUES,
)
from procurement.needs.rules import CATEGORIES
from procurement.shared.money import MAX_NOK, parse_nok

Messages = dict[str, str]


# -- the result ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NeedsReportInput:
    """A validated needs report. Text is as typed (outer whitespace trimmed)."""

    title: str
    need: str
    service_area: str
    estimated_value: int  # whole NOK excl. VAT, whole period incl. options
    value_basis: str
    category: str
    cpv: str | None
    agreement_type: str
    start_date: date
    duration_months: int
    option_months: int
    replaces_contract: str | None
    budget_secured: bool
    faggruppe: tuple[str, ...]
    risk_notes: str
    innovation: bool

    @property
    def total_months(self) -> int:
        return self.duration_months + self.option_months

    def facts(self) -> NeedsReportFacts:
        return NeedsReportFacts(
            estimated_value=contract_value(self),
            category=self.category,
            title=self.title,
            need=self.need,
            cpv=self.cpv,
            risk_notes=self.risk_notes,
            duration_months=self.duration_months,
            option_months=self.option_months,
            innovation=self.innovation,
            agreement_type=self.agreement_type,
            service_area=self.service_area,
            faggruppe=self.faggruppe,
        )


def contract_value(report: NeedsReportInput) -> int:
    """The value compared with the thresholds: the form already asks for the total over
    the whole period including options (excl. VAT), so this is `estimated_value` as is."""
    return report.estimated_value


@dataclass(frozen=True)
class ValidationResult:
    errors: dict[str, Messages]
    value: NeedsReportInput | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and self.value is not None

    def facts(self) -> NeedsReportFacts | None:
        return self.value.facts() if self.value is not None else None


# -- messages ------------------------------------------------------------------------------

_REQUIRED: dict[str, Messages] = {
    "title": {"nb": "Skriv en kort tittel på behovet.", "en": "Enter a short title for the need."},
    "need": {
        "nb": "Beskriv behovet: hvilket problem skal løses, og for hvem?",
        "en": "Describe the need: what problem should be solved, and for whom?",
    },
    "service_area": {"nb": "Velg tjenesteområde.", "en": "Choose a service area."},
    "category": {
        "nb": "Velg kategori: varer, tjenester eller bygg og anlegg.",
        "en": "Choose a category: goods, services or building and construction.",
    },
    "agreement_type": {
        "nb": "Velg rammeavtale eller enkeltkontrakt.",
        "en": "Choose framework agreement or single contract.",
    },
    "start_date": {"nb": "Velg ønsket oppstartsdato.", "en": "Choose the desired start date."},
    "duration_months": {
        "nb": "Skriv varigheten i hele måneder, for eksempel 24.",
        "en": "Enter the duration in whole months, e.g. 24.",
    },
}


def _msg(nb: str, en: str) -> Messages:
    return {"nb": nb, "en": en}


def _too_long(length: int, limit: int) -> Messages:
    return _msg(
        f"Teksten er for lang: {length} tegn. Maks er {limit} tegn. Feltet viser de første {limit} "
        "tegnene – se over slutten før du sender.",
        f"The text is too long: {length} characters. The maximum is {limit}. The field shows the "
        f"first {limit} characters – check the end before you send.",
    )


_NOT_TEXT = _msg("Ugyldig verdi. Skriv inn tekst.", "Invalid value. Please enter text.")
_BAD_CHARS = _msg(
    "Teksten inneholder usynlige kontrolltegn som ikke kan lagres. Skriv eller lim inn teksten på nytt.",
    "The text contains invisible control characters that cannot be stored. Type or paste the text again.",
)
_NOT_IN_LIST = _msg("Velg en av verdiene i listen.", "Choose one of the values in the list.")
_BAD_BOOL = _msg("Ugyldig verdi: velg ja eller nei.", "Invalid value: choose yes or no.")

# C0 controls except tab, newline and carriage return; DEL; unpaired surrogates.
_BAD_CHAR_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_CPV_RE = re.compile(r"^[0-9]{8}(?:-[0-9])?$")
_ISO_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_INT_RE = re.compile(r"^([+-]?)\s*([0-9]{1,9})(?:[.,]0+)?$")
_FAGGRUPPE_SPLIT = re.compile(r"[,;\n]")
_MAX_INT_AS_TEXT = 10**50  # str() of larger ints is slow or refused (int_max_str_digits)


# -- coercion (never raises) ----------------------------------------------------------------------


def _as_text(value: object) -> str | Messages:
    """The submitted value as text (outer whitespace trimmed), or an error."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return _NOT_TEXT
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int):
        return str(value) if abs(value) < _MAX_INT_AS_TEXT else _NOT_TEXT
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else _NOT_TEXT
    return _NOT_TEXT


def _text(value: object, limit: int) -> str | Messages:
    text = _as_text(value)
    if isinstance(text, dict):
        return text
    if len(text) > limit:
        return _too_long(len(text), limit)
    if _BAD_CHAR_RE.search(text):
        return _BAD_CHARS
    return text


def _bool(value: object) -> bool | Messages:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("true", "false", ""):
            return word == "true"
    return _BAD_BOOL


def _months(value: object) -> int | Messages | None:
    """Whole months as int (range checked by the caller); None when empty; a message when
    not a whole number."""
    bad = _msg("Skriv et helt antall måneder, for eksempel 24.", "Enter a whole number of months, e.g. 24.")
    if value is None:
        return None
    if isinstance(value, bool):
        return bad
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return bad
        return int(value) if abs(value) < 1e15 else bad
    if isinstance(value, str):
        s = value.strip()
        if not s:
            return None
        if len(s) > 20:
            return bad
        m = _INT_RE.match(s.replace("\u2212", "-"))
        if m:
            return -int(m.group(2)) if m.group(1) == "-" else int(m.group(2))
        return bad
    return bad


def _money(value: object) -> int | Messages:
    if isinstance(value, bool):
        return dict(parse_nok("ja").messages)  # "invalid" with the examples
    if isinstance(value, float):
        if not math.isfinite(value):
            return dict(parse_nok("?").messages)
        if value.is_integer():
            value = int(value) if abs(value) < 1e30 else MAX_NOK + 1
        else:  # øre, or an exponent such as 1e-05: parse_nok explains what to type
            result = parse_nok(repr(value))
            return dict(result.messages if not result.ok else parse_nok("?").messages)
    if isinstance(value, int):
        if 0 < value <= MAX_NOK:
            return value
        text = str(value) if abs(value) < 10**40 else str(MAX_NOK + 1)
        return dict(parse_nok(text).messages)
    if not isinstance(value, str):
        return dict(parse_nok("?").messages)
    result = parse_nok(value)
    if result.ok and result.value is not None:
        return result.value
    return dict(result.messages)


def _start_date(value: object, today: date) -> date | Messages:
    # The form's Input.Date sends ISO (the card format); the user sees and picks dd.mm.yyyy.
    bad = _msg(
        "Velg en gyldig dato i datofeltet, for eksempel 01.09.2026.",
        "Choose a valid date in the date field, e.g. 01.09.2026.",
    )
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        start = value
    elif isinstance(value, str):
        s = value.strip()
        if not _ISO_DATE_RE.match(s):
            return bad
        try:
            start = date.fromisoformat(s)
        except ValueError:
            return bad
    else:
        return bad
    if start < today:
        return _msg(
            f"Oppstart kan ikke være tilbake i tid. Velg i dag ({today:%d.%m.%Y}) eller en senere dato.",
            f"The start cannot be in the past. Choose today ({today:%d.%m.%Y}) or a later date.",
        )
    latest = _years_after(today, MAX_START_YEARS_AHEAD)
    if start > latest:
        return _msg(
            f"Oppstart kan ikke være mer enn {MAX_START_YEARS_AHEAD} år fram i tid "
            f"(senest {latest:%d.%m.%Y}). Sjekk årstallet.",
            f"The start cannot be more than {MAX_START_YEARS_AHEAD} years ahead "
            f"(at the latest {latest:%d.%m.%Y}). Check the year.",
        )
    return start


def _years_after(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def _faggruppe(value: object) -> tuple[str, ...] | Messages:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        if not all(isinstance(v, str) for v in value):
            return _NOT_TEXT
        text: str | Messages = ",".join(v for v in value if isinstance(v, str))
    else:
        text = _as_text(value)
    if isinstance(text, dict):
        return text
    if len(text) > MAX_FAGGRUPPE:
        return _too_long(len(text), MAX_FAGGRUPPE)
    if _BAD_CHAR_RE.search(text):
        return _BAD_CHARS
    members: list[str] = []
    for part in _FAGGRUPPE_SPLIT.split(text):
        name = part.strip()
        if name and name not in members:
            members.append(name)
    if len(members) > MAX_FAGGRUPPE_MEMBERS:
        return _msg(
            f"Foreslå høyst {MAX_FAGGRUPPE_MEMBERS} personer til faggruppen (nå {len(members)}).",
            f"Propose at most {MAX_FAGGRUPPE_MEMBERS} people for the expert group (now {len(members)}).",
        )
    return tuple(members)


# -- validation ----------------------------------------------------------------------------------


def validate_needs_report(raw: Mapping[str, object], today: date) -> ValidationResult:
    """Check a needs-report submit; never raises. See the module docstring for the rules."""
    data: Mapping[str, object] = raw if isinstance(raw, Mapping) else {}
    if isinstance(today, datetime):
        today = today.date()
    errors: dict[str, Messages] = {}

    def get(key: str) -> object:
        try:
            return data.get(key)
        except Exception:  # a hostile Mapping; treat the field as missing
            return None

    def text_field(key: str, required: bool) -> str:
        result = _text(get(key), LIMITS.get(key) or NEEDS_REPORT_FIELDS[key].max_length or 0)
        if isinstance(result, dict):
            errors[key] = result
            return ""
        if required and not result:
            errors[key] = _REQUIRED[key]
        return result

    def choice_field(key: str, allowed: frozenset[str] | tuple[str, ...]) -> str:
        result = _as_text(get(key))
        if isinstance(result, dict):
            errors[key] = _NOT_IN_LIST
            return ""
        if not result:
            errors[key] = _REQUIRED[key]
        elif result not in allowed:
            errors[key] = _NOT_IN_LIST
        return result

    def bool_field(key: str) -> bool:
        result = _bool(get(key))
        if isinstance(result, dict):
            errors[key] = result
            return False
        return result

    title = text_field("title", True)
    need = text_field("need", True)
    service_area = choice_field("service_area", SERVICE_AREA_VALUES)

    estimated_value = 0
    raw_value = get("estimated_value")
    if raw_value is None or (isinstance(raw_value, str) and not raw_value.strip()):
        errors["estimated_value"] = dict(parse_nok("").messages)
    else:
        money = _money(raw_value)
        if isinstance(money, dict):
            errors["estimated_value"] = money
        else:
            estimated_value = money

    value_basis = text_field("value_basis", False)
    category = choice_field("category", CATEGORIES)

    cpv: str | None = None
    cpv_text = _as_text(get("cpv"))
    if isinstance(cpv_text, dict):
        errors["cpv"] = cpv_text
    elif cpv_text:
        if _CPV_RE.match(cpv_text):
            cpv = cpv_text
        else:
            errors["cpv"] = _msg(
                "CPV-koden skal være 8 siffer, eventuelt med kontrollsiffer, for eksempel 45000000-7. "
                "La feltet stå tomt hvis du ikke kjenner koden.",
                "The CPV code is 8 digits, optionally with a check digit, e.g. 45000000-7. "
                "Leave it empty if you do not know the code.",
            )

    agreement_type = choice_field("agreement_type", AGREEMENT_TYPES)

    start: date | None = None
    raw_start = get("start_date")
    if raw_start is None or (isinstance(raw_start, str) and not raw_start.strip()):
        errors["start_date"] = _REQUIRED["start_date"]
    else:
        started = _start_date(raw_start, today)
        if isinstance(started, dict):
            errors["start_date"] = started
        else:
            start = started

    duration = 0
    months = _months(get("duration_months"))
    if months is None:
        errors["duration_months"] = _REQUIRED["duration_months"]
    elif isinstance(months, dict):
        errors["duration_months"] = months
    elif months < 1:
        errors["duration_months"] = _msg("Varigheten må være minst 1 måned.", "The duration must be at least 1 month.")
    elif months > MAX_MONTHS:
        errors["duration_months"] = _msg(
            f"Varigheten kan ikke være over {MAX_MONTHS} måneder (20 år). Kontakt Innkjøpsseksjonen "
            "hvis behovet gjelder lenger tid.",
            f"The duration cannot exceed {MAX_MONTHS} months (20 years). Contact the procurement "
            "section if the need is longer.",
        )
    else:
        duration = months

    options = 0
    option_value = _months(get("option_months"))
    if isinstance(option_value, dict):
        errors["option_months"] = option_value
    elif option_value is not None and option_value < 0:
        errors["option_months"] = _msg(
            "Opsjoner kan ikke være negative. Skriv 0 hvis det ikke er opsjoner.",
            "Options cannot be negative. Enter 0 if there are no options.",
        )
    elif option_value is not None and option_value > MAX_MONTHS:
        errors["option_months"] = _msg(
            f"Opsjonene kan ikke være over {MAX_MONTHS} måneder (20 år).",
            f"Options cannot exceed {MAX_MONTHS} months (20 years).",
        )
    else:
        options = option_value or 0
        if duration and duration + options > MAX_MONTHS:
            errors["option_months"] = _msg(
                f"Varighet og opsjoner kan til sammen ikke være over {MAX_MONTHS} måneder (20 år); "
                f"nå er det {duration + options}.",
                f"Duration and options together cannot exceed {MAX_MONTHS} months (20 years); "
                f"now {duration + options}.",
            )

    replaces = text_field("replaces_contract", False)
    budget_secured = bool_field("budget_secured")
    faggruppe: tuple[str, ...] = ()
    members = _faggruppe(get("faggruppe"))
    if isinstance(members, dict):
        errors["faggruppe"] = members
    else:
        faggruppe = members
    risk_notes = text_field("risk_notes", False)
    innovation = bool_field("innovation")

    if errors or start is None:
        return ValidationResult(errors=errors)
    return ValidationResult(
        errors={},
        value=NeedsReportInput(
            title=title,
            need=need,
            service_area=service_area,
            estimated_value=estimated_value,
            value_basis=value_basis,
            category=category,
            cpv=cpv,
            agreement_type=agreement_type,
            start_date=start,
            duration_months=duration,
            option_months=options,
            replaces_contract=replaces or None,
            budget_secured=budget_secured,
            faggruppe=faggruppe,
            risk_notes=risk_notes,
            innovation=innovation,
        ),
    )
