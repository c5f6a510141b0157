"""Deviation report (avviksmelding): the three-step form, photos and files, the receipt, the
avtaleforvalter's card and its status changes, "mine avvik" and "avvik for <leverandør>".

The form is built for a phone: one step per card, one column, big buttons, no tables. In a
chat its buttons are `Action.Execute`; in the dialog a message action opens they are
`Action.Submit` (Teams sends those as `composeExtension/submitAction`).
"""

from __future__ import annotations

import html
import re
from datetime import date, datetime
from typing import Any

from cards.render import render_card
from cards.strings import text
from procurement.access import Actor, NotFound
from procurement.deviations.fields import (
    ALLOWED_SUMMARY,
    CATEGORIES,
    CONTRACT_NOT_LISTED,
    LIMITS,
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    MAX_NOTE,
    SEVERITIES,
    STEP_DETAILS,
    STEP_FILES,
    STEP_WHAT,
)
from procurement.deviations.model import Messages, ReceivedFile, RefusedFile
from procurement.deviations.ports import IncomingFile
from procurement.deviations.record import STATUSES, DeviationReport, SourceMessage, allowed_targets
from procurement.deviations.service import DraftView
from procurement.deviations.summary import SupplierSummary
from procurement.shared.dates import format_date, format_datetime
from procurement.shared.money import format_nok

from .base import Reply, as_dict, as_text
from .services import Services

STATUS_COLOR = {
    "reported": "Accent",
    "received": "Accent",
    "in_progress": "Warning",
    "sanction_assessed": "Warning",
    "closed": "Good",
}
STEP_TITLES = {STEP_WHAT: "dv_step_what", STEP_DETAILS: "dv_step_details", STEP_FILES: "dv_step_files"}


def _errors(lang: str, errors: dict[str, Messages] | None) -> dict[str, str]:
    return {k: v.get(lang) or v.get("nb", "") for k, v in (errors or {}).items()}


def _iso_or_empty(value: str) -> str:
    try:
        return value if len(value) == 10 and date.fromisoformat(value) else ""
    except ValueError:
        return ""


# -- the form -------------------------------------------------------------------------------


def form_card(
    lang: str,
    draft: DraftView,
    *,
    errors: dict[str, Messages] | None = None,
    notice: str | None = None,
    dialog: bool = False,
    token: str | None = None,
) -> dict[str, Any]:
    step = draft.step
    values = dict(draft.values)
    field_errors = _errors(lang, errors)
    shown = {
        STEP_WHAT: ("contract", "supplier_name", "category", "severity"),
        STEP_DETAILS: ("description", "occurred_on", "location", "financial_impact", "breached_clause"),
        STEP_FILES: (),
    }[step]
    # An error of another step (sending found it) still has to be seen here.
    stray = [msg for key, msg in field_errors.items() if key not in shown]
    contract_choices = [{"title": text(lang, "dv_contract_not_listed"), "value": CONTRACT_NOT_LISTED}]
    if values.get("contract"):
        contract_choices.insert(0, {"title": draft.contract_title or values["contract"], "value": values["contract"]})
    files = [
        {
            "name": f.original_name,
            "line": text(lang, "dv_attachment_line", name=f.original_name, size=_size(f.size)),
            "stored": f.stored_name,
        }
        for f in draft.attachments
    ]
    return render_card(
        "deviation_form",
        lang,
        step=step,
        step_title=text(lang, STEP_TITLES[step]),
        values={**values, "occurred_on": _iso_or_empty(values.get("occurred_on", ""))},
        errors=field_errors,
        stray=" ".join(stray),
        notice=notice,
        dialog=dialog,
        draft_id=draft.draft_id,
        contract_choices=contract_choices,
        categories=[{"value": c, "title": text(lang, f"dv_category_{c}")} for c in CATEGORIES],
        severities=[
            {"value": s, "title": text(lang, f"dv_severity_{s}"), "help": text(lang, f"dv_severity_{s}_help")}
            for s in SEVERITIES
        ],
        limits=LIMITS,
        source_line=_source_line(lang, draft.source),
        attachments=files,
        attachments_limits=text(
            lang,
            "dv_attachments_limits",
            types=ALLOWED_SUMMARY,
            size_mb=MAX_ATTACHMENT_BYTES // (1024 * 1024),
            count=MAX_ATTACHMENTS,
        ),
        attachments_count=text(lang, "dv_attachments_count", count=len(files), max=MAX_ATTACHMENTS),
        summary=_draft_summary(lang, draft) if step == STEP_FILES else [],
        token=token,
    )


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB".replace(".", ",")
    return f"{max(1, round(n / 1024))} kB"


