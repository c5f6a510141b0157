"""The contract record (avtale/kontrakt) as the domain sees it, free of storage.

``ContractData`` is what the contract administration tool (KAV) export, the contract
card and a finished competition all produce, and what the store upserts by
``external_ref``. It is a frozen value: two records are equal when their normalised
fields are equal, and ``fingerprint()`` is a stable SHA-256 hex digest (64 characters)
of those fields, so a store can tell "unchanged" from "updated" by comparing one
stored string. ``__post_init__`` only normalises (trims text, turns lists into tuples,
canonicalises reminder overrides); it never raises for bad values, so a form can
build a record and ask ``validate_contract`` for all problems at once.

Conventions:

* ``end_date`` is the end of the *current* binding period (inclusive). ``options``
  are the extensions still described by the contract; an option that has been
  exercised should also have moved ``end_date`` (the KAV tool does that).
* ``ContractOption.exercised``: ``None`` undecided, ``True`` exercised, ``False``
  declined (a declined option ends the chain: later options lapse).
* ``reminder_overrides`` maps a reminder kind (``"end_6m"``, ``"control"`` …, see
  ``ReminderKind`` below) to an offset before the target date:
  ``{"months": 4}``, ``{"days": 21}``, a string ``"4m"``/``"21d"``/``"3w"``, an
  ``Offset``, or ``None`` to switch that reminder off for this contract. Values are
  stored canonically as ``{"months": m, "days": d}`` (JSON-friendly) or ``None``.
* ``cpv_codes`` and ``scope`` say what the agreement covers (needs reports are matched
  against them, ``procurement/needs/agreements.py``). A CPV code is kept as its eight
  digits: the check digit ("33192000-2") is accepted when typed but carries no meaning
  of its own, so "33192000" and "33192000-2" are the same code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, Literal, NamedTuple

from procurement.shared.calendar import add_months, is_month_end
from procurement.shared.dates import MAX_YEAR, MIN_YEAR, format_date

Category = Literal["goods", "services", "works"]
AgreementType = Literal["framework", "single"]
RiskLevel = Literal["low", "medium", "high"]

CATEGORIES: tuple[str, ...] = ("goods", "services", "works")
AGREEMENT_TYPES: tuple[str, ...] = ("framework", "single")
RISK_LEVELS: tuple[str, ...] = ("low", "medium", "high")

ORG_NO_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)
_EMAIL_RE = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+$")
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_OFFSET_RE = re.compile(r"^\s*(\d{1,3})\s*([mdw])\s*$", re.IGNORECASE)
_CPV_RE = re.compile(r"^(\d{8})(?:-\d)?$")
_CPV_SPLIT = re.compile(r"[,;\s]+")
MAX_CPV_CODES = 20
MAX_SCOPE_LENGTH = 2000
_FINGERPRINT_VERSION = 1


# -- organisation numbers ---------------------------------------------------------------


def normalize_org_no(value: str | int | None) -> str:
    """Digits only: ``"NO 974 760 673 MVA"`` → ``"974760673"`` (no validation)."""
    if value is None:
        return ""
    text = str(value).strip().upper()
    text = re.sub(r"^NO(?=[\s\d])", "", text)
    text = re.sub(r"MVA$", "", text.strip())
    return re.sub(r"[\s.\-\u00a0\u202f]", "", text)


def org_no_problem(value: str) -> str | None:
    """Why ``value`` is not a valid Norwegian organisation number (nb), or None if it is.

    Nine digits; the last is a MOD11 check digit with weights 3,2,7,6,5,4,3,2: the
    check digit is 11 − (weighted sum mod 11), 11 becomes 0, and 10 means the number
    cannot exist.
    """
    digits = normalize_org_no(value)
    if not digits.isdigit() or len(digits) != 9:
        return f"organisasjonsnummer {value} må ha 9 siffer"
    remainder = sum(int(c) * w for c, w in zip(digits[:8], ORG_NO_WEIGHTS, strict=True)) % 11
    check = (11 - remainder) % 11
    if check == 10 or check != int(digits[8]):
        return f"organisasjonsnummer {value} har feil kontrollsiffer"
    return None


def is_valid_org_no(value: str | int | None) -> bool:
    return value is not None and org_no_problem(str(value)) is None


def is_email(value: str) -> bool:
    return bool(_EMAIL_RE.match(value))


def is_aad_object_id(value: str) -> bool:
    return bool(_GUID_RE.match(value))


# -- CPV codes --------------------------------------------------------------------------


def parse_cpv_codes(value: str | Sequence[str] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the codes as eight digits, deduplicated in order; the pieces that are not codes).

    Codes are separated by commas, semicolons, blanks or line breaks. Exports often add the
    code's name ("33192000-2 Medisinske møbler"): a piece without digits is such a name and
    is skipped, as long as the text holds at least one code; a piece with digits must be a
    code. Text with names only ("Medisinske møbler") has no code and is refused whole.
    """
    if value is None:
        return (), ()
    pieces = _CPV_SPLIT.split(value) if isinstance(value, str) else [str(v).strip() for v in value]
    codes: list[str] = []
    bad: list[str] = []
    words: list[str] = []
    for piece in (p for p in pieces if p):
        match = _CPV_RE.match(piece)
        if match:
            if match.group(1) not in codes:
                codes.append(match.group(1))
        elif any(c.isdigit() for c in piece):
            bad.append(piece)
        else:
            words.append(piece)
    if words and not codes and not bad:
        bad.append(" ".join(words))
    return tuple(codes), tuple(bad)


