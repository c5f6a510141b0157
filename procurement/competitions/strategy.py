"""The draft konkurransestrategi: its content from a needs report, and the .docx from a Word template.

`build_strategy(report, competition_ref=…, today=…)` gathers what the strategy must say
(Anskaffelsesstrategien Delmål 1, tiltak 1): the need, value and its basis, every rule
consequence with its source (the assessment stored with the report), the suggested procedure
for the value band, lots and SMB access, climate and environment, wage and apprentice
requirements, market dialogue and innovation, risks, the timeline back from the wished start,
and the faggruppe. It is pure; texts are in the content's language (nb or en).

`render_strategy_docx(content)` fills a docxtpl template (`templates/konkurransestrategi.docx`,
or the municipality's own edited copy) and returns the document's bytes.

Values are data, never template: Jinja renders the template once and never evaluates a
value, and every value reaches the XML already escaped (`_xml_text`): `& < > " '` as entities,
`{` and `}` as character references (docxtpl rewrites `{_{` to `{{` in its output, which would
otherwise alter a value), characters XML 1.0 cannot hold removed, line breaks kept (docxtpl
turns them into Word line breaks). The template runs in Jinja's sandbox with StrictUndefined,
so an edited template cannot reach Python internals and a misspelt field fails loudly
(`StrategyTemplateError`) instead of leaving a blank in a legal document.
"""

from __future__ import annotations

import dataclasses
import io
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from docx.opc.exceptions import PackageNotFoundError
from docxtpl import DocxTemplate
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from lxml import etree
from markupsafe import Markup

from procurement.competitions.procedure import Procedure, ProcedureRules, suggest_procedure
from procurement.competitions.timeline import plan_timeline
from procurement.needs.assessment import NeedsReportFacts, assess
from procurement.needs.record import NeedsReport
from procurement.needs.rules import (
    _CATEGORY_NAMES,
    CLIMATE_MIN_WEIGHT,
    EEA_GOODS_SERVICES,
    EEA_WORKS,
    LANGS,
    NATIONAL,
    REPORT_REQUIRED,
    RuleSet,
    ThresholdEntry,
    default_rules,
)
from procurement.shared.dates import format_date
from procurement.shared.money import format_nok

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAMES = {"nb": "konkurransestrategi.docx", "en": "konkurransestrategi.en.docx"}
DOCUMENT_NAME = {"nb": "Konkurransestrategi {ref} (utkast).docx", "en": "Competition strategy {ref} (draft).docx"}

_SEVERITY = {
    "required": {"nb": "Påkrevd", "en": "Required"},
    "warning": {"nb": "Advarsel", "en": "Warning"},
    "info": {"nb": "Til vurdering", "en": "To consider"},
}
_AGREEMENT = {
    "framework": {"nb": "Rammeavtale", "en": "Framework agreement"},
    "single": {"nb": "Enkeltkontrakt", "en": "Single contract"},
}
_YES_NO = {True: {"nb": "Ja", "en": "Yes"}, False: {"nb": "Nei", "en": "No"}}
_NOT_GIVEN = {"nb": "Ikke oppgitt", "en": "Not given"}
_REPORT_SOURCE = {"nb": "Behovsmeldingen", "en": "The needs report"}


class StrategyError(ValueError):
    """The report lacks what a strategy needs (a value, a category, a start date)."""


class StrategyTemplateError(ValueError):
    """The Word template cannot be rendered (a misspelt field, a broken tag, not a .docx)."""


# -- content -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One statement in the strategy, with where it comes from (a rule, the report …)."""

    text: str
    source: str = ""
    severity: str = ""


@dataclass(frozen=True)
class Fact:
    label: str
    value: str


@dataclass(frozen=True)
class NeedSection:
    title: str
    description: str
    facts: tuple[Fact, ...]


@dataclass(frozen=True)
class ValueSection:
    amount: str
    basis: str
    position: str


@dataclass(frozen=True)
class ProcedureSection:
    part: str
    summary: str
    announce: str
    options: tuple[Point, ...]
    suggested: str
    source: str
    advice: str