def _source_line(lang: str, source: SourceMessage | None) -> str:
    if source is None:
        return ""
    when = format_datetime(source.sent_at) if source.sent_at else ""
    return text(lang, "dv_source_line", author=source.author_name or "?", when=when).strip()


def _draft_summary(lang: str, draft: DraftView) -> list[dict[str, str]]:
    v = draft.values
    supplier = draft.contract_title or v.get("contract") or v.get("supplier_name") or ""
    facts = [
        {"title": text(lang, "dv_fact_supplier"), "value": supplier},
        {"title": text(lang, "dv_fact_category"), "value": _choice(lang, "dv_category", v.get("category", ""))},
        {"title": text(lang, "dv_fact_severity"), "value": _choice(lang, "dv_severity", v.get("severity", ""))},
        {"title": text(lang, "dv_fact_occurred_on"), "value": _shown_date(v.get("occurred_on", ""))},
    ]
    return [f for f in facts if f["value"]]


def _choice(lang: str, prefix: str, value: str) -> str:
    return text(lang, f"{prefix}_{value}") if value else ""


def _shown_date(value: str) -> str:
    iso = _iso_or_empty(value)
    return format_date(date.fromisoformat(iso)) if iso else value


def _token(data: dict[str, Any]) -> str:
    return as_text(data.get("token"), 200)


def _draft_id(data: dict[str, Any]) -> str:
    return as_text(data.get("draft_id"), 40)


def _step_data(data: dict[str, Any]) -> object:
    step = data.get("step")
    return step if isinstance(step, int | str) and not isinstance(step, bool) else None


# -- verbs: the form ------------------------------------------------------------------------------


async def open_form(s: Services, actor: Actor, data: dict[str, Any], *, dialog: bool = False) -> Reply:
    outcome = await s.deviations.open(
        actor,
        contract=as_text(data.get("contract"), 64) or None,
        competition=as_text(data.get("competition"), 32) or None,
        via_dialog=dialog,
    )
    notice = text(actor.lang, "dv_resumed") if outcome.resumed else None
    return Reply(card=form_card(actor.lang, outcome.draft, notice=notice, dialog=dialog))


async def next_step(s: Services, actor: Actor, data: dict[str, Any], *, dialog: bool = False) -> Reply:
    return await _move(s, actor, data, forward=True, dialog=dialog)


async def back_step(s: Services, actor: Actor, data: dict[str, Any], *, dialog: bool = False) -> Reply:
    return await _move(s, actor, data, forward=False, dialog=dialog)


async def _move(s: Services, actor: Actor, data: dict[str, Any], *, forward: bool, dialog: bool) -> Reply:
    try:
        outcome = await s.deviations.save_step(
            actor, _draft_id(data), _step_data(data), data, forward=forward, via_dialog=dialog
        )
    except NotFound:
        return await open_form(s, actor, {}, dialog=dialog)
    lang = actor.lang
    if outcome.sent is not None:
        return Reply(card=receipt_card(outcome.sent, lang, repeated=True))
    assert outcome.draft is not None
    notice = text(lang, "dv_stale_card") if outcome.stale else None
    if outcome.errors:
        notice = text(lang, "dv_errors_summary", count=len(outcome.errors))
    return Reply(card=form_card(lang, outcome.draft, errors=outcome.errors, notice=notice, dialog=dialog))


