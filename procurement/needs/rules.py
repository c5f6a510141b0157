"""What the rules say about a needs report: thresholds as dated data, consequences in nb/en.

The figures (100 000, 500 000, national and EEA thresholds, the 30 % climate weight, the
10 % apprentice share …) are not constants in this module: they live in
`rules_data/thresholds.json`, each with the date it applies from and its source, so a
change in the law is a new data entry with a later `valid_from`, not a code change. The
consequence texts live in the same file.

`assess` returns an ordered list of consequences:

1. an existing framework agreement covering the category (avtalelojalitet) — first;
2. the value tier: under the reporting limit, or run by Innkjøpsseksjonen;
3. KGV, Doffin, konkurransestrategi, climate weight (national threshold and up);
4. TED and lots (EEA threshold), or a suggestion of lots (national threshold and up);
5. by category: wage and working conditions (services, works), serious-employer
   requirements (works, cleaning), apprentices (services and works above the EEA
   threshold lasting more than 3 months);
6. fossil vehicles (green procurement strategy);
7. market dialogue / innovation, faggruppe, verneombud and tillitsvalgte.

All thresholds are compared with `>=` on whole kroner. The module is pure: no I/O other
than reading the rule file in `load_rules`.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from procurement.shared.money import format_nok

CATEGORIES = ("goods", "services", "works")
SEVERITIES = ("info", "required", "warning")
LANGS = ("nb", "en")
DEFAULT_RULES_PATH = Path(__file__).resolve().parent / "rules_data" / "thresholds.json"

# Threshold ids the assessment uses. An id with no entry valid on the assessment date
# switches its rule off (the rule did not exist then).
REPORT_REQUIRED = "report_required"
KGV = "kgv"
NATIONAL = "national"
EEA_GOODS_SERVICES = "eea_goods_services"
EEA_WORKS = "eea_works"
CLIMATE_MIN_WEIGHT = "climate_min_weight"
APPRENTICE_MIN_MONTHS = "apprentice_min_months"
APPRENTICE_MIN_SHARE = "apprentice_min_share"

PLACEHOLDERS = frozenset({
    "value", "report_required", "kgv", "national", "eea", "eea_group", "category",
    "climate_weight", "apprentice_months", "apprentice_share", "agreements", "reason", "members",
})
TEMPLATE_KEYS = frozenset({
    "framework_agreement", "below_reporting_threshold", "run_by_procurement", "kgv",
    "kgv_mandatory", "doffin", "competition_strategy", "climate_weight", "ted", "lots_justify",
    "lots_suggest", "wage_conditions", "serious_employer_works", "serious_employer_cleaning",
    "apprentices_share", "apprentices_basic", "fossil_vehicles", "market_dialogue_requested",
    "market_dialogue_consider", "faggruppe_missing", "faggruppe_proposed", "staff_representatives",
})

_CATEGORY_NAMES = {
    "goods": {"nb": "varer", "en": "goods"},
    "services": {"nb": "tjenester", "en": "services"},
    "works": {"nb": "bygg og anlegg", "en": "building and construction"},
}
_EEA_GROUP_NAMES = {
    EEA_GOODS_SERVICES: {"nb": "varer og tjenester", "en": "goods and services"},
    EEA_WORKS: {"nb": "bygg og anlegg", "en": "building and construction works"},
}
_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")
MAX_AGREEMENTS_LISTED = 3


class RulesError(ValueError):
    """The rule file is missing, malformed or incomplete."""


# -- data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThresholdEntry:
    """One dated figure: applies from `valid_from` until a later entry with the same id."""

    id: str
    amount: int
    valid_from: date
    source: str
    unit: str = "NOK"


@dataclass(frozen=True)
class ConsequenceTemplate:
    key: str
    code: str
    severity: str
    source: str
    text: Mapping[str, str]


class Thresholds(Mapping[str, ThresholdEntry]):
    """The entries in force on one date, by id (ids with no entry yet are absent)."""

    def __init__(self, on: date, entries: Mapping[str, ThresholdEntry]) -> None:
        self.on = on
        self._entries = dict(entries)

    def __getitem__(self, key: str) -> ThresholdEntry:
        return self._entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def amount(self, key: str) -> int | None:
        entry = self._entries.get(key)
        return entry.amount if entry else None

    def amounts(self) -> dict[str, int]:
        return {k: e.amount for k, e in self._entries.items()}


@dataclass(frozen=True)
class RuleSet:
    entries: tuple[ThresholdEntry, ...]
    templates: Mapping[str, ConsequenceTemplate]
    origin: str = ""

    def thresholds_on(self, on: date) -> Thresholds:
        """For each id, the entry with the latest `valid_from` on or before `on`."""
        chosen: dict[str, ThresholdEntry] = {}
        for entry in self.entries:
            if entry.valid_from <= on:
                current = chosen.get(entry.id)
                if current is None or entry.valid_from > current.valid_from:
                    chosen[entry.id] = entry
        return Thresholds(on, chosen)

    def history(self, threshold_id: str) -> list[ThresholdEntry]:
        return sorted((e for e in self.entries if e.id == threshold_id), key=lambda e: e.valid_from)

    def template(self, key: str) -> ConsequenceTemplate:
        return self.templates[key]


def _parse_date(value: object, where: str) -> date:
    if not isinstance(value, str):
        raise RulesError(f"{where}: valid_from must be a yyyy-mm-dd string")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise RulesError(f"{where}: valid_from {value!r} is not a yyyy-mm-dd date") from exc


def _check_placeholders(text: str, where: str) -> None:
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise RulesError(f"{where}: malformed placeholder ({exc})") from exc
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            raise RulesError(f"{where}: unknown placeholder {{{name}}}; allowed: {sorted(PLACEHOLDERS)}")


def rules_from_dict(data: Mapping[str, Any], origin: str = "") -> RuleSet:
    """Build and check a RuleSet from the JSON structure (see rules_data/thresholds.json)."""
    if not isinstance(data, Mapping):
        raise RulesError(f"{origin}: the rule file must hold a JSON object")
    raw_entries = data.get("thresholds")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise RulesError(f"{origin}: 'thresholds' must be a non-empty list")
    entries: list[ThresholdEntry] = []
    seen: set[tuple[str, date]] = set()
    for i, raw in enumerate(raw_entries):
        where = f"{origin} thresholds[{i}]"
        if not isinstance(raw, Mapping):
            raise RulesError(f"{where}: must be an object")
        tid, amount, source = raw.get("id"), raw.get("amount"), raw.get("source")
        if not isinstance(tid, str) or not tid:
            raise RulesError(f"{where}: 'id' must be a non-empty string")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            raise RulesError(f"{where}: 'amount' must be a whole number >= 0")
        if not isinstance(source, str) or not source:
            raise RulesError(f"{where}: 'source' must say where the figure comes from")
        unit = raw.get("unit", "NOK")
        if not isinstance(unit, str):
            raise RulesError(f"{where}: 'unit' must be a string")
        valid_from = _parse_date(raw.get("valid_from"), where)
        if (tid, valid_from) in seen:
            raise RulesError(f"{where}: two entries for {tid!r} from {valid_from}")
        seen.add((tid, valid_from))
        entries.append(ThresholdEntry(tid, amount, valid_from, source, unit))

    raw_templates = data.get("consequences")
    if not isinstance(raw_templates, Mapping):
        raise RulesError(f"{origin}: 'consequences' must be an object")
    templates: dict[str, ConsequenceTemplate] = {}
    for key, raw in raw_templates.items():
        where = f"{origin} consequences.{key}"
        if not isinstance(raw, Mapping):
            raise RulesError(f"{where}: must be an object")
        code, severity, source = raw.get("code", key), raw.get("severity"), raw.get("source")
        if not isinstance(code, str) or not code:
            raise RulesError(f"{where}: 'code' must be a string")
        if severity not in SEVERITIES:
            raise RulesError(f"{where}: 'severity' must be one of {SEVERITIES}")
        if not isinstance(source, str) or not source:
            raise RulesError(f"{where}: 'source' is required")
        text: dict[str, str] = {}
        for lang in LANGS:
            value = raw.get(lang)
            if not isinstance(value, str) or not value.strip():
                raise RulesError(f"{where}: text in {lang!r} is required")
            _check_placeholders(value, f"{where}.{lang}")
            text[lang] = value
        templates[key] = ConsequenceTemplate(key, code, str(severity), source, text)
    missing = TEMPLATE_KEYS - templates.keys()
    if missing:
        raise RulesError(f"{origin}: consequence texts missing for {sorted(missing)}")
    return RuleSet(tuple(entries), templates, origin)


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Read and check a rule file; by default the one shipped in `rules_data/`."""
    file = Path(path) if path is not None else DEFAULT_RULES_PATH
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"cannot read rule file {file}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise RulesError(f"rule file {file} is not valid JSON: {exc}") from exc
    return rules_from_dict(data, origin=str(file))


@lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    """The shipped rule file, read once (it is immutable data)."""
    return load_rules()


# -- input and output --------------------------------------------------------------------


@dataclass(frozen=True)
class FrameworkAgreementHit:
    """An agreement from the contract register the caller found for the report's category."""

    contract_ref: str
    title: str
    supplier: str
    category: str
    end_date: date | None = None


@dataclass(frozen=True)
class NeedsReportFacts:
    """What the rules look at. `estimated_value` is whole NOK excl. VAT incl. options.

    `cleaning` and `fossil_vehicles`: True/False states it; None (default) lets `assess`
    detect it from the CPV code and words in the title and need (see `detect_*`)."""

    estimated_value: int
    category: str
    title: str = ""
    need: str = ""
    cpv: str | None = None
    risk_notes: str = ""
    duration_months: int = 0
    option_months: int = 0
    innovation: bool = False
    agreement_type: str = "single"
    service_area: str = ""
    faggruppe: tuple[str, ...] = ()
    cleaning: bool | None = None
    fossil_vehicles: bool | None = None

    @property
    def total_months(self) -> int:
        return self.duration_months + self.option_months


@dataclass(frozen=True)
class Consequence:
    code: str
    severity: str
    text: Mapping[str, str]
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "text": dict(self.text), "source": self.source}