@dataclass(frozen=True)
class TimelineRow:
    milestone: str
    date: str
    note: str


@dataclass(frozen=True)
class TimelineSection:
    feasible: bool
    message: str
    rows: tuple[TimelineRow, ...]


@dataclass(frozen=True)
class FaggruppeSection:
    members: tuple[str, ...]
    contact: str
    notes: tuple[Point, ...]


@dataclass(frozen=True)
class StrategyContent:
    """Everything the template can show, as display text in `lang` (see docs/strategy-template.md)."""

    lang: str
    competition_ref: str
    needs_ref: str
    generated: str
    draft_notice: str
    need: NeedSection
    value: ValueSection
    consequences: tuple[Point, ...]
    procedure: ProcedureSection
    lots: tuple[Point, ...]
    climate: tuple[Point, ...]
    labour: tuple[Point, ...]
    dialogue: tuple[Point, ...]
    risks: tuple[Point, ...]
    timeline: TimelineSection
    faggruppe: FaggruppeSection
    document_name: str = field(default="")


def _lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; expected one of {LANGS}")
    return lang


def _str(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _start_date(data: Mapping[str, Any]) -> date:
    raw = data.get("start_date")
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw))
    except ValueError as exc:
        raise StrategyError(f"the needs report has no valid start date ({raw!r})") from exc


def _months(n: int, lang: str) -> str:
    if lang == "nb":
        return "1 måned" if n == 1 else f"{n} måneder"
    return "1 month" if n == 1 else f"{n} months"


def _consequences(report: NeedsReport, rules: RuleSet) -> list[Mapping[str, Any]]:
    """The consequences the approver saw (stored at submission); assessed afresh only if missing."""
    stored = report.assessment.get("consequences") if isinstance(report.assessment, Mapping) else None
    if isinstance(stored, list) and stored:
        return [c for c in stored if isinstance(c, Mapping) and isinstance(c.get("text"), Mapping)]
    data = report.data
    facts = NeedsReportFacts(
        estimated_value=report.estimated_value,
        category=report.category,
        title=report.title,
        need=_str(data.get("need")),
        cpv=_str(data.get("cpv")) or None,
        risk_notes=_str(data.get("risk_notes")),
        duration_months=_int(data.get("duration_months")),
        option_months=_int(data.get("option_months")),
        innovation=bool(data.get("innovation")),
        agreement_type=_str(data.get("agreement_type")) or "single",
        service_area=report.service_area,
        faggruppe=tuple(str(m) for m in data.get("faggruppe") or () if isinstance(m, str)),
    )
    return [c.to_dict() for c in assess(facts, report.created_at.date(), rules=rules)]


def _point(c: Mapping[str, Any], lang: str) -> Point:
    text = c.get("text") or {}
    severity = str(c.get("severity") or "")
    return Point(
        text=str(text.get(lang) or text.get("nb") or ""),
        source=str(c.get("source") or ""),
        severity=_SEVERITY.get(severity, {}).get(lang, ""),
    )


_THRESHOLD_NAMES = {
    REPORT_REQUIRED: {"nb": "regelverkets nedre grense", "en": "the rules' lower limit"},
    NATIONAL: {"nb": "nasjonal terskelverdi", "en": "the national threshold"},
    EEA_GOODS_SERVICES: {"nb": "EØS-terskelverdien", "en": "the EEA threshold"},
    EEA_WORKS: {"nb": "EØS-terskelverdien", "en": "the EEA threshold"},
}


def _value_position(procedure: Procedure, lang: str) -> str:
    """ "Verdien 1 500 000 kr er på eller over nasjonal terskelverdi (1 300 000 kr) og under …: Del II."."""
    nb = lang == "nb"

    def named(entry: ThresholdEntry) -> str:
        name = _THRESHOLD_NAMES.get(entry.id, {}).get(lang, "")
        amount = format_nok(entry.amount, lang)
        return f"{name} ({amount})" if name else amount

    parts = []
    if procedure.lower is not None:
        parts.append(("på eller over " if nb else "at or above ") + named(procedure.lower))
    if procedure.upper is not None:
        parts.append(("under " if nb else "below ") + named(procedure.upper))
    where = (" og " if nb else " and ").join(parts)
    value = format_nok(procedure.value, lang)
    if nb:
        return f"Verdien {value} er {where}: {procedure.part['nb']}."
    return f"The value {value} is {where}: {procedure.part['en']}."