async def submit(s: Services, actor: Actor, data: dict[str, Any], *, dialog: bool = False) -> Reply:
    try:
        outcome = await s.deviations.submit(actor, _token(data), _draft_id(data), via_dialog=dialog)
    except NotFound:
        return await open_form(s, actor, {}, dialog=dialog)
    lang = actor.lang
    if outcome.report is not None:
        ids = await s.people.teams_user_ids((actor.aad_id,))
        return Reply(card=receipt_card(outcome.report, lang, repeated=outcome.repeated, refresh_user_ids=ids))
    assert outcome.draft is not None
    if outcome.stale:
        return Reply(card=form_card(lang, outcome.draft, notice=text(lang, "dv_stale_card"), dialog=dialog))
    notice = text(lang, "dv_errors_summary", count=len(outcome.errors))
    return Reply(card=form_card(lang, outcome.draft, errors=outcome.errors, notice=notice, dialog=dialog))


# -- photos and files ------------------------------------------------------------------------------


async def attach(s: Services, actor: Actor, files: list[IncomingFile]) -> Reply | None:
    """Files sent in the personal chat: kept with the open report. None when no report is open
    (the message is then an ordinary message)."""
    draft, screening = await s.deviations.screen(actor, [f.offered for f in files])
    if draft is None:
        return None
    lang = actor.lang
    wanted = {id(offered) for offered in screening.to_download}
    to_fetch = [f for f in files if id(f.offered) in wanted]
    received = await _download(s, to_fetch)
    outcome = await s.deviations.attach(actor, draft.draft_id, received)
    refused = list(screening.refused) + list(outcome.refused)
    return Reply(card=attachments_card(lang, outcome.draft, [a.original_name for a in outcome.accepted], refused))


async def _download(s: Services, files: list[IncomingFile]) -> list[ReceivedFile]:
    if not files:
        return []
    if s.attachment_downloader is None:  # not wired: each file is said to have failed
        return [ReceivedFile(f.offered.name, f.offered.declared_type, None, 0) for f in files]
    return await s.attachment_downloader.download(files)


def attachments_card(
    lang: str, draft: DraftView, accepted: list[str], refused: list[RefusedFile], *, dialog: bool = False
) -> dict[str, Any]:
    return render_card(
        "deviation_attachments",
        lang,
        heading=text(lang, "dv_attachments_heading"),
        accepted=[text(lang, "dv_attachment_added", name=name) for name in accepted],
        refused=[r.messages.get(lang) or r.messages.get("nb", "") for r in refused],
        kept=text(lang, "dv_attachments_kept") if refused else "",
        count=text(lang, "dv_attachments_count", count=len(draft.attachments), max=MAX_ATTACHMENTS),
        draft_id=draft.draft_id,
    )


