"""The procedure to suggest for a competition, from its value band (dated data, nb and en).

Which part of the anskaffelsesforskrift applies follows from the estimated value against the
thresholds of the needs rules (`procurement/needs/rules_data/thresholds.json`, read through
`procurement.needs.rules`); no threshold figure is repeated here. What each band says — the
part, where to announce, the procedures to suggest, the periods of the timeline — is dated
data in `rules_data/procedures.json`, so a change in the law or in the municipality's practice
is a new entry with a later `valid_from`.

Bands, compared with `>=` on whole kroner like the needs rules:

    value <  report_required          → "below" (the regulation does not apply)
    report_required ≤ value < national → Part I
    national ≤ value < EEA             → Part II  (the category's EEA threshold)
    EEA ≤ value                        → Part III

Periods: Part III's minimum periods (tenders, standstill) come from the regulation and may be
lengthened by configuration, never shortened; the other periods are the municipality's
defaults, which configuration (`overrides`) may change. Every suggestion is advice for the
innkjøper (`ProcedureRules.advice`).
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from procurement.needs.rules import (
    _EEA_GROUP_NAMES,
    CATEGORIES,
    EEA_GOODS_SERVICES,
    EEA_WORKS,
    KGV,
    LANGS,
    NATIONAL,
    REPORT_REQUIRED,
    RuleSet,
    ThresholdEntry,
    Thresholds,
    default_rules,
)
from procurement.shared.money import format_nok

DEFAULT_PROCEDURES_PATH = Path(__file__).resolve().parent / "rules_data" / "procedures.json"

BAND_IDS = ("below", "part_i", "part_ii", "part_iii")
# The phases of the timeline, in order (see timeline.py).
PERIOD_IDS = ("preparation", "publication", "tender", "evaluation", "standstill", "mobilisation")
# Optional: the tender period when tenders are received electronically (KGV).
OPTIONAL_PERIOD_IDS = ("tender_electronic",)
PERIOD_KINDS = ("minimum", "default")
PLACEHOLDERS = frozenset({"report_required", "kgv", "national", "eea", "eea_group"})


class ProcedureDataError(ValueError):
    """The procedure file or an override is missing, malformed or breaks a legal minimum."""


# -- data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """One phase's length in calendar days; `kind` says whether the law fixes it as a minimum."""

    id: str
    days: int
    kind: str
    source: str
    valid_from: date

    @property
    def is_minimum(self) -> bool:
        return self.kind == "minimum"


@dataclass(frozen=True)
class ProcedureOption:
    id: str
    name: Mapping[str, str]
    note: Mapping[str, str]
    recommended: bool


@dataclass(frozen=True)
class BandEntry:
    id: str
    valid_from: date
    source: str
    part: Mapping[str, str]
    summary: Mapping[str, str]
    announce: Mapping[str, str]
    procedures: tuple[ProcedureOption, ...]


@dataclass(frozen=True)
class ProcedureRules:
    bands: tuple[BandEntry, ...]
    periods: tuple[tuple[str, Period], ...]  # (band id, period)
    advice: Mapping[str, str]
    origin: str = ""

    def band_on(self, band: str, on: date) -> BandEntry:
        """The band's entry with the latest `valid_from` on or before `on`."""
        chosen = [b for b in self.bands if b.id == band and b.valid_from <= on]
        if not chosen:
            raise ProcedureDataError(f"{self.origin}: no entry for band {band!r} valid on {on.isoformat()}")
        return max(chosen, key=lambda b: b.valid_from)

    def periods_on(self, band: str, on: date) -> dict[str, Period]:
        """For each period id of `band`, the entry with the latest `valid_from` on or before `on`."""
        chosen: dict[str, Period] = {}
        for band_id, period in self.periods:
            if band_id == band and period.valid_from <= on:
                current = chosen.get(period.id)
                if current is None or period.valid_from > current.valid_from:
                    chosen[period.id] = period
        missing = [p for p in PERIOD_IDS if p not in chosen]
        if missing:
            raise ProcedureDataError(f"{self.origin}: band {band!r} has no {missing} valid on {on.isoformat()}")
        return chosen


