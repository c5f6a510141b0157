"""What the rules say about a needs report: thresholds as dated data, consequences in nb/en.

The figures (100 000, 500 000, national and EEA thresholds, the 30 % climate weight, the
10 % apprentice share …) are not constants in this module: they live in
`rules_data/thresholds.json`, each with the date it applies from and its source, so a
change in the law is a new data entry with a later `valid_from`, not a code change. The
consequence texts live in the same file.

`assess` returns an ordered list of consequences:

1. framework agreements in force that plausibly cover the report (avtalelojalitet) — first;
   found by CPV codes and words, never by the category (`agreements.py`);
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
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

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

PLACEHOLDERS = frozenset(
    {
        "value",
        "report_required",
        "kgv",
        "national",
        "eea",
        "eea_group",
        "category",
        "climate_weight",
        "apprentice_months",
        "apprentice_share",
        "agreements",
        "reason",
        "members",
    }
)
TEMPLATE_KEYS = frozenset(
    {
        "framework_agreement",
        "below_reporting_threshold",
        "run_by_procurement",
        "kgv",
        "kgv_mandatory",
        "doffin",
        "competition_strategy",
        "climate_weight",
        "ted",
        "lots_justify",
        "lots_suggest",
        "wage_conditions",
        "serious_employer_works",
        "serious_employer_cleaning",
        "apprentices_share",
        "apprentices_basic",
        "fossil_vehicles",
        "market_dialogue_requested",
        "market_dialogue_consider",
        "faggruppe_missing",
        "faggruppe_proposed",
        "staff_representatives",
    }
)

_CATEGORY_NAMES = {
    "goods": {"nb": "varer", "en": "goods"},
    "services": {"nb": "tjenester", "en": "services"},
    "works": {"nb": "bygg og anlegg", "en": "building and construction"},
}
_EEA_GROUP_NAMES = {
    EEA_GOODS_SERVICES: {"nb": "varer og tjenester", "en": "goods and services"},
    EEA_WORKS: {"nb": "bygg og anlegg", "en": "building and construction works"},
}
_MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
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