def cpv_problem(bad: Sequence[str]) -> tuple[str, str] | None:
    """The message (nb, en) for pieces `parse_cpv_codes` could not read, or None."""
    if not bad:
        return None
    shown = ", ".join(f"«{b[:40]}»" for b in bad[:3])
    shown_en = ", ".join(f"“{b[:40]}”" for b in bad[:3])
    plural = len(bad) > 1
    return (
        f"CPV-{'kodene' if plural else 'koden'} {shown} er ikke gyldig{'e' if plural else ''}: en CPV-kode har "
        "8 siffer, gjerne med kontrollsiffer, for eksempel 33192000-2 (skill flere koder med komma)",
        f"{'the CPV codes' if plural else 'the CPV code'} {shown_en} {'are' if plural else 'is'} not valid: "
        "a CPV code has 8 digits, optionally with a check digit, e.g. 33192000-2 (separate codes with commas)",
    )


# -- reminder offsets -------------------------------------------------------------------


class ReminderKind(StrEnum):
    """The reminders a contract can have; ``reminder_overrides`` is keyed by these values.

    Defined with the contract (not in ``procurement.reminders``) because the record
    validates its overrides against it, and the reminder schedule depends on the record.
    """

    NEW_COMPETITION = "new_competition"
    OPTION_NOTICE_3M = "option_notice_3m"
    OPTION_NOTICE_1M = "option_notice_1m"
    END_6M = "end_6m"
    END_3M = "end_3m"
    CONTROL = "control"


@dataclass(frozen=True)
class Offset:
    """A distance *before* a target date: whole months first, then days."""

    months: int = 0
    days: int = 0

    def as_json(self) -> dict[str, int]:
        return {"months": self.months, "days": self.days}

    def __str__(self) -> str:
        parts = []
        if self.months:
            parts.append(f"{self.months} mnd")
        if self.days or not parts:
            parts.append(f"{self.days} dager")
        return " ".join(parts)


def parse_offset(value: object) -> Offset | None:
    """An override value as an ``Offset``; ``None`` means "switched off".

    Raises ``ValueError`` for anything else (negative numbers, unknown units, bools).
    """
    if value is None:
        return None
    if isinstance(value, Offset):
        off = value
    elif isinstance(value, Mapping):
        unknown = set(value) - {"months", "days"}
        if unknown or not value:
            raise ValueError(f"ugyldig forskyvning {dict(value)!r}")
        months, days = value.get("months", 0), value.get("days", 0)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (months, days)):
            raise ValueError(f"ugyldig forskyvning {dict(value)!r}")
        off = Offset(months=int(months), days=int(days))
    elif isinstance(value, str):
        m = _OFFSET_RE.match(value)
        if not m:
            raise ValueError(f"ugyldig forskyvning {value!r} (bruk f.eks. «3m», «14d» eller «2w»)")
        n, unit = int(m.group(1)), m.group(2).lower()
        off = Offset(months=n) if unit == "m" else Offset(days=n * (7 if unit == "w" else 1))
    else:
        raise ValueError(f"ugyldig forskyvning {value!r}")
    if off.months < 0 or off.days < 0 or off.months > 60 or off.days > 3650:
        raise ValueError(f"forskyvningen {off} er utenfor tillatt område")
    return off


def _canonical_override(value: object) -> object:
    try:
        off = parse_offset(value)
    except ValueError:
        return value  # kept as given; validate_contract reports it
    return None if off is None else off.as_json()