def _texts(raw: object, where: str) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise ProcedureDataError(f"{where}: must be an object with 'nb' and 'en'")
    out: dict[str, str] = {}
    for lang in LANGS:
        value = raw.get(lang)
        if not isinstance(value, str) or not value.strip():
            raise ProcedureDataError(f"{where}: text in {lang!r} is required")
        try:
            parts = list(string.Formatter().parse(value))
        except ValueError as exc:
            raise ProcedureDataError(f"{where}.{lang}: malformed placeholder ({exc})") from exc
        for _literal, name, spec, conversion in parts:
            if name is not None and (name not in PLACEHOLDERS or spec or conversion):
                raise ProcedureDataError(
                    f"{where}.{lang}: unknown placeholder {{{name}}}; allowed {sorted(PLACEHOLDERS)}"
                )
        out[lang] = value
    return out


def _date(raw: object, where: str) -> date:
    if not isinstance(raw, str):
        raise ProcedureDataError(f"{where}: valid_from must be a yyyy-mm-dd string")
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ProcedureDataError(f"{where}: valid_from {raw!r} is not a yyyy-mm-dd date") from exc


def _source(raw: object, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ProcedureDataError(f"{where}: 'source' must say where it comes from")
    return raw


def procedures_from_dict(data: Mapping[str, Any], origin: str = "") -> ProcedureRules:
    """Build and check the procedure rules from the JSON structure (rules_data/procedures.json)."""
    if not isinstance(data, Mapping):
        raise ProcedureDataError(f"{origin}: the procedure file must hold a JSON object")
    bands: list[BandEntry] = []
    raw_bands = data.get("bands")
    if not isinstance(raw_bands, list) or not raw_bands:
        raise ProcedureDataError(f"{origin}: 'bands' must be a non-empty list")
    seen: set[tuple[str, date]] = set()
    for i, raw in enumerate(raw_bands):
        where = f"{origin} bands[{i}]"
        if not isinstance(raw, Mapping):
            raise ProcedureDataError(f"{where}: must be an object")
        band_id = raw.get("id")
        if band_id not in BAND_IDS:
            raise ProcedureDataError(f"{where}: 'id' must be one of {BAND_IDS}")
        valid_from = _date(raw.get("valid_from"), where)
        if (band_id, valid_from) in seen:
            raise ProcedureDataError(f"{where}: two entries for {band_id!r} from {valid_from}")
        seen.add((band_id, valid_from))
        raw_options = raw.get("procedures")
        if not isinstance(raw_options, list) or not raw_options:
            raise ProcedureDataError(f"{where}: 'procedures' must be a non-empty list")
        options: list[ProcedureOption] = []
        for j, opt in enumerate(raw_options):
            owhere = f"{where}.procedures[{j}]"
            if not isinstance(opt, Mapping) or not isinstance(opt.get("id"), str) or not opt.get("id"):
                raise ProcedureDataError(f"{owhere}: must be an object with an 'id'")
            recommended = opt.get("recommended", False)
            if not isinstance(recommended, bool):
                raise ProcedureDataError(f"{owhere}: 'recommended' must be true or false")
            options.append(
                ProcedureOption(
                    str(opt["id"]),
                    _texts(opt.get("name"), f"{owhere}.name"),
                    _texts(opt.get("note"), f"{owhere}.note"),
                    recommended,
                )
            )
        bands.append(
            BandEntry(
                id=str(band_id),
                valid_from=valid_from,
                source=_source(raw.get("source"), where),
                part=_texts(raw.get("part"), f"{where}.part"),
                summary=_texts(raw.get("summary"), f"{where}.summary"),
                announce=_texts(raw.get("announce"), f"{where}.announce"),
                procedures=tuple(options),
            )
        )
    missing_bands = set(BAND_IDS) - {b.id for b in bands}
    if missing_bands:
        raise ProcedureDataError(f"{origin}: no entry for bands {sorted(missing_bands)}")

    periods: list[tuple[str, Period]] = []
    raw_periods = data.get("periods")
    if not isinstance(raw_periods, list):
        raise ProcedureDataError(f"{origin}: 'periods' must be a list")
    seen_periods: set[tuple[str, str, date]] = set()
    for i, raw in enumerate(raw_periods):
        where = f"{origin} periods[{i}]"
        if not isinstance(raw, Mapping):
            raise ProcedureDataError(f"{where}: must be an object")
        band_id, period_id, days, kind = raw.get("band"), raw.get("id"), raw.get("days"), raw.get("kind")
        if band_id not in BAND_IDS:
            raise ProcedureDataError(f"{where}: 'band' must be one of {BAND_IDS}")
        if period_id not in PERIOD_IDS + OPTIONAL_PERIOD_IDS:
            raise ProcedureDataError(f"{where}: 'id' must be one of {PERIOD_IDS + OPTIONAL_PERIOD_IDS}")
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 730:
            raise ProcedureDataError(f"{where}: 'days' must be a whole number from 0 to 730")
        if kind not in PERIOD_KINDS:
            raise ProcedureDataError(f"{where}: 'kind' must be one of {PERIOD_KINDS}")
        valid_from = _date(raw.get("valid_from"), where)
        key = (str(band_id), str(period_id), valid_from)
        if key in seen_periods:
            raise ProcedureDataError(f"{where}: two entries for {band_id}.{period_id} from {valid_from}")
        seen_periods.add(key)
        periods.append(
            (str(band_id), Period(str(period_id), days, str(kind), _source(raw.get("source"), where), valid_from))
        )
    rules = ProcedureRules(tuple(bands), tuple(periods), _texts(data.get("advice"), f"{origin} advice"), origin)
    # Every band must have every phase from its first entry on, or a timeline cannot be drawn.
    for band in BAND_IDS:
        rules.periods_on(band, min(b.valid_from for b in bands if b.id == band))
    return rules


def load_procedures(path: str | Path | None = None) -> ProcedureRules:
    """Read and check a procedure file; by default the one shipped in `rules_data/`."""
    file = Path(path) if path is not None else DEFAULT_PROCEDURES_PATH
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProcedureDataError(f"cannot read procedure file {file}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ProcedureDataError(f"procedure file {file} is not valid JSON: {exc}") from exc
    return procedures_from_dict(data, origin=str(file))


@lru_cache(maxsize=1)
def default_procedures() -> ProcedureRules:
    """The shipped procedure file, read once (it is immutable data)."""
    return load_procedures()


# -- the suggestion ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Procedure:
    """The suggested procedure for one value on one date; texts in nb and en, placeholders filled."""

    band: str
    on: date
    value: int
    category: str
    part: Mapping[str, str]
    summary: Mapping[str, str]
    announce: Mapping[str, str]
    options: tuple[ProcedureOption, ...]
    periods: Mapping[str, Period]
    source: str
    advice: Mapping[str, str]
    lower: ThresholdEntry | None  # the threshold the value reached (None below all)
    upper: ThresholdEntry | None  # the next threshold up (None in Part III)

    @property
    def recommended(self) -> tuple[ProcedureOption, ...]:
        return tuple(o for o in self.options if o.recommended)

    def tender_period(self, electronic: bool = True) -> Period:
        """The tender period: the shorter electronic one when tenders arrive through KGV."""
        if electronic and "tender_electronic" in self.periods:
            return self.periods["tender_electronic"]
        return self.periods["tender"]


def eea_threshold_id(category: str) -> str:
    return EEA_WORKS if category == "works" else EEA_GOODS_SERVICES


def band_for(value: int, category: str, thresholds: Thresholds) -> str:
    """The band of `value` (whole NOK excl. VAT incl. options) among the thresholds in force."""

    def reached(tid: str) -> bool:
        amount = thresholds.amount(tid)
        return amount is not None and value >= amount

    if reached(eea_threshold_id(category)):
        return "part_iii"
    if reached(NATIONAL):
        return "part_ii"
    # Before the reporting limit existed (no entry on the date) everything counts as Part I.
    if reached(REPORT_REQUIRED) or thresholds.amount(REPORT_REQUIRED) is None:
        return "part_i"
    return "below"


class _Fill(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "–"


def _apply_overrides(band: str, periods: dict[str, Period], overrides: Mapping[str, int] | None) -> dict[str, Period]:
    """Configuration (`"part_ii.tender": 28`) changes a default and may lengthen a legal minimum,
    never shorten it: a minimum shortened by configuration would make the timeline unlawful."""
    if not overrides:
        return periods
    out = dict(periods)
    for key, days in overrides.items():
        band_id, _, period_id = key.partition(".")
        if band_id not in BAND_IDS or period_id not in PERIOD_IDS + OPTIONAL_PERIOD_IDS:
            raise ProcedureDataError(f"override {key!r}: expected '<band>.<period>', band in {BAND_IDS}")
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 730:
            raise ProcedureDataError(f"override {key!r}: days must be a whole number from 0 to 730")
        if band_id != band or period_id not in out:
            continue
        current = out[period_id]
        if current.is_minimum and days < current.days:
            raise ProcedureDataError(
                f"override {key!r}: {days} days is shorter than the legal minimum of {current.days} ({current.source})"
            )
        source = current.source if current.is_minimum else "Kommunens konfigurasjon"
        out[period_id] = Period(period_id, days, current.kind, source, current.valid_from)
    return out


def suggest_procedure(
    value: int,
    category: str,
    on: date,
    *,
    rules: RuleSet | None = None,
    procedures: ProcedureRules | None = None,
    overrides: Mapping[str, int] | None = None,
) -> Procedure:
    """The procedure to suggest for a competition of `value` in `category` under the rules on `on`."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")
    if value < 0:
        raise ValueError("value must not be negative")
    rules = rules or default_rules()
    procedures = procedures or default_procedures()
    th = rules.thresholds_on(on)
    band = band_for(value, category, th)
    entry = procedures.band_on(band, on)
    periods = _apply_overrides(band, procedures.periods_on(band, on), overrides)

    eea_id = eea_threshold_id(category)
    fill = {lang: _Fill() for lang in LANGS}
    for name, tid in (("report_required", REPORT_REQUIRED), ("kgv", KGV), ("national", NATIONAL), ("eea", eea_id)):
        amount = th.amount(tid)
        if amount is not None:
            for lang in LANGS:
                fill[lang][name] = format_nok(amount, lang)
    for lang in LANGS:
        fill[lang]["eea_group"] = _EEA_GROUP_NAMES[eea_id][lang]

    def filled(texts: Mapping[str, str]) -> dict[str, str]:
        return {lang: texts[lang].format_map(fill[lang]) for lang in LANGS}

    ladder = [tid for tid in (REPORT_REQUIRED, NATIONAL, eea_id) if tid in th]
    lower_id = {"below": None, "part_i": REPORT_REQUIRED, "part_ii": NATIONAL, "part_iii": eea_id}[band]
    lower = th.get(lower_id) if lower_id else None
    above = [tid for tid in ladder if th[tid].amount > value]
    upper = th[above[0]] if above else None
    return Procedure(
        band=band,
        on=on,
        value=value,
        category=category,
        part=dict(entry.part),
        summary=filled(entry.summary),
        announce=filled(entry.announce),
        options=entry.procedures,
        periods=periods,
        source=entry.source,
        advice=dict(procedures.advice),
        lower=lower,
        upper=upper,
    )