@dataclass(frozen=True)
class Assessment:
    on: date
    value: int
    category: str
    consequences: tuple[Consequence, ...]
    thresholds: Mapping[str, int] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        return [c.code for c in self.consequences]

    def get(self, code: str) -> Consequence | None:
        return next((c for c in self.consequences if c.code == code), None)

    def __iter__(self) -> Iterator[Consequence]:
        return iter(self.consequences)

    def __len__(self) -> int:
        return len(self.consequences)

    def to_dict(self) -> dict[str, Any]:
        return {
            "on": self.on.isoformat(),
            "value": self.value,
            "category": self.category,
            "thresholds": dict(self.thresholds),
            "consequences": [c.to_dict() for c in self.consequences],
        }


# -- detection (deliberately simple word lists; explained in each docstring) -------------


@dataclass(frozen=True)
class Detection:
    """Why a rule was triggered: by a CPV code, a word in the text, or the report's flag."""

    kind: str  # "cpv" | "word" | "flag"
    token: str

    def reason(self, lang: str) -> str:
        if self.kind == "cpv":
            return f"CPV-kode {self.token}" if lang == "nb" else f"CPV code {self.token}"
        if self.kind == "word":
            return f"ordet «{self.token}»" if lang == "nb" else f"the word “{self.token}”"
        return "oppgitt i behovsmeldingen" if lang == "nb" else "stated in the needs report"


def _cpv_digits(cpv: str | None) -> str:
    if not cpv:
        return ""
    digits = cpv.strip().split("-", 1)[0]
    return digits if len(digits) == 8 and digits.isascii() and digits.isdigit() else ""