def build_strategy(
    report: NeedsReport,
    *,
    competition_ref: str,
    today: date,
    lang: str = "nb",
    rules: RuleSet | None = None,
    procedures: ProcedureRules | None = None,
    period_overrides: Mapping[str, int] | None = None,
    service_area_label: str | None = None,
    faggruppe: Sequence[str] | None = None,
    electronic: bool = True,
) -> StrategyContent:
    """The draft strategy for an approved needs report.

    `service_area_label`: the service area's display name (the catalogs live at the edge; the
    code is shown without it). `faggruppe`: members' display names when the caller resolved the
    report's entries (people-picker ids) through the directory; the report's entries otherwise.
    `electronic`: tenders arrive through KGV (shortens Part III's tender period)."""
    lang = _lang(lang)
    rules = rules or default_rules()
    data = report.data if isinstance(report.data, Mapping) else {}
    if report.category not in _CATEGORY_NAMES:
        raise StrategyError(f"the needs report has an unknown category ({report.category!r})")
    wished = _start_date(data)
    procedure = suggest_procedure(
        report.estimated_value, report.category, today, rules=rules, procedures=procedures, overrides=period_overrides
    )
    timeline = plan_timeline(wished, procedure, today, electronic=electronic)
    raw = _consequences(report, rules)
    points = [(str(c.get("code") or ""), _point(c, lang)) for c in raw]

    def by_code(*codes: str) -> list[Point]:
        return [p for code, p in points if code in codes]

    nb = lang == "nb"
    duration = _int(data.get("duration_months"))
    options = _int(data.get("option_months"))
    cpv = _str(data.get("cpv"))
    replaces = _str(data.get("replaces_contract"))
    agreement = _AGREEMENT.get(_str(data.get("agreement_type")), {}).get(lang, _NOT_GIVEN[lang])
    facts = (
        Fact("Behovsmelding" if nb else "Needs report", report.ref),
        Fact("Konkurranse" if nb else "Competition", competition_ref),
        Fact("Tjenesteområde" if nb else "Service area", service_area_label or report.service_area),
        Fact("Meldt av" if nb else "Reported by", report.submitter_name),
        Fact("Kategori" if nb else "Category", _CATEGORY_NAMES[report.category][lang]),
        Fact("CPV-kode" if nb else "CPV code", cpv or _NOT_GIVEN[lang]),
        Fact("Avtaletype" if nb else "Agreement type", agreement),
        Fact("Ønsket oppstart" if nb else "Wished start", format_date(wished)),
        Fact("Varighet" if nb else "Duration", _months(duration, lang)),
        Fact("Opsjoner" if nb else "Options", _months(options, lang) if options else ("Ingen" if nb else "None")),
        Fact("Erstatter avtale" if nb else "Replaces contract", replaces or ("Ingen" if nb else "None")),
        Fact("Budsjett forankret" if nb else "Budget secured", _YES_NO[bool(data.get("budget_secured"))][lang]),
    )
    need = NeedSection(title=report.title, description=_str(data.get("need")), facts=facts)
    value = ValueSection(
        amount=format_nok(report.estimated_value, lang),
        basis=_str(data.get("value_basis")) or _NOT_GIVEN[lang],
        position=_value_position(procedure, lang),
    )

    recommended = procedure.recommended or procedure.options[:1]
    proc = ProcedureSection(
        part=procedure.part[lang],
        summary=procedure.summary[lang],
        announce=procedure.announce[lang],
        options=tuple(
            Point(
                f"{o.name[lang]}: {o.note[lang]}",
                severity=("Foreslått" if nb else "Suggested") if o.recommended else "",
            )
            for o in procedure.options
        ),
        suggested=", ".join(o.name[lang] for o in recommended),
        source=procedure.source,
        advice=procedure.advice[lang],
    )

    strategy_source = "Anskaffelsesstrategien Delmål 1, tiltak 3"
    lots = by_code("lots") or [
        Point(
            "Vurder om kontrakten kan deles opp, eller om kravene kan tilpasses, slik at små og lokale "
            "leverandører kan gi tilbud."
            if nb
            else "Consider whether the contract can be divided, or the requirements adapted, so that small and "
            "local suppliers can bid.",
            strategy_source,
        )
    ]

    climate = by_code("climate_weight", "fossil_vehicles")
    if not by_code("climate_weight"):
        weight = rules.thresholds_on(today).amount(CLIMATE_MIN_WEIGHT)
        climate.insert(
            0,
            Point(
                "Kravet om å vekte klima og miljø"
                + (f" med minst {weight} %" if weight is not None else "")
                + " gjelder fra nasjonal terskelverdi. Still likevel klima- og miljøkrav der det er relevant."
                if nb
                else "The requirement to weight climate and environment"
                + (f" at least {weight} %" if weight is not None else "")
                + " applies from the national threshold. Still set climate and environmental requirements where "
                "relevant.",
                "anskaffelsesforskriften § 7-9 / anskaffelsesloven § 5",
            ),
        )

    labour = by_code("wage_conditions", "serious_employer", "apprentices") or [
        Point(
            "Ingen særskilte krav til lønns- og arbeidsvilkår eller lærlinger etter kategori og verdi."
            if nb
            else "No particular wage, working-condition or apprentice requirements for this category and value.",
            "Forskrift om lønns- og arbeidsvilkår i offentlige kontrakter / anskaffelsesforskriften § 7-8",
        )
    ]

    innovation = bool(data.get("innovation"))
    dialogue = [
        Point(
            (
                "Markedsdialog eller innovasjon ønsket i behovsmeldingen: "
                if nb
                else "Market dialogue or innovation wanted in the needs report: "
            )
            + _YES_NO[innovation][lang]
            + ".",
            _REPORT_SOURCE[lang],
        ),
        *by_code("market_dialogue"),
    ]

    risks: list[Point] = []
    risk_notes = _str(data.get("risk_notes"))
    if risk_notes:
        risks.append(Point(risk_notes, _REPORT_SOURCE[lang]))
    if not data.get("budget_secured"):
        risks.append(
            Point(
                "Budsjettet er ikke oppgitt som forankret. Avklar finansieringen før konkurransen kunngjøres."
                if nb
                else "The budget is not stated as secured. Settle the funding before the competition is announced.",
                _REPORT_SOURCE[lang],
            )
        )
    if not timeline.feasible:
        risks.append(Point(timeline.message[lang], ("Tidsplanen" if nb else "The timeline")))
    risks.extend(p for code, p in points if code in ("framework_agreement", "fossil_vehicles"))
    if not risks:
        risks.append(Point("Ingen risiko er meldt ennå." if nb else "No risks reported yet.", _REPORT_SOURCE[lang]))

    members = tuple(m for m in (faggruppe if faggruppe is not None else data.get("faggruppe") or ()) if m)
    team = FaggruppeSection(
        members=tuple(str(m) for m in members),
        contact=report.submitter_name,
        notes=tuple(by_code("faggruppe", "staff_representatives")),
    )

    rows = tuple(TimelineRow(m.label[lang], m.date_text, m.note[lang]) for m in timeline.milestones)
    notice = (
        f"Utkast laget {format_date(today)} fra behovsmelding {report.ref}. Forslagene er råd til innkjøperen: "
        "gå gjennom, juster og godkjenn strategien sammen med faggruppen."
        if nb
        else f"Draft made {format_date(today)} from needs report {report.ref}. The suggestions are advice for the "
        "procurement officer: review, adjust and approve the strategy with the expert group."
    )
    return StrategyContent(
        lang=lang,
        competition_ref=competition_ref,
        needs_ref=report.ref,
        generated=format_date(today),
        draft_notice=notice,
        need=need,
        value=value,
        consequences=tuple(p for _code, p in points),
        procedure=proc,
        lots=tuple(lots),
        climate=tuple(climate),
        labour=tuple(labour),
        dialogue=tuple(dialogue),
        risks=tuple(risks),
        timeline=TimelineSection(timeline.feasible, timeline.message[lang], rows),
        faggruppe=team,
        document_name=document_name(competition_ref, lang),
    )


