"""Needs report (behovsmelding): the form, submit, summary, intake card and decisions."""

from __future__ import annotations

from datetime import date
from typing import Any

from cards.render import render_card
from cards.strings import text
from procurement.access import Actor
from procurement.needs.fields import LIMITS, NEEDS_REPORT_FIELDS, SERVICE_AREAS, echo_limit
from procurement.needs.record import NeedsReport
from procurement.shared.dates import format_date, format_datetime
from procurement.shared.money import format_nok

from . import home
from .base import Reply, as_text
from .services import Services

REQUIRED_FIELDS = frozenset(
    {"title", "need", "service_area", "estimated_value", "category", "agreement_type", "start_date", "duration_months"}
)
SEVERITY_STYLE = {"required": "accent", "warning": "warning", "info": "emphasis"}
STATUS_COLOR = {
    "submitted": "Default",
    "info_requested": "Warning",
    "approved": "Good",
    "rejected": "Attention",
    "withdrawn": "Default",
}


def _form_values(raw: dict[str, Any]) -> tuple[dict[str, str], dict[str, int | None]]:
    values = {key: as_text(raw.get(key), echo_limit(key)) for key in NEEDS_REPORT_FIELDS}
    if values["start_date"] and not _is_iso_date(values["start_date"]):
        values["start_date"] = ""
    numbers: dict[str, int | None] = {}
    for key in ("duration_months", "option_months"):
        try:
            numbers[key] = int(float(values[key])) if values[key].strip() else None
        except (ValueError, OverflowError):
            numbers[key] = None
    return values, numbers


def _is_iso_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
        return len(value) == 10
    except ValueError:
        return False