# -- the record -------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractOption:
    """One option to extend: ``months`` long, to be decided by ``notice_deadline``.

    ``decided_by``/``decided_at`` (ISO time)/``decision_reason`` record who exercised or
    declined it here (a reminder answer); not part of the fingerprint, like an audit note."""

    number: int
    months: int
    notice_deadline: date
    exercised: bool | None = None
    decided_by: str = ""
    decided_at: str = ""
    decision_reason: str = ""


@dataclass(frozen=True)
class PlannedControl:
    """A planned follow-up control, e.g. a wage-condition audit (``kind`` is a short code)."""

    kind: str
    due: date
    description: str = ""


def _text(value: object) -> str:
    return "" if value is None else " ".join(str(value).split())


@dataclass(frozen=True, kw_only=True)
class ContractData:
    external_ref: str
    supplier_name: str
    title: str
    category: Category
    start_date: date
    end_date: date
    supplier_org_no: str = ""
    options: Sequence[ContractOption] = ()
    value_nok: int | None = None
    agreement_type: AgreementType = "single"
    manager_email: str = ""
    manager_aad_id: str | None = None
    risk_level: RiskLevel = "medium"
    controls: Sequence[PlannedControl] = ()
    archive_case_no: str = ""
    internal_notes: str = ""
    reminder_overrides: Mapping[str, Any] = field(default_factory=dict)
    cpv_codes: Sequence[str] = ()
    scope: str = ""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("external_ref", "supplier_name", "title", "archive_case_no"):
            set_(self, name, _text(getattr(self, name)))
        set_(self, "supplier_org_no", normalize_org_no(self.supplier_org_no))
        set_(self, "manager_email", _text(self.manager_email).lower())
        aad_id = _text(self.manager_aad_id)
        set_(self, "manager_aad_id", (aad_id.lower() if is_aad_object_id(aad_id) else aad_id) or None)
        notes = "" if self.internal_notes is None else str(self.internal_notes)
        set_(self, "internal_notes", notes.replace("\r\n", "\n").replace("\r", "\n").strip())
        set_(self, "options", tuple(sorted(self.options, key=lambda o: o.number)))
        set_(self, "controls", tuple(self.controls))
        # Codes canonical (8 digits, no duplicates); a piece that is no code is kept as given
        # so validate_contract reports it.
        codes, bad = parse_cpv_codes(self.cpv_codes)
        set_(self, "cpv_codes", codes + bad)
        set_(self, "scope", _text(self.scope))
        overrides = dict(self.reminder_overrides or {})
        set_(
            self,
            "reminder_overrides",
            {str(k): _canonical_override(v) for k, v in sorted(overrides.items())},
        )

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def normalized(self) -> dict[str, Any]:
        """The fields as plain JSON values; the basis of ``fingerprint``.

        Empty optional values are folded together (``None`` and ``""``, ``None`` and 0
        for the value) so a round trip through a store with NOT NULL defaults does not
        look like a change. Coverage (CPV codes, scope) is only included when set, so a
        contract recorded before it existed keeps its fingerprint.
        """
        coverage: dict[str, Any] = {}
        if self.cpv_codes:
            coverage["cpv_codes"] = list(self.cpv_codes)
        if self.scope:
            coverage["scope"] = self.scope
        return {
            **coverage,
            "v": _FINGERPRINT_VERSION,
            "external_ref": self.external_ref,
            "supplier_name": self.supplier_name,
            "supplier_org_no": self.supplier_org_no,
            "title": self.title,
            "category": self.category,
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "options": [[o.number, o.months, o.notice_deadline.isoformat(), o.exercised] for o in self.options],
            "value_nok": self.value_nok or 0,
            "agreement_type": self.agreement_type,
            "manager_email": self.manager_email,
            "manager_aad_id": self.manager_aad_id or "",
            "risk_level": self.risk_level,
            "controls": [[c.kind, c.due.isoformat(), c.description] for c in self.controls],
            "archive_case_no": self.archive_case_no,
            "internal_notes": self.internal_notes,
            "reminder_overrides": {k: v for k, v in self.reminder_overrides.items()},
        }

    def fingerprint(self) -> str:
        """Stable SHA-256 hex digest of ``normalized()`` (same on every machine and run)."""
        payload = json.dumps(
            self.normalized(),
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def final_end_date(self) -> date:
        """The end date if every undecided option were exercised."""
        end = self.end_date
        for option in self.options:
            if option.exercised is False:
                break
            if option.exercised is None:
                end = add_months(end, option.months, keep_month_end=True)
        return end


# -- validation -------------------------------------------------------------------------


# The years a typed date may have (what parse_date reads).
MIN_DATE, MAX_DATE = date(MIN_YEAR, 1, 1), date(MAX_YEAR, 12, 31)
# The store's column sizes (procurement/store/tables.py).
_MAX_LENGTHS: tuple[tuple[str, int, str, str], ...] = (
    ("external_ref", 64, "avtalenummeret", "the contract number"),
    ("supplier_name", 200, "leverandørnavnet", "the supplier name"),
    ("title", 300, "avtalenavnet", "the title"),
    (
        "manager_email",
        200,
        "avtaleforvalterens e-postadresse",
        "the contract manager's e-mail address",
    ),
    ("manager_aad_id", 64, "avtaleforvalterens Entra-id", "the contract manager's Entra id"),
    ("archive_case_no", 32, "arkivsaksnummeret", "the case number"),
    ("scope", MAX_SCOPE_LENGTH, "omfanget", "the scope"),
)


class ContractProblem(NamedTuple):
    field: str
    message_nb: str
    message_en: str


class InvalidContract(ValueError):
    def __init__(self, problems: list[ContractProblem]) -> None:
        super().__init__("; ".join(p.message_nb for p in problems))
        self.problems = problems


def validate_contract(data: ContractData) -> list[ContractProblem]:
    """Every problem with the record, each with its field and a message in nb and en."""
    problems: list[ContractProblem] = []

    def add(field_name: str, nb: str, en: str) -> None:
        problems.append(ContractProblem(field_name, nb, en))

    for name, nb, en in (
        ("external_ref", "avtalenummer", "contract number"),
        ("supplier_name", "leverandør", "supplier"),
        ("title", "avtalenavn", "title"),
    ):
        if not getattr(data, name):
            add(name, f"{nb} mangler", f"{en} is missing")
    for name, limit, nb, en in _MAX_LENGTHS:
        value = getattr(data, name) or ""
        if len(value) > limit:
            add(name, f"{nb} er lengre enn {limit} tegn", f"{en} is longer than {limit} characters")
    for name, nb, en in (
        ("start_date", "startdato", "start date"),
        ("end_date", "sluttdato", "end date"),
    ):
        if not MIN_DATE <= getattr(data, name) <= MAX_DATE:
            add(
                name,
                f"{nb} må være mellom år {MIN_DATE.year} og {MAX_DATE.year}",
                f"{en} must be between the years {MIN_DATE.year} and {MAX_DATE.year}",
            )
    if data.supplier_org_no:
        why = org_no_problem(data.supplier_org_no)
        if why:
            add("supplier_org_no", why, f"organisation number {data.supplier_org_no} is not valid")
    if data.category not in CATEGORIES:
        add("category", f"ukjent kategori {data.category!r}", f"unknown category {data.category!r}")
    if data.agreement_type not in AGREEMENT_TYPES:
        add(
            "agreement_type",
            f"ukjent avtaletype {data.agreement_type!r}",
            f"unknown agreement type {data.agreement_type!r}",
        )
    if data.risk_level not in RISK_LEVELS:
        add(
            "risk_level",
            f"ukjent risikonivå {data.risk_level!r}",
            f"unknown risk level {data.risk_level!r}",
        )
    if data.end_date < data.start_date:
        add(
            "end_date",
            f"sluttdato {format_date(data.end_date)} er før startdato {format_date(data.start_date)}",
            f"end date {data.end_date.isoformat()} is before start date {data.start_date.isoformat()}",
        )
    if data.value_nok is not None and data.value_nok < 0:
        add("value_nok", "verdien kan ikke være negativ", "the value cannot be negative")
    if data.manager_email and not is_email(data.manager_email):
        add(
            "manager_email",
            f"avtaleforvalter {data.manager_email} er ikke en e-postadresse",
            f"contract manager {data.manager_email} is not an e-mail address",
        )
    numbers = [o.number for o in data.options]
    if len(set(numbers)) != len(numbers) or any(n < 1 for n in numbers):
        add(
            "options",
            "opsjonene må ha ulike nummer fra 1 og oppover",
            "options must have distinct numbers starting at 1",
        )
    for o in data.options:
        if not 1 <= o.months <= 120:
            add(
                "options",
                f"opsjon {o.number}: varighet {o.months} mnd er utenfor 1–120",
                f"option {o.number}: length {o.months} months is outside 1–120",
            )
    if data.options and data.options[0].notice_deadline > data.end_date:
        first = data.options[0]
        add(
            "options",
            f"opsjonsfrist {format_date(first.notice_deadline)} er etter sluttdato {format_date(data.end_date)}",
            f"option notice deadline {first.notice_deadline.isoformat()} is after the end date",
        )
    bad_cpv = [c for c in data.cpv_codes if not _CPV_RE.match(c)]
    if (cpv := cpv_problem(bad_cpv)) is not None:
        add("cpv_codes", *cpv)
    elif len(data.cpv_codes) > MAX_CPV_CODES:
        add(
            "cpv_codes",
            f"høyst {MAX_CPV_CODES} CPV-koder per avtale (fant {len(data.cpv_codes)})",
            f"at most {MAX_CPV_CODES} CPV codes per agreement (found {len(data.cpv_codes)})",
        )
    known = {k.value for k in ReminderKind}
    for key, value in data.reminder_overrides.items():
        if key not in known:
            add(
                "reminder_overrides",
                f"ukjent påminnelsestype {key!r}",
                f"unknown reminder kind {key!r}",
            )
            continue
        try:
            parse_offset(value)
        except ValueError as exc:
            add("reminder_overrides", f"{key}: {exc}", f"{key}: invalid offset {value!r}")
    return problems


def ensure_valid(data: ContractData) -> ContractData:
    problems = validate_contract(data)
    if problems:
        raise InvalidContract(problems)
    return data


# -- options and deadlines -------------------------------------------------------------


def derive_option_deadlines(end: date, months: Sequence[int], first_notice: date) -> list[ContractOption]:
    """Options 1..n with their notice deadlines.

    Option 1's deadline is ``first_notice``. Option k+1's deadline lies the same
    distance before the end of option k's period as ``first_notice`` lies before
    ``end``: in whole months when ``first_notice`` is exactly whole months before ``end``
    (a month-end stays a month-end), else in days. Periods run to the same day of
    the month (``end`` on a month's last day keeps to month ends).
    """
    distance_months = next(
        (k for k in range(61) if first_notice in (add_months(end, -k), add_months(end, -k, keep_month_end=True))),
        None,
    )
    distance_days = (end - first_notice).days
    keep_end = is_month_end(first_notice)
    options: list[ContractOption] = []
    period_end = end
    notice = first_notice
    for number, length in enumerate(months, start=1):
        if number > 1:
            if distance_months is not None:
                notice = add_months(period_end, -distance_months, keep_month_end=keep_end)
            else:
                notice = period_end - timedelta(days=distance_days)
        options.append(ContractOption(number=number, months=length, notice_deadline=notice))
        period_end = add_months(period_end, length, keep_month_end=True)
    return options


@dataclass(frozen=True)
class OptionDecision:
    """Who decided an option, when (ISO time) and why."""

    by: str
    at: str
    reason: str = ""


def exercise_option(contract: ContractData, number: int, decision: OptionDecision) -> ContractData | None:
    """The contract with option ``number`` exercised: its end date moves on by the option's
    months (a month-end stays a month-end). None when the option is unknown or decided."""
    for option in contract.options:
        if option.number == number and option.exercised is None:
            chosen = dataclasses.replace(
                option, exercised=True, decided_by=decision.by, decided_at=decision.at, decision_reason=decision.reason
            )
            options = [chosen if o.number == number else o for o in contract.options]
            end = add_months(contract.end_date, option.months, keep_month_end=True)
            return dataclasses.replace(contract, options=options, end_date=end)
    return None


def decline_option(contract: ContractData, number: int, decision: OptionDecision) -> ContractData | None:
    """The contract with option ``number`` declined (with the reason). A declined option ends
    the chain (later options lapse, ``derive_schedule`` plans none for them); the end date
    stays. None when the option is unknown or decided."""
    for option in contract.options:
        if option.number == number and option.exercised is None:
            declined = dataclasses.replace(
                option, exercised=False, decided_by=decision.by, decided_at=decision.at, decision_reason=decision.reason
            )
            options = [declined if o.number == number else o for o in contract.options]
            return dataclasses.replace(contract, options=options)
    return None


class Deadline(NamedTuple):
    kind: str  # "option_notice", "control" or "end"
    date: date


_DEADLINE_ORDER = {"option_notice": 0, "control": 1, "end": 2}


def next_deadline(contract: ContractData, today: date) -> Deadline | None:
    """The nearest deadline on or after ``today``: an undecided option's notice
    deadline, a planned control, or the end date. Ties go option, control, end."""
    candidates: list[Deadline] = []
    for option in contract.options:
        if option.exercised is False:
            break  # later options lapse
        if option.exercised is None:
            candidates.append(Deadline("option_notice", option.notice_deadline))
    candidates.extend(Deadline("control", c.due) for c in contract.controls)
    candidates.append(Deadline("end", contract.end_date))
    upcoming = [c for c in candidates if c.date >= today]
    if not upcoming:
        return None
    return min(upcoming, key=lambda c: (c.date, _DEADLINE_ORDER[c.kind]))