def document_name(competition_ref: str, lang: str = "nb") -> str:
    """The file name in folder 01: "Konkurransestrategi K-2026-0001 (utkast).docx"."""
    return DOCUMENT_NAME[_lang(lang)].format(ref=competition_ref)


# -- rendering ------------------------------------------------------------------------------------

# Characters XML 1.0 cannot hold (C0 controls but tab and line breaks, lone surrogates,
# U+FFFE/U+FFFF). docxtpl would also read \a and \f in a value as "new paragraph" and "page
# break"; they are controls and go with the rest.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "{": "&#123;", "}": "&#125;"}
)


def clean_for_xml(text: str) -> str:
    """The text as a Word document can hold it: line breaks normalised, unstorable characters removed."""
    return _NOT_XML.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _xml_text(text: str) -> Markup:
    return Markup(clean_for_xml(text).translate(_ESCAPES))


def _safe(value: Any) -> Any:
    """The content as template data: every string escaped for XML (see the module docstring)."""
    if isinstance(value, str):
        return _xml_text(value)
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return _xml_text(str(value))


def template_context(content: StrategyContent) -> dict[str, Any]:
    """The names a template can use (documented in docs/strategy-template.md), escaped."""
    context = _safe(dataclasses.asdict(content))
    assert isinstance(context, dict)
    return context