def _words(pattern: str) -> re.Pattern[str]:
    # Whole words (compounds via the pattern itself); \w covers æ, ø and å.
    return re.compile(rf"(?<!\w)(?:{pattern})(?!\w)", re.IGNORECASE)


# Vehicles and transport: CPV 341xxxxx (motor vehicles) and 601xxxxx (road transport),
# or one of these words (also as the last part of a compound such as "leasingbil").
VEHICLE_CPV_PREFIXES = ("341", "601")
_VEHICLE_WORDS = _words(
    r"(?:person|vare|laste|tjeneste|firma|leasing|lease|utleie|bruks|kommunal|el-?|hybrid|diesel|bensin|gass)?"
    r"bil(?:er|en|ene|park|parken|leasing|utleie|hold|flåte|flåten)?"
    r"|\w*kjøretøy\w*|(?:mini|skole|tur|el-?)?buss(?:er|en|ene)?|\w*transport\w*|\w*skyss\w*"
    r"|drosje\w*|taxi\w*|traktor\w*|varebil\w*|lastebil\w*"
)
# Fossil fuel named outright. "fossilfri" is the opposite and is not matched; biodiesel is
# not matched either (no word start before "diesel").
_FOSSIL_WORDS = _words(r"diesel\w*|bensin\w*|fossil(?!fri)\w*|hybrid\w*")
_ZERO_EMISSION_WORDS = _words(
    r"el-?(?:vare|laste|person)?(?:bil|buss)\w*|elektrisk\w*|batterielektrisk\w*|nullutslipp\w*"
    r"|utslippsfri\w*|fossilfri\w*|hydrogen\w*|biogass\w*|biodiesel|hvo\d*"
)

# Cleaning services (renhold): CPV 90900000 / 9091xxxx, or these words. Only for the
# category "services": buying cleaning products (goods) is not a cleaning contract.
CLEANING_CPV_PREFIXES = ("90900", "9091")
_CLEANING_WORDS = _words(r"\w*renhold\w*|\w*rengjøring\w*|vinduspuss\w*|vindusvask\w*")

# Words suggesting that goods affect staff (services and works always ask).
_STAFF_WORDS = _words(
    r"ansatte|arbeidsmiljø\w*|arbeidstøy|arbeidsklær|verneutstyr\w*|uniform\w*|turnus\w*"
    r"|arbeidsplass\w*|hms|kontorstol\w*|hev-?senk\w*"
)


def _token(word: str) -> str:
    """A matched word as shown in a message: letters and hyphens only, at most 30 characters."""
    return re.sub(r"[^\w-]|[\d_]", "", word.lower())[:30]


def _scan_text(facts: NeedsReportFacts) -> str:
    return f"{facts.title}\n{facts.need}"


def detect_fossil_vehicles(facts: NeedsReportFacts) -> Detection | None:
    """Vehicles or transport that may run on fossil fuel.

    Warn when a fossil fuel is named (diesel, bensin, fossil…; "hybrid" only together
    with a vehicle), or when the report concerns vehicles/transport (CPV 341…/601… or a
    vehicle word) and names no zero-emission option (elbil, elektrisk, nullutslipp,
    hydrogen, biogass …). Title and need are scanned; the flag overrides."""
    if facts.fossil_vehicles is not None:
        return Detection("flag", "") if facts.fossil_vehicles else None
    text = _scan_text(facts)
    cpv = _cpv_digits(facts.cpv)
    vehicle_cpv = cpv if cpv.startswith(VEHICLE_CPV_PREFIXES) else ""
    vehicle_word = _VEHICLE_WORDS.search(text)
    is_vehicle = bool(vehicle_cpv or vehicle_word)
    for fossil in _FOSSIL_WORDS.finditer(text):
        word = _token(fossil.group(0))
        if not word.startswith("hybrid") or is_vehicle:
            return Detection("word", word)
    if not is_vehicle or _ZERO_EMISSION_WORDS.search(text):
        return None
    if vehicle_cpv:
        return Detection("cpv", vehicle_cpv)
    assert vehicle_word is not None
    return Detection("word", _token(vehicle_word.group(0)))