def form_card(
    s: Services,
    lang: str,
    raw: dict[str, Any] | None = None,
    errors: dict[str, dict[str, str]] | None = None,
    notice: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    values, numbers = _form_values(raw or {})
    field_errors = {k: v.get(lang) or v.get("nb", "") for k, v in (errors or {}).items()}
    # An error for a field that is not on the form still has to be seen.
    stray = [msg for key, msg in field_errors.items() if key not in NEEDS_REPORT_FIELDS]
    summary = text(lang, "nr_errors_summary", count=len(field_errors))
    if stray:
        summary = summary + " " + " ".join(stray)
    return render_card(
        "needs_report_form",
        lang,
        values=values,
        numbers=numbers,
        errors=field_errors,
        error_summary=summary,
        notice=notice,
        labels={k: text(lang, f"nr_label_{k}") + (" *" if k in REQUIRED_FIELDS else "") for k in NEEDS_REPORT_FIELDS},
        limits=LIMITS,
        service_areas=[{"value": v, "title": text(lang, f"service_area_{v}")} for v in SERVICE_AREAS],
        people_picker=s.people_picker,
        limits_hint=text(lang, "nr_limits_hint", **LIMITS),
        token=token,
    )


def _label(lang: str, key: str, value: str) -> str:
    return text(lang, f"{key}_{value}") if value else text(lang, "nr_none")


def _service_area(lang: str, value: str) -> str:
    return text(lang, f"service_area_{value}") if value in SERVICE_AREAS else value


def _facts(report: NeedsReport, lang: str, full: bool) -> list[dict[str, str]]:
    d = report.data
    yes_no = {True: text(lang, "yes"), False: text(lang, "no")}
    facts = [
        {"title": text(lang, "nr_fact_ref"), "value": report.ref},
        {"title": text(lang, "nr_fact_title"), "value": report.title},
        {"title": text(lang, "nr_fact_service_area"), "value": _service_area(lang, report.service_area)},
        {"title": text(lang, "nr_fact_value"), "value": format_nok(report.estimated_value, lang)},
        {"title": text(lang, "nr_fact_category"), "value": _label(lang, "nr_category", report.category)},
    ]
    if full:
        facts += [
            {"title": text(lang, "nr_fact_submitter"), "value": report.submitter_name or report.submitter_aad_id},
            {
                "title": text(lang, "nr_fact_agreement"),
                "value": _label(lang, "nr_agreement", str(d.get("agreement_type") or "")),
            },
            {"title": text(lang, "nr_fact_start"), "value": str(d.get("start_date") or "")},
            {
                "title": text(lang, "nr_fact_duration"),
                "value": text(
                    lang, "nr_fact_duration_value", months=d.get("duration_months"), options=d.get("option_months") or 0
                ),
            },
            {"title": text(lang, "nr_fact_budget"), "value": yes_no[bool(d.get("budget_secured"))]},
        ]
        for key, fact in (
            ("faggruppe", "nr_fact_faggruppe"),
            ("risk_notes", "nr_fact_risk"),
            ("replaces_contract", "nr_fact_replaces"),
        ):
            value = d.get(key)
            if isinstance(value, list):
                value = ", ".join(str(v) for v in value)
            if value:
                facts.append({"title": text(lang, fact), "value": str(value)})
    return facts


def _consequences(report: NeedsReport, lang: str) -> list[dict[str, Any]]:
    out = []
    for c in report.assessment.get("consequences", []):
        severity = c.get("severity", "info")
        out.append(
            {
                "label": text(lang, f"nr_sev_{severity}") if severity in SEVERITY_STYLE else severity,
                "style": SEVERITY_STYLE.get(severity, "default"),
                "text": (c.get("text") or {}).get(lang) or (c.get("text") or {}).get("nb", ""),
                "source": c.get("source") or "",
                "code": c.get("code"),
            }
        )
    return out


def summary_card(report: NeedsReport, lang: str, repeated: bool = False) -> dict[str, Any]:
    consequences = _consequences(report, lang)
    actions: list[dict[str, Any]] = []
    if report.status in ("submitted", "info_requested") and any(
        c["code"] == "framework_agreement" for c in consequences
    ):
        actions.append(
            {
                "title": text(lang, "nr_withdraw"),
                "verb": "needs_report.withdraw",
                "data": {"ref": report.ref},
                "style": "destructive",
            }
        )
    actions.append(
        {"title": text(lang, "action_my_needs_reports"), "verb": "needs_report.mine", "data": {}, "style": None}
    )
    heading = text(lang, "nr_summary_heading", ref=report.ref)
    intro = text(lang, "nr_summary_repeated", ref=report.ref) if repeated else text(lang, "nr_summary_intro")
    return render_card(
        "needs_report_summary",
        lang,
        heading=heading,
        intro=intro,
        facts=_facts(report, lang, full=False),
        consequences=consequences,
        actions=actions,
    )


def _when(report: NeedsReport) -> str:
    return format_datetime(report.decided_at) if report.decided_at else ""


def intake_card(
    report: NeedsReport, lang: str, notice: str | None = None, refresh_user_ids: tuple[str, ...] = ()
) -> dict[str, Any]:
    status = text(lang, f"nr_status_{report.status}")
    if report.decided_by_name and report.status not in ("submitted",):
        status_line = text(
            lang, "nr_status_line_decided", status=status, who=report.decided_by_name, when=_when(report)
        )
    else:
        status_line = text(lang, "nr_status_line_open", status=status)
    if report.competition_ref:
        status_line += " " + text(lang, "nr_status_line_competition", competition=report.competition_ref)
    if report.decision_note and report.status != "submitted":
        status_line += "\n\n" + text(
            lang, "nr_notify_note", who=report.decided_by_name or "", note=report.decision_note
        )
    return render_card(
        "needs_report_intake",
        lang,
        heading=text(lang, "nr_intake_heading", title=report.title),
        status_line=status_line,
        status_color=STATUS_COLOR.get(report.status, "Default"),
        facts=_facts(report, lang, full=True),
        need=str(report.data.get("need") or ""),
        consequences=_consequences(report, lang),
        open=report.status in ("submitted", "info_requested"),
        decision_note="",
        notice=notice,
        ref=report.ref,
        # Universal Actions: Teams fetches the current card for these viewers (max 60).
        refresh_user_ids=list(refresh_user_ids)[:60],
    )


def decision_notice_card(report: NeedsReport, lang: str) -> dict[str, Any]:
    status = text(lang, f"nr_status_{report.status}")
    body = text(lang, f"nr_notify_{report.status}", title=report.title, competition=report.competition_ref or "")
    if report.decision_note:
        body += "\n\n" + text(lang, "nr_notify_note", who=report.decided_by_name or "", note=report.decision_note)
    return render_card(
        "notice",
        lang,
        title=text(lang, "nr_notify_heading", ref=report.ref, status=status),
        body=body,
        actions=[{"title": text(lang, "action_my_needs_reports"), "verb": "needs_report.mine", "data": {}}],
    )


async def _refresh_ids(s: Services) -> tuple[str, ...]:
    return await s.people.teams_user_ids(s.procurement_user_ids)


# -- verbs --------------------------------------------------------------------------------


async def open_form(s: Services, actor: Actor, data: dict[str, Any], prefill: dict[str, Any] | None = None) -> Reply:
    notice = None
    values = prefill
    draft = await s.needs.draft(actor)  # also checks that the form may be shown here
    if values is None and draft:
        values, notice = draft, text(actor.lang, "nr_draft_loaded")
    return Reply(card=form_card(s, actor.lang, values, notice=notice))


async def submit(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    token = as_text(data.get("token"), 200)
    outcome = await s.needs.submit(actor, token, data, s.today())
    if outcome.errors or outcome.report is None:
        return Reply(card=form_card(s, actor.lang, data, errors=outcome.errors, token=token or None))
    return Reply(card=summary_card(outcome.report, actor.lang, repeated=outcome.repeated))


async def save_draft(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    saved = await s.needs.save_draft(actor, data)
    token = as_text(data.get("token"), 200) or None
    return Reply(card=form_card(s, actor.lang, saved, notice=text(actor.lang, "nr_draft_saved"), token=token))


async def mine(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    lang = actor.lang
    reports = await s.needs.mine(actor)
    items = [
        {
            "ref": r.ref,
            "title": r.title,
            "line": text(
                lang,
                "nr_list_line",
                status=text(lang, f"nr_status_{r.status}"),
                value=format_nok(r.estimated_value, lang),
                date=format_date(r.created_at),
            ),
        }
        for r in reports
    ]
    draft = await s.needs.draft(actor)
    draft_line = None
    if draft:
        draft_line = text(lang, "nr_list_draft", title=draft.get("title") or text(lang, "nr_untitled"))
    return Reply(card=render_card("needs_report_list", lang, items=items, draft_line=draft_line))


async def withdraw(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    ref = as_text(data.get("ref"), 40)
    outcome = await s.needs.withdraw(actor, ref)
    lang = actor.lang
    if not outcome.changed:
        status = text(lang, f"nr_status_{outcome.report.status}")
        return home.notice(lang, "nr_fact_status", text(lang, "nr_withdraw_too_late", ref=ref, status=status))
    return home.notice(lang, "nr_status_withdrawn", text(lang, "nr_withdrawn", ref=ref))


async def decide(s: Services, actor: Actor, data: dict[str, Any], decision: str) -> Reply:
    ref = as_text(data.get("ref"), 40)
    note = as_text(data.get("decision_note"), 2000).strip()
    outcome = await s.needs.decide(actor, ref, decision, note, s.today())
    lang = s.default_language  # the intake card is shared by the whole section
    ids = await _refresh_ids(s)
    if not outcome.changed:
        notice = text(
            actor.lang,
            "nr_already_decided",
            who=outcome.report.decided_by_name or "",
            status=text(actor.lang, f"nr_status_{outcome.report.status}"),
        )
        return Reply(card=intake_card(outcome.report, lang, notice=notice, refresh_user_ids=ids))
    return Reply(card=intake_card(outcome.report, lang, refresh_user_ids=ids), update_for_all=True)


async def refresh(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    """Universal Actions refresh: the intake card as it stands now, for those who may see it."""
    report = await s.needs.view(actor, as_text(data.get("ref"), 40))
    return Reply(card=intake_card(report, s.default_language, refresh_user_ids=await _refresh_ids(s)))