async def remove_attachment(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    draft = await s.deviations.remove_attachment(actor, _draft_id(data), as_text(data.get("name"), 160))
    return Reply(card=form_card(actor.lang, draft, notice=text(actor.lang, "dv_attachment_removed")))


# -- the receipt and the avtaleforvalter's card --------------------------------------------------


def _status(lang: str, status: str) -> str:
    return text(lang, f"dv_status_{status}")


def _facts(report: DeviationReport, lang: str, *, full: bool) -> list[dict[str, str]]:
    contract = report.contract_ref or text(lang, "dv_no_contract")
    if report.contract_ref and report.contract_title:
        contract = f"{report.contract_title} ({report.contract_ref})"
    facts = [
        {"title": text(lang, "dv_fact_ref"), "value": report.ref},
        {"title": text(lang, "dv_fact_status"), "value": _status(lang, report.status)},
        {"title": text(lang, "dv_fact_supplier"), "value": report.supplier_name},
        {"title": text(lang, "dv_fact_contract"), "value": contract},
        {"title": text(lang, "dv_fact_category"), "value": text(lang, f"dv_category_{report.category}")},
        {"title": text(lang, "dv_fact_severity"), "value": text(lang, f"dv_severity_{report.severity}")},
        {"title": text(lang, "dv_fact_occurred_on"), "value": format_date(report.occurred_on)},
    ]
    if report.remedy_deadline is not None and report.status in ("in_progress", "sanction_assessed"):
        facts.append({"title": text(lang, "dv_fact_remedy_deadline"), "value": format_date(report.remedy_deadline)})
    if full:
        if report.location:
            facts.append({"title": text(lang, "dv_fact_location"), "value": report.location})
        if report.financial_impact is not None:
            facts.append(
                {"title": text(lang, "dv_fact_financial_impact"), "value": format_nok(report.financial_impact, lang)}
            )
        if report.breached_clause:
            facts.append({"title": text(lang, "dv_fact_breached_clause"), "value": report.breached_clause})
        facts.append(
            {
                "title": text(lang, "dv_fact_reporter"),
                "value": text(
                    lang, "dv_reported_by", who=report.reporter_name or "?", when=format_datetime(report.created_at)
                ),
            }
        )
    return facts


def _history(report: DeviationReport, lang: str) -> list[str]:
    lines = []
    for h in report.history:
        line = text(
            lang,
            "dv_history_line",
            when=format_datetime(h.at),
            who=h.actor_name or "?",
            status=_status(lang, h.to_status),
        )
        if h.remedy_deadline is not None and h.to_status == "in_progress":
            line += " " + text(lang, "dv_history_deadline", deadline=format_date(h.remedy_deadline))
        if h.note:
            line += "\n" + h.note
        lines.append(line)
    return lines


def receipt_card(
    report: DeviationReport, lang: str, *, repeated: bool = False, refresh_user_ids: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The reporter's receipt: reference, what happens next, who follows it up. Refreshed in
    place (Universal Actions) when she opens it after a change."""
    who = text(lang, "dv_receipt_manager") if report.manager_aad_ids else text(lang, "dv_receipt_follow_up_channel")
    if report.status == "reported":
        intro = text(lang, "dv_receipt_repeated", ref=report.ref) if repeated else text(lang, "dv_receipt_intro")
        next_line = text(lang, "dv_receipt_next", who=who)
    else:
        intro = text(lang, "dv_receipt_status", status=_status(lang, report.status))
        next_line = _reporter_line(report, lang)
    if report.severity == "critical" and report.status == "reported":
        next_line += " " + text(lang, "dv_receipt_critical")
    return render_card(
        "deviation_receipt",
        lang,
        heading=text(lang, "dv_receipt_heading", ref=report.ref),
        intro=intro,
        next_line=next_line,
        facts=_facts(report, lang, full=False),
        attachments=text(lang, "dv_attachments_count", count=len(report.attachments), max=MAX_ATTACHMENTS)
        if report.attachments
        else "",
        status_color=STATUS_COLOR.get(report.status, "Default"),
        ref=report.ref,
        refresh_user_ids=list(refresh_user_ids)[:60],
    )


def _reporter_line(report: DeviationReport, lang: str, status: str | None = None) -> str:
    """In plain words; `status` is the change to tell of (the report may have moved on since),
    "deadline_moved" for a new remedy deadline."""
    told = status if status in (*STATUSES, "deadline_moved") else report.status
    params = {"ref": report.ref, "supplier": report.supplier_name}
    deadline = format_date(report.remedy_deadline) if report.remedy_deadline else ""
    if told == "in_progress":
        return text(lang, "dv_notify_in_progress", deadline=deadline, **params)
    if told == "deadline_moved":
        return text(lang, "dv_notify_deadline_moved", deadline=deadline, **params)
    if told == "closed":
        return text(lang, "dv_notify_closed", justification=report.closing_justification or "", **params)
    return text(lang, f"dv_notify_{told}", **params)


def report_card(
    report: DeviationReport,
    lang: str,
    *,
    refresh_user_ids: tuple[str, ...] = (),
    notice: str | None = None,
    errors: dict[str, Messages] | None = None,
    typed: dict[str, str] | None = None,
    stored_files: list[tuple[str, str]] | None = None,
    heading_key: str = "dv_report_heading",
) -> dict[str, Any]:
    """The actionable card for the avtaleforvalter (her chat) or Innkjøpsseksjonen (the
    follow-up channel): the report, its history and the next status."""
    targets = allowed_targets(report.status)
    choices = [
        {
            "value": t,
            "title": text(lang, "dv_status_in_progress_deadline")
            if t == report.status == "in_progress"
            else _status(lang, t),
        }
        for t in targets
    ]
    typed = typed or {}
    default_target = typed.get("status") or (targets[0] if targets else "")
    # Every file of the report, whether the outbox has stored it yet or not (with its link once stored).
    where = dict(stored_files or [])
    files = [
        {"name": a.original_name, "url": u if (u := where.get(a.stored_name, "")).startswith("https://") else ""}
        for a in report.attachments
    ]
    source = ""
    source_url = ""
    if report.source is not None:
        source = _source_line(lang, report.source)
        source_url = report.source.link if report.source.link.startswith("https://") else ""
    return render_card(
        "deviation_report",
        lang,
        heading=text(lang, heading_key, ref=report.ref, supplier=report.supplier_name),
        severity_line=text(lang, f"dv_severity_{report.severity}_help")
        if report.severity in ("high", "critical")
        else "",
        critical=report.severity == "critical",
        status_line=text(lang, "dv_status_line", status=_status(lang, report.status)),
        status_color=STATUS_COLOR.get(report.status, "Default"),
        facts=_facts(report, lang, full=True),
        description=report.description,
        source_line=source,
        source_url=source_url,
        files=files,
        history=_history(report, lang),
        open=report.is_open,
        choices=choices,
        status_value=default_target,
        needs_deadline=report.status in ("received", "in_progress"),
        needs_notice=report.status == "received",
        note=typed.get("note", "")[:MAX_NOTE],
        remedy_deadline=_iso_or_empty(typed.get("remedy_deadline", "")),
        supplier_notice=typed.get("supplier_notice", ""),
        errors=_errors(lang, errors),
        notice=notice,
        notice_hint=text(lang, "dv_notice_hint") if report.status == "received" else "",
        closed_line=text(
            lang,
            "dv_closed_line",
            when=format_datetime(report.closed_at) if report.closed_at else "",
            justification=report.closing_justification or "",
        )
        if report.status == "closed"
        else "",
        ref=report.ref,
        refresh_user_ids=list(refresh_user_ids)[:60],
    )


async def _refresh_ids(s: Services, report: DeviationReport) -> tuple[str, ...]:
    return await s.people.teams_user_ids(tuple(report.manager_aad_ids) + s.procurement_user_ids)


def _follows_up(actor: Actor, report: DeviationReport) -> bool:
    return actor.is_procurement or actor.aad_id in report.manager_aad_ids


async def refresh(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    """The report's card as it stands now, for the one asking: the actionable card for those who
    follow it up, the receipt for its reporter; nothing at all for anyone else."""
    report = await s.deviations.view(actor, as_text(data.get("ref"), 40))
    if _follows_up(actor, report):
        files = await s.deviations.stored_files(report.ref)
        return Reply(
            card=report_card(
                report, s.default_language, refresh_user_ids=await _refresh_ids(s, report), stored_files=files
            )
        )
    ids = await s.people.teams_user_ids((report.reporter_aad_id,))
    return Reply(card=receipt_card(report, actor.lang, refresh_user_ids=ids))


async def change_status(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    ref = as_text(data.get("ref"), 40)
    # Read past the input's maxLength, so an over-long note is refused, not cut short.
    typed = {
        "status": as_text(data.get("status"), 40),
        "note": as_text(data.get("note"), 4 * MAX_NOTE),
        "remedy_deadline": as_text(data.get("remedy_deadline"), 40),
        "supplier_notice": as_text(data.get("supplier_notice"), 40),
    }
    outcome = await s.deviations.change_status(
        actor,
        ref,
        typed["status"],
        note=typed["note"],
        remedy_deadline=typed["remedy_deadline"] or None,
        supplier_notice=typed["supplier_notice"] or None,
    )
    report = outcome.report
    lang = s.default_language  # the card is shared by those who follow the report up
    ids = await _refresh_ids(s, report)
    files = await s.deviations.stored_files(report.ref)
    if outcome.errors:
        card = report_card(report, lang, refresh_user_ids=ids, errors=outcome.errors, typed=typed, stored_files=files)
        return Reply(card=card)
    if outcome.repeated:
        notice = text(actor.lang, "dv_status_repeated", status=_status(actor.lang, report.status))
        return Reply(card=report_card(report, lang, refresh_user_ids=ids, notice=notice, stored_files=files))
    notice = text(actor.lang, "dv_status_saved", status=_status(actor.lang, report.status))
    if report.status == "in_progress" and report.supplier_notice == "formal_notice" and not report.notice_id:
        notice += " " + text(actor.lang, "dv_notice_coming")
    return Reply(
        card=report_card(report, lang, refresh_user_ids=ids, notice=notice, stored_files=files), update_for_all=True
    )


def reporter_notice_card(report: DeviationReport, lang: str, status: str | None = None) -> dict[str, Any]:
    """What the reporter is told of a change, in plain words (never internal notes)."""
    return render_card(
        "notice",
        lang,
        title=text(lang, "dv_notify_title", ref=report.ref),
        body=_reporter_line(report, lang, status),
        actions=[{"title": text(lang, "dv_action_mine"), "verb": "deviation.mine", "data": {}}],
    )


def alert_card(report: DeviationReport, lang: str) -> dict[str, Any]:
    """A critical report, at once, in Innkjøpsseksjonen's channel."""
    who = text(lang, "dv_receipt_manager") if report.manager_aad_ids else text(lang, "dv_receipt_follow_up_channel")
    return render_card(
        "notice",
        lang,
        title=text(lang, "dv_alert_title", ref=report.ref, supplier=report.supplier_name),
        body=text(
            lang,
            "dv_alert_body",
            category=text(lang, f"dv_category_{report.category}"),
            date=format_date(report.occurred_on),
            who=who,
        ),
        actions=[{"title": text(lang, "dv_action_view"), "verb": "deviation.refresh", "data": {"ref": report.ref}}],
    )


def remedy_card(report: DeviationReport, lang: str, *, escalation: bool) -> dict[str, Any]:
    key = "dv_remedy_escalation" if escalation else "dv_remedy_reminder"
    deadline = format_date(report.remedy_deadline) if report.remedy_deadline else ""
    return render_card(
        "notice",
        lang,
        title=text(lang, f"{key}_title", ref=report.ref),
        body=text(lang, f"{key}_body", ref=report.ref, supplier=report.supplier_name, deadline=deadline),
        actions=[{"title": text(lang, "dv_action_view"), "verb": "deviation.refresh", "data": {"ref": report.ref}}],
    )


def notice_ready_card(report: DeviationReport, lang: str, location: str) -> dict[str, Any]:
    body = text(lang, "dv_notice_ready_body", ref=report.ref, supplier=report.supplier_name)
    actions: list[dict[str, Any]] = []
    if location.startswith("https://"):
        actions.append({"title": text(lang, "dv_notice_open"), "url": location})
    else:
        body += "\n\n" + text(lang, "dv_notice_saved_at", path=location)
    return render_card(
        "notice", lang, title=text(lang, "dv_notice_ready_title", ref=report.ref), body=body, actions=actions
    )


# -- mine, and the supplier ---------------------------------------------------------------------


async def mine(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    lang = actor.lang
    reports = await s.deviations.mine(actor)
    draft = await s.deviations.draft(actor)
    items = [
        {
            "ref": r.ref,
            "title": f"{r.ref} · {r.supplier_name}",
            "line": text(
                lang,
                "dv_list_line",
                status=_status(lang, r.status),
                category=text(lang, f"dv_category_{r.category}"),
                date=format_date(r.created_at),
            ),
        }
        for r in reports
    ]
    draft_line = text(lang, "dv_list_draft", step=draft.step) if draft is not None else None
    return Reply(card=render_card("deviation_list", lang, items=items, draft_line=draft_line))


async def supplier(s: Services, actor: Actor, query: str) -> Reply:
    found = await s.deviations.supplier_summary(actor, query)
    return Reply(card=summary_card(found, actor.lang))


def summary_card(found: SupplierSummary, lang: str, notice: str | None = None) -> dict[str, Any]:
    average = (
        text(lang, "dv_summary_average", days=f"{found.average_days_to_closure:.1f}".replace(".", ","))
        if found.average_days_to_closure is not None
        else text(lang, "dv_summary_none_closed")
    )
    rows = [
        {
            "title": f"{r.ref} · {text(lang, f'dv_category_{r.category}')}",
            "line": text(
                lang,
                "dv_summary_line",
                status=_status(lang, r.status),
                severity=text(lang, f"dv_severity_{r.severity}"),
                date=format_date(r.created_at),
            ),
            "ref": r.ref,
        }
        for r in found.reports[:25]
    ]
    return render_card(
        "deviation_summary",
        lang,
        heading=text(lang, "dv_summary_title", supplier=found.supplier),
        counts=text(lang, "dv_summary_counts", total=found.total, open=found.open_count),
        average=average,
        by_category=[{"title": text(lang, f"dv_category_{c}"), "value": str(n)} for c, n in found.by_category if n],
        by_severity=[{"title": text(lang, f"dv_severity_{c}"), "value": str(n)} for c, n in found.by_severity if n],
        rows=rows,
        more=text(lang, "dv_summary_more", count=found.total - len(rows)) if found.total > len(rows) else "",
        supplier=found.supplier,
        notice=notice,
    )


def export_card(lang: str, supplier: str, count: int, path: str) -> dict[str, Any]:
    """The CSV is ready: where it is (a file under DATA_DIR/exports/)."""
    return render_card(
        "notice",
        lang,
        title=text(lang, "dv_export_ready_title", supplier=supplier),
        body=text(lang, "dv_export_ready_body", count=count, path=path),
    )


async def export(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    found = await s.deviations.request_export(actor, as_text(data.get("supplier"), 200))
    return Reply(card=summary_card(found, actor.lang, notice=text(actor.lang, "dv_export_coming")))


def export_declined_card(lang: str, name: str) -> dict[str, Any]:
    """Declined on the file consent card: plainly, nothing was sent."""
    return render_card(
        "notice",
        lang,
        title=text(lang, "dv_export_declined_title"),
        body=text(lang, "dv_export_declined_body", name=name),
    )


async def file_consent(s: Services, actor: Actor, value: dict[str, Any]) -> dict[str, Any]:
    """`fileConsent/invoke`: the answer on the CSV's consent card. Only the export's id is taken
    from the card; the outbox checks it is this user's and sends the stored bytes. Answered 200
    with an empty body either way (Teams shows an error for anything else)."""
    export = as_dict(value.get("context")).get("exportId")
    answer = value.get("action")
    if isinstance(export, str) and re.fullmatch(r"[0-9a-f]{32}", export) and answer in ("accept", "decline"):
        info = as_dict(value.get("uploadInfo"))
        upload = {k: v for k, v in info.items() if isinstance(k, str) and isinstance(v, str)}
        await s.deviations.answer_export(actor, export, answer == "accept", upload)
    return {}


# -- the message action ("Meld avvik" on a message) -------------------------------------------------

_TAGS = re.compile(r"<[^>]+>")
_BREAKS = re.compile(r"<\s*(br|/p|/div|/li)\s*/?>", re.IGNORECASE)


def message_text(payload: dict[str, Any]) -> str:
    """The message's text: Teams sends the body as HTML."""
    raw = payload.get("body")
    body: dict[str, Any] = raw if isinstance(raw, dict) else {}
    content = body.get("content")
    if not isinstance(content, str):
        return ""
    content = content[:20_000]
    if str(body.get("contentType") or "html").lower() == "html":
        content = html.unescape(_TAGS.sub("", _BREAKS.sub("\n", content)))
    lines = [line.strip() for line in content.splitlines()]
    return "\n".join(line for line in lines if line).strip()


def message_source(payload: dict[str, Any]) -> SourceMessage | None:
    sender = payload.get("from") if isinstance(payload.get("from"), dict) else {}
    user = sender.get("user") if isinstance(sender, dict) and isinstance(sender.get("user"), dict) else {}
    author = as_text((user or {}).get("displayName"), 200) or as_text((sender or {}).get("name"), 200)
    link = as_text(payload.get("linkToMessage"), 1000)
    sent_at = None
    raw = payload.get("createdDateTime")
    if isinstance(raw, str):
        try:
            sent_at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            sent_at = None
        if sent_at is not None and sent_at.tzinfo is None:
            sent_at = None
    if not (author or link):
        return None
    return SourceMessage(author, link, sent_at)


def task_continue(card: dict[str, Any], title: str) -> dict[str, Any]:
    """The invoke answer that shows `card` in the dialog."""
    return {
        "task": {
            "type": "continue",
            "value": {
                "title": title,
                "height": "large",
                "width": "medium",
                "card": {"contentType": "application/vnd.microsoft.card.adaptive", "content": card},
            },
        }
    }


def task_message(message: str) -> dict[str, Any]:
    return {"task": {"type": "message", "value": message}}


async def fetch_task(s: Services, actor: Actor, value: dict[str, Any]) -> dict[str, Any]:
    """`composeExtension/fetchTask` of "Meld avvik": the form in a dialog, the message's text as
    the description and its author and link as the source."""
    payload = value.get("messagePayload") if isinstance(value.get("messagePayload"), dict) else {}
    assert isinstance(payload, dict)
    outcome = await s.deviations.open(
        actor, source=message_source(payload), source_text=message_text(payload), via_dialog=True
    )
    notice = text(actor.lang, "dv_resumed") if outcome.resumed else text(actor.lang, "dv_from_message")
    card = form_card(actor.lang, outcome.draft, notice=notice, dialog=True)
    return task_continue(card, text(actor.lang, "dv_form_title"))


DIALOG_VERBS = {"deviation.next": next_step, "deviation.back": back_step, "deviation.submit": submit}


async def submit_action(s: Services, actor: Actor, value: dict[str, Any]) -> dict[str, Any]:
    """`composeExtension/submitAction`: a step of the dialog's form; sending closes it."""
    data = value.get("data") if isinstance(value.get("data"), dict) else {}
    assert isinstance(data, dict)
    verb = as_text(data.get("verb"), 64)
    handler = DIALOG_VERBS.get(verb)
    lang = actor.lang
    if handler is None:
        return task_message(text(lang, "dv_dialog_closed"))
    reply = await handler(s, actor, data, dialog=True)
    assert reply.card is not None
    if verb == "deviation.submit" and _is_receipt(reply.card):
        return task_message(text(lang, "dv_dialog_sent", ref=_receipt_ref(reply.card)))
    return task_continue(reply.card, text(lang, "dv_form_title"))


def _is_receipt(card: dict[str, Any]) -> bool:
    return bool(card.get("refresh")) and "deviation.refresh" in str(card.get("refresh"))


def _receipt_ref(card: dict[str, Any]) -> str:
    refresh = card.get("refresh")
    action = refresh.get("action") if isinstance(refresh, dict) else None
    data = action.get("data") if isinstance(action, dict) else None
    return str(data.get("ref") or "") if isinstance(data, dict) else ""


def unknown_command(actor: Actor) -> str:
    return text(actor.lang, "unknown_action_body")