def detect_cleaning(facts: NeedsReportFacts) -> Detection | None:
    """Cleaning services: category services and CPV 90900000/9091… or a cleaning word."""
    if facts.cleaning is not None:
        return Detection("flag", "") if facts.cleaning else None
    if facts.category != "services":
        return None
    cpv = _cpv_digits(facts.cpv)
    if cpv.startswith(CLEANING_CPV_PREFIXES):
        return Detection("cpv", cpv)
    word = _CLEANING_WORDS.search(_scan_text(facts))
    return Detection("word", _token(word.group(0))) if word else None


def affects_staff(facts: NeedsReportFacts) -> bool:
    """Services and works affect staff's working day; goods only when staff words appear."""
    if facts.category in ("services", "works"):
        return True
    return bool(_STAFF_WORDS.search(f"{_scan_text(facts)}\n{facts.risk_notes}"))


# -- assessment ------------------------------------------------------------------------------


def _date_text(d: date, lang: str) -> str:
    if lang == "nb":
        return d.strftime("%d.%m.%Y")
    return f"{d.day} {_MONTHS_EN[d.month - 1]} {d.year}"


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _agreements_text(hits: Sequence[FrameworkAgreementHit], lang: str) -> str:
    parts = []
    for hit in hits[:MAX_AGREEMENTS_LISTED]:
        bits = [_short(hit.supplier)] if hit.supplier else []
        if hit.contract_ref:
            bits.append(("avtale " if lang == "nb" else "agreement ") + _short(hit.contract_ref, 60))
        if hit.end_date:
            bits.append(("gjelder til " if lang == "nb" else "valid until ") + _date_text(hit.end_date, lang))
        title = f"«{_short(hit.title)}»" if lang == "nb" else f"“{_short(hit.title)}”"
        parts.append(f"{title} ({', '.join(bits)})" if bits else title)
    more = len(hits) - MAX_AGREEMENTS_LISTED
    if more > 0:
        parts.append(f"og {more} til" if lang == "nb" else f"and {more} more")
    return "; ".join(parts)


def _members_text(count: int, lang: str) -> str:
    if lang == "nb":
        return "1 person" if count == 1 else f"{count} personer"
    return "1 person" if count == 1 else f"{count} people"


def covering_agreements(
    facts: NeedsReportFacts, on: date, agreements: Iterable[FrameworkAgreementHit]
) -> list[FrameworkAgreementHit]:
    """Framework agreements of the report's category still in force on `on`."""
    return [
        a for a in agreements
        if a.category == facts.category and (a.end_date is None or a.end_date >= on)
    ]


class _Fill(dict[str, str]):
    """Placeholder values; one with no value on the date (a rule file edited to use, say,
    {national} in a text shown before 2018) renders as a dash instead of failing a submit."""

    def __missing__(self, key: str) -> str:
        return "–"


class _Builder:
    def __init__(self, rules: RuleSet, values: Mapping[str, Mapping[str, str]]) -> None:
        self.rules = rules
        self.values = values
        self.out: list[Consequence] = []

    def add(self, key: str, severity: str | None = None, **extra: Mapping[str, str]) -> None:
        template = self.rules.template(key)
        text = {}
        for lang in LANGS:
            fill = _Fill({name: v[lang] for name, v in self.values.items()})
            fill.update({name: v[lang] for name, v in extra.items()})
            text[lang] = template.text[lang].format_map(fill)
        self.out.append(Consequence(template.code, severity or template.severity, text, template.source))


def _both(fn: Any, *args: Any) -> dict[str, str]:
    return {lang: fn(*args, lang) for lang in LANGS}


