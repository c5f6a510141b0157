"""Assessing a needs report against the rules: the consequences, in order, in nb and en.

`assess(facts, today, agreements, rules=…)` is pure; the figures and texts come from the
dated rule data (`rules.py`, `rules_data/thresholds.json`). The order of the consequences
is described in `rules.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from procurement.needs.rules import (
    _CATEGORY_NAMES,
    _EEA_GROUP_NAMES,
    _MONTHS_EN,
    APPRENTICE_MIN_MONTHS,
    APPRENTICE_MIN_SHARE,
    CATEGORIES,
    CLIMATE_MIN_WEIGHT,
    EEA_GOODS_SERVICES,
    EEA_WORKS,
    KGV,
    LANGS,
    MAX_AGREEMENTS_LISTED,
    NATIONAL,
    REPORT_REQUIRED,
    RuleSet,
    default_rules,
)
from procurement.shared.money import format_nok

# -- input and output --------------------------------------------------------------------


_CPV_LEVELS = {
    "division": ("CPV-divisjon", "CPV division"),
    "group": ("CPV-gruppe", "CPV group"),
    "class": ("CPV-klasse", "CPV class"),
    "category": ("CPV-kategori", "CPV category"),
}


@dataclass(frozen=True)
class CoverReason:
    """One reason an agreement plausibly covers a report (found by `procurement.needs.agreements`).

    `kind` "cpv": the report's and the agreement's CPV codes share `code` (the digits that
    matter, e.g. "3019") at `level`; `name_nb`/`name_en` name it when the CPV data knows it.
    "title": the titles are alike. "words": the agreement's title or scope has `words`."""

    kind: str  # "cpv" | "title" | "words"
    code: str = ""
    level: str = ""
    name_nb: str = ""
    name_en: str = ""
    words: tuple[str, ...] = ()

    def text(self, lang: str) -> str:
        nb = lang == "nb"
        if self.kind == "cpv":
            level = _CPV_LEVELS.get(self.level, ("CPV-kode", "CPV code"))[0 if nb else 1]
            name = self.name_nb if nb else self.name_en
            return f"{'samme' if nb else 'same'} {level} {self.code}" + (f" {name}" if name else "")
        if self.kind == "title":
            return "tittelen ligner" if nb else "the title is similar"
        shown = ", ".join((f"«{w}»" if nb else f"“{w}”") for w in self.words[:3])
        return f"avtalen nevner {shown}" if nb else f"the agreement mentions {shown}"


@dataclass(frozen=True)
class FrameworkAgreementHit:
    """A framework agreement that plausibly covers the report, with the reasons why.

    Found by `procurement.needs.agreements.match_agreements`; `strength` orders several
    (the higher, the better the match). A hit without reasons covers nothing."""

    contract_ref: str
    title: str
    supplier: str
    category: str
    end_date: date | None = None
    reasons: tuple[CoverReason, ...] = ()
    strength: int = 0


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
        part = f"{title} ({', '.join(bits)})" if bits else title
        why = [r.text(lang) for r in hit.reasons]
        if why:
            joined = ", ".join(why[:-1]) + (" og " if lang == "nb" else " and ") + why[-1] if len(why) > 1 else why[0]
            part += f": {joined}"
        parts.append(part)
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
    """The hits that say why they cover the report and are still in force on `on`, best first.

    Never the category alone: a hit without reasons (the matcher found nothing the report
    and the agreement share) is dropped."""
    found = [a for a in agreements if a.reasons and (a.end_date is None or a.end_date >= on)]
    return sorted(found, key=lambda a: -a.strength)


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
    for name, tid in (("report_required", REPORT_REQUIRED), ("kgv", KGV), ("national", NATIONAL), ("eea", eea_id)):
        amount = th.amount(tid)
        if amount is not None:
            values[name] = _both(format_nok, amount)
    for name, tid in (
        ("climate_weight", CLIMATE_MIN_WEIGHT),
        ("apprentice_months", APPRENTICE_MIN_MONTHS),
        ("apprentice_share", APPRENTICE_MIN_SHARE),
    ):
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
    if report.category in ("services", "works") and eea and min_months is not None and report.total_months > min_months:
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

    return Assessment(on=on, value=value, category=report.category, consequences=tuple(b.out), thresholds=th.amounts())


# -- what the sender reads first ---------------------------------------------------------------

#: Consequence codes that change what the *sender* must do, most decisive first. The submit
#: receipt leads with the first `LEAD_LIMIT` of these that apply and folds the rest behind
#: "Vis alle regler" (the intake card for innkjøpere shows them all). Codes not listed
#: (run_by_procurement, competition_strategy, climate_weight, lots, market_dialogue,
#: faggruppe, staff_representatives) describe work Innkjøpsseksjonen leads with the unit;
#: they only lead when too few listed ones apply (see `lead_indices`).
LEAD_PRIORITY: tuple[str, ...] = (
    "framework_agreement",  # order on the agreement in eHandel instead; the report may be withdrawn
    "below_reporting_threshold",  # no report needed: the unit buys itself
    "fossil_vehicles",  # the solution itself must change (zero-emission) or be justified
    "ted",  # EEA threshold: stricter rules and longer deadlines, start earlier
    "doffin",  # must be announced: no direct purchase, plan for the competition's time
    "serious_employer",  # requirements the unit must accept before the announcement
    "wage_conditions",  # the unit must plan who checks wages during the contract
    "apprentices",  # the supplier must use apprentices: part of the requirements
    "kgv",  # tenders and suppliers' questions go through the KGV tool
)
LEAD_LIMIT = 3
LEAD_MIN = 2


def lead_indices(codes: Sequence[str | None], limit: int = LEAD_LIMIT) -> list[int]:
    """Positions (into `codes`, in the assessment's order) of the consequences to lead with.

    The applicable `LEAD_PRIORITY` codes, most decisive first, at most `limit`; when fewer
    than `LEAD_MIN` apply, topped up with the first others in assessment order, so a receipt
    never opens with a lone rule while more are folded away. With `limit` or fewer
    consequences in all, every one leads (nothing to fold). Works on stored assessments
    (codes only), so reports assessed before this order existed get the same treatment."""
    if len(codes) <= limit:
        return list(range(len(codes)))
    rank = {code: i for i, code in enumerate(LEAD_PRIORITY)}
    chosen = sorted((i for i, code in enumerate(codes) if code in rank), key=lambda i: (rank[codes[i] or ""], i))
    chosen = chosen[:limit]
    for i in range(len(codes)):
        if len(chosen) >= LEAD_MIN:
            break
        if i not in chosen:
            chosen.append(i)
    return chosen