class _StrictDocxTemplate(DocxTemplate):
    """docxtpl parses the rendered body with lxml's `recover=True`, which would silently drop
    content from malformed XML. Parse strictly first: a document that is not well-formed is an
    error, never a quietly shortened strategy."""

    def fix_tables(self, xml: str) -> Any:
        try:
            etree.fromstring(xml.encode("utf-8"))
        except etree.XMLSyntaxError as exc:
            raise StrategyTemplateError(f"the rendered document is not well-formed XML: {exc}") from exc
        return super().fix_tables(xml)


def template_path(lang: str = "nb") -> Path:
    return TEMPLATES_DIR / TEMPLATE_NAMES[_lang(lang)]


def render_strategy_docx(content: StrategyContent, template: str | Path | bytes | None = None) -> bytes:
    """The strategy as a .docx, from `template` (a path or the file's bytes; default the shipped one)."""
    if template is None:
        source: Any = template_path(content.lang)
    elif isinstance(template, bytes):
        source = io.BytesIO(template)
    else:
        source = Path(template)
    env = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
    try:
        doc = _StrictDocxTemplate(source)
        doc.render(template_context(content), jinja_env=env, autoescape=True)
        props = doc.docx.core_properties
        props.title = clean_for_xml(f"{content.document_name.removesuffix('.docx')} – {content.need.title}")[:250]
        props.subject = clean_for_xml(content.need.title)[:250]
        props.identifier = clean_for_xml(content.competition_ref)[:250]
        props.language = "nb-NO" if content.lang == "nb" else "en-GB"
        out = io.BytesIO()
        doc.save(out)
    except StrategyTemplateError:
        raise
    except TemplateError as exc:
        raise StrategyTemplateError(f"the strategy template cannot be rendered: {exc}") from exc
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, PackageNotFoundError) as exc:  # not a .docx …
        raise StrategyTemplateError(f"the strategy template cannot be read: {exc}") from exc
    return out.getvalue()


def render_for(content: StrategyContent) -> tuple[str, bytes]:
    """(file name, bytes) for the upload to folder 01."""
    return content.document_name, render_strategy_docx(content)