def assess(
    report: NeedsReportFacts,
    on: date,
    framework_agreements: Iterable[FrameworkAgreementHit] = (),
    rules: RuleSet | None = None,
) -> Assessment:
    """The consequences of the rules in force on `on` for this report, in display order."""
    if report.category not in CATEGORIES:
        raise ValueError(f"unknown category {report.category!r}; expected one of {CATEGORIES}")
    if report.estimated_value < 0:
        raise ValueError("estimated_value must not be negative")
    rules = rules or default_rules()
    th = rules.thresholds_on(on)
    value = report.estimated_value
    works = report.category == "works"
    eea_id = EEA_WORKS if works else EEA_GOODS_SERVICES

    values: dict[str, dict[str, str]] = {
        "value": _both(format_nok, value),
        "category": dict(_CATEGORY_NAMES[report.category]),
        "eea_group": dict(_EEA_GROUP_NAMES[eea_id]),
    }
    for name, tid in (("report_required", REPORT_REQUIRED), ("kgv", KGV), ("national", NATIONAL),
                      ("eea", eea_id)):
        amount = th.amount(tid)
        if amount is not None:
            values[name] = _both(format_nok, amount)
    for name, tid in (("climate_weight", CLIMATE_MIN_WEIGHT), ("apprentice_months", APPRENTICE_MIN_MONTHS),
                      ("apprentice_share", APPRENTICE_MIN_SHARE)):
        amount = th.amount(tid)
        if amount is not None:
            values[name] = {lang: str(amount) for lang in LANGS}
    b = _Builder(rules, values)

    def reached(tid: str) -> bool:
        amount = th.amount(tid)
        return amount is not None and value >= amount

    # 1. An agreement already covers this: say so before anything else.
    hits = covering_agreements(report, on, framework_agreements)
    if hits:
        b.add("framework_agreement", agreements=_both(_agreements_text, hits))

    # 2. Value tier.
    reportable = reached(REPORT_REQUIRED)
    if th.amount(REPORT_REQUIRED) is not None:
        b.add("run_by_procurement" if reportable else "below_reporting_threshold")

    # 3. National threshold and the strategy's KGV limit.
    national = reached(NATIONAL)
    if reached(KGV) or national:
        b.add("kgv_mandatory" if national else "kgv")
    if national:
        b.add("doffin")
        b.add("competition_strategy")
        if CLIMATE_MIN_WEIGHT in th:
            b.add("climate_weight")

    # 4. EEA threshold: TED, and lots must be considered and justified; below it, large
    #    values still get the suggestion to divide so small and local suppliers can bid.
    eea = reached(eea_id)
    if eea:
        b.add("ted")
        b.add("lots_justify")
    elif national:
        b.add("lots_suggest")

    # 5. Category-dependent requirements.
    if report.category in ("services", "works"):
        b.add("wage_conditions", None if reportable else "info")
    cleaning = detect_cleaning(report)
    if cleaning:
        b.add("serious_employer_cleaning")
    elif works:
        b.add("serious_employer_works")
    min_months = th.amount(APPRENTICE_MIN_MONTHS)
    if (
        report.category in ("services", "works")
        and eea
        and min_months is not None
        and report.total_months > min_months
    ):
        b.add("apprentices_share" if APPRENTICE_MIN_SHARE in th else "apprentices_basic")

    # 6. Green procurement strategy.
    fossil = detect_fossil_vehicles(report)
    if fossil:
        b.add("fossil_vehicles", reason={lang: fossil.reason(lang) for lang in LANGS})

    # 7. Planning prompts.
    if report.innovation:
        b.add("market_dialogue_requested")
    elif national:
        b.add("market_dialogue_consider")
    if reportable:
        members = len(report.faggruppe)
        if members:
            b.add("faggruppe_proposed", members=_both(_members_text, members))
        else:
            b.add("faggruppe_missing")
        if affects_staff(report):
            b.add("staff_representatives")

    return Assessment(on=on, value=value, category=report.category, consequences=tuple(b.out),
                      thresholds=th.amounts())
