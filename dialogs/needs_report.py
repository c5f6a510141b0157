"""Needs report (behovsmelding): the form, submit, summary, intake card and decisions."""

from __future__ import annotations

from datetime import date
from typing import Any

from cards.render import render_card
from cards.strings import text
from procurement.access import Actor, NotFound
from procurement.needs.assessment import lead_indices
from procurement.needs.fields import LIMITS, NEEDS_REPORT_FIELDS, SERVICE_AREAS, echo_limit
from procurement.needs.record import ANSWER_LIMIT, QUESTION_LIMIT, Exchange, NeedsReport
from procurement.shared.dates import format_date, format_datetime
from procurement.shared.money import format_nok

from . import competition_room, home
from .base import Reply, as_text
from .services import Services

REQUIRED_FIELDS = frozenset(
    {"title", "need", "service_area", "estimated_value", "category", "agreement_type", "start_date", "duration_months"}
)
# Behind "Flere detaljer" on the form (the template holds exactly these, checked by a test).
DETAIL_FIELDS = tuple(key for key in NEEDS_REPORT_FIELDS if key not in REQUIRED_FIELDS)
SEVERITY_STYLE = {"required": "accent", "warning": "warning", "info": "emphasis"}
STATUS_COLOR = {
    "submitted": "Default",
    "info_requested": "Warning",
    "answered": "Accent",
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
    edit_ref: str | None = None,
) -> dict[str, Any]:
    """The form; with `edit_ref` it edits that open report (its own heading and one button)."""
    values, numbers = _form_values(raw or {})
    field_errors = {k: v.get(lang) or v.get("nb", "") for k, v in (errors or {}).items()}
    # An error for a field that is not on the form still has to be seen.
    stray = [msg for key, msg in field_errors.items() if key not in NEEDS_REPORT_FIELDS]
    summary = text(lang, "nr_errors_summary", count=len(field_errors))
    if stray:
        summary = summary + " " + " ".join(stray)
    # Folded optional fields keep their values (hidden inputs are still submitted); the title
    # says how many are filled in, and an error there opens the section so it is seen.
    filled = sum(1 for key in DETAIL_FIELDS if _detail_filled(key, values, numbers))
    details_title = text(lang, "nr_more_details_filled", count=filled) if filled else text(lang, "nr_more_details")
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
        details_title=details_title,
        details_open=any(key in field_errors for key in DETAIL_FIELDS),
        token=token,
        edit_ref=edit_ref,
        form_title=text(lang, "nr_edit_title", ref=edit_ref) if edit_ref else text(lang, "nr_form_title"),
    )


def _detail_filled(key: str, values: dict[str, str], numbers: dict[str, int | None]) -> bool:
    if key in numbers:
        return bool(numbers[key])  # 0 option months is the same as none
    return values[key].strip() not in ("", "false")


def _label(lang: str, key: str, value: str) -> str:
    return text(lang, f"{key}_{value}") if value else text(lang, "nr_none")


def _service_area(lang: str, value: str) -> str:
    return text(lang, f"service_area_{value}") if value in SERVICE_AREAS else value


def _shown_date(value: object) -> str:
    """A stored ISO date (2027-04-01, the Input.Date format) as cards show dates: 01.04.2027."""
    raw = str(value or "")
    return format_date(date.fromisoformat(raw)) if _is_iso_date(raw) else raw


def _facts(report: NeedsReport, lang: str, full: bool) -> list[dict[str, str]]:
    d = report.data
    yes_no = {True: text(lang, "yes"), False: text(lang, "no")}
    facts = [
        {"title": text(lang, "nr_fact_ref"), "value": report.ref},
        {"title": text(lang, "nr_fact_title"), "value": report.title},
        {"title": text(lang, "nr_fact_service_area"), "value": _service_area(lang, report.service_area)},
        {"title": text(lang, "nr_fact_value"), "value": format_nok(report.estimated_value, lang)},
    ]
    basis = str(d.get("value_basis") or "").strip()
    if full and basis:  # how the value was estimated, right under it
        facts.append({"title": text(lang, "nr_fact_value_basis"), "value": basis})
    facts += [
        {"title": text(lang, "nr_fact_category"), "value": _label(lang, "nr_category", report.category)},
    ]
    if full:
        facts += [
            {"title": text(lang, "nr_fact_submitter"), "value": report.submitter_name or report.submitter_aad_id},
            {
                "title": text(lang, "nr_fact_agreement"),
                "value": _label(lang, "nr_agreement", str(d.get("agreement_type") or "")),
            },
            {"title": text(lang, "nr_fact_start"), "value": _shown_date(d.get("start_date"))},
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


def summary_card(
    report: NeedsReport, lang: str, repeated: bool = False, heading: str | None = None, intro: str | None = None
) -> dict[str, Any]:
    consequences = _consequences(report, lang)
    actions: list[dict[str, Any]] = []
    if report.is_open and any(c["code"] == "framework_agreement" for c in consequences):
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
    heading = heading or text(lang, "nr_summary_heading", ref=report.ref)
    if intro is None:
        intro = text(lang, "nr_summary_repeated", ref=report.ref) if repeated else text(lang, "nr_summary_intro")
    # On a phone the receipt leads with the rules that change what the sender must do
    # (the order is the assessment's, `lead_indices`); the rest wait behind a toggle.
    lead = lead_indices([c["code"] for c in consequences])
    rest = [c for i, c in enumerate(consequences) if i not in lead]
    return render_card(
        "needs_report_summary",
        lang,
        heading=heading,
        intro=intro,
        facts=_facts(report, lang, full=False),
        consequences=[consequences[i] for i in lead],
        more_consequences=rest,
        show_all=text(lang, "nr_show_all_rules", count=len(consequences)),
        actions=actions,
    )


def _when(report: NeedsReport) -> str:
    return format_datetime(report.decided_at) if report.decided_at else ""


def _exchange_items(report: NeedsReport, lang: str) -> list[dict[str, str]]:
    """Every question and its answer (or that none has come yet), oldest first."""
    items = []
    for e in report.exchanges:
        asked = text(lang, "nr_exchange_asked", who=e.asked_by_name, when=format_datetime(e.asked_at))
        if e.answer is not None and e.answered_at is not None:
            answered = text(
                lang, "nr_exchange_answered", who=e.answered_by_name or "", when=format_datetime(e.answered_at)
            )
            answer = e.answer
        else:
            answered, answer = text(lang, "nr_exchange_waiting"), ""
        items.append({"asked": asked, "question": e.question, "answered": answered, "answer": answer})
    return items


def _edited_line(report: NeedsReport, lang: str) -> str:
    if report.edited_at is None:
        return ""
    fields = ", ".join(text(lang, f"nr_field_{key}") for key in report.edited_fields if key in NEEDS_REPORT_FIELDS)
    return text(
        lang,
        "nr_edited_line",
        who=report.submitter_name or report.submitter_aad_id,
        when=format_datetime(report.edited_at),
        fields=fields or text(lang, "nr_none"),
    )


def intake_card(
    report: NeedsReport,
    lang: str,
    notice: str | None = None,
    refresh_user_ids: tuple[str, ...] = (),
    decision_note: str = "",
    errors: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The card in the intake channel; `decision_note` and `errors` when a press was refused
    (the presser gets it back with what she typed and the message at the field)."""
    status = text(lang, f"nr_status_{report.status}")
    # "Besvart" is the submitter's doing, not the innkjøper's who asked: no "av …" for it.
    if report.decided_by_name and report.status not in ("submitted", "answered"):
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
    field_errors = {k: v.get(lang) or v.get("nb", "") for k, v in (errors or {}).items()}
    return render_card(
        "needs_report_intake",
        lang,
        heading=text(lang, "nr_intake_heading", title=report.title),
        status_line=status_line,
        status_color=STATUS_COLOR.get(report.status, "Default"),
        facts=_facts(report, lang, full=True),
        need=str(report.data.get("need") or ""),
        consequences=_consequences(report, lang),
        exchanges=_exchange_items(report, lang),
        edited_line=_edited_line(report, lang),
        open=report.is_open,
        decision_note=decision_note[:QUESTION_LIMIT],
        decision_note_error=field_errors.get("decision_note", ""),
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
            # A question waits for her: the list leads back to it (the chat may have scrolled on).
            "action": (
                {"title": text(lang, "nr_list_answer"), "verb": "needs_report.question", "data": {"ref": r.ref}}
                if r.status == "info_requested"
                else None
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
    # Read past the input's maxLength, so an over-long question is refused, not cut short.
    note = as_text(data.get("decision_note"), 4 * QUESTION_LIMIT).strip()
    outcome = await s.needs.decide(actor, ref, decision, note, s.today())
    lang = s.default_language  # the intake card is shared by the whole section
    ids = await _refresh_ids(s)
    report = outcome.report
    if outcome.errors:
        # Only the presser sees this card; the others' copy stays as it is.
        card = intake_card(report, lang, refresh_user_ids=ids, decision_note=note, errors=outcome.errors)
        return Reply(card=card)
    if outcome.repeated:
        notice = text(actor.lang, "nr_question_already_sent", who=report.submitter_name)
        return Reply(card=intake_card(report, lang, notice=notice, refresh_user_ids=ids))
    if not outcome.changed:
        notice = text(
            actor.lang,
            "nr_already_decided",
            who=report.decided_by_name or "",
            status=text(actor.lang, f"nr_status_{report.status}"),
        )
        return Reply(card=intake_card(report, lang, notice=notice, refresh_user_ids=ids))
    card = intake_card(report, lang, refresh_user_ids=ids)
    if report.competition_ref:  # approved: "Oppretter samhandlingsrom …", then each step as it completes
        card = competition_room.with_room_status(card, await s.competitions.load(report.competition_ref), lang)
    return Reply(card=card, update_for_all=True)


async def refresh(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    """Universal Actions refresh: the intake card as it stands now, for those who may see it."""
    report = await s.needs.view(actor, as_text(data.get("ref"), 40))
    card = intake_card(report, s.default_language, refresh_user_ids=await _refresh_ids(s))
    if report.competition_ref:  # the room's status below an approved report, as its card shows it
        room = await s.competitions.load(report.competition_ref)
        card = competition_room.with_room_status(card, room, s.default_language)
    return Reply(card=card)


# -- the question and its answer, the submitter's edit --------------------------------------


def question_card(
    report: NeedsReport,
    exchange: Exchange,
    lang: str,
    *,
    answer: str = "",
    notice: str | None = None,
    errors: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Innkjøpsseksjonen's question in her chat: answer it here (while it is open and the
    report undecided), or edit the report."""
    can_answer = exchange.is_open and report.is_open
    answered_line = ""
    if exchange.answer is not None and exchange.answered_at is not None:
        answered_line = text(
            lang,
            "nr_exchange_answered",
            who=exchange.answered_by_name or "",
            when=format_datetime(exchange.answered_at),
        )
    field_errors = {k: v.get(lang) or v.get("nb", "") for k, v in (errors or {}).items()}
    return render_card(
        "needs_report_question",
        lang,
        heading=text(lang, "nr_question_heading", ref=report.ref),
        intro=text(
            lang,
            "nr_question_intro",
            who=exchange.asked_by_name,
            when=format_datetime(exchange.asked_at),
            title=report.title,
        ),
        question=exchange.question,
        answer_shown=exchange.answer or "",
        answered_line=answered_line,
        notice=notice,
        can_answer=can_answer,
        can_edit=report.is_open,
        answer=answer[:ANSWER_LIMIT],
        answer_error=field_errors.get("answer", ""),
        answer_limit=ANSWER_LIMIT,
        ref=report.ref,
        exchange_id=exchange.id,
    )


def _exchange_id(data: dict[str, Any]) -> int | None:
    value = data.get("exchange")
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**31 else None


async def show_question(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    """The question card again (from her list): the open question, or the one asked for."""
    report, exchange = await s.needs.question(actor, as_text(data.get("ref"), 40), _exchange_id(data))
    return Reply(card=question_card(report, exchange, actor.lang))


async def answer(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    ref = as_text(data.get("ref"), 40)
    exchange_id = _exchange_id(data)
    if exchange_id is None:
        raise NotFound(ref)
    typed = as_text(data.get("answer"), 4 * ANSWER_LIMIT).strip()
    outcome = await s.needs.answer(actor, ref, exchange_id, typed)
    lang, report = actor.lang, outcome.report
    if outcome.errors:
        return Reply(card=question_card(report, outcome.exchange, lang, answer=typed, errors=outcome.errors))
    status = text(lang, f"nr_status_{report.status}")
    notices = {
        "record": text(lang, "nr_answer_sent")
        if report.status == "answered"
        else text(lang, "nr_answer_sent_more", count=len(report.open_exchanges)),
        "repeated": text(lang, "nr_answer_repeated"),
        "already_answered": text(lang, "nr_answer_already", answer=typed),
        "closed": text(lang, "nr_answer_closed", ref=report.ref, status=status, answer=typed),
    }
    return Reply(card=question_card(report, outcome.exchange, lang, notice=notices[outcome.step or "record"]))


def report_form_values(report: NeedsReport) -> dict[str, str]:
    """The report's stored values as the form's inputs send them, to edit it."""
    out: dict[str, str] = {}
    for key in NEEDS_REPORT_FIELDS:
        value = report.data.get(key)
        if value is None:
            out[key] = ""
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            out[key] = ", ".join(str(v) for v in value)
        elif key == "estimated_value" and isinstance(value, int):
            out[key] = f"{value:,}".replace(",", " ")  # as typed in Norway: 1 300 000
        else:
            out[key] = str(value)
    return out


async def edit(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    """Her report's form, prefilled; sending it updates the same report (needs_report.update)."""
    report = await s.needs.for_edit(actor, as_text(data.get("ref"), 40))
    lang = actor.lang
    if not report.is_open:
        status = text(lang, f"nr_status_{report.status}")
        return home.notice(lang, "nr_fact_status", text(lang, "nr_edit_too_late", ref=report.ref, status=status))
    notice = text(lang, "nr_edit_notice", ref=report.ref)
    return Reply(card=form_card(s, lang, report_form_values(report), notice=notice, edit_ref=report.ref))


async def update(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    ref = as_text(data.get("ref"), 40)
    token = as_text(data.get("token"), 200)
    outcome = await s.needs.update(actor, ref, token, data, s.today())
    lang, report = actor.lang, outcome.report
    if outcome.errors:
        return Reply(card=form_card(s, lang, data, errors=outcome.errors, token=token or None, edit_ref=report.ref))
    if outcome.closed:
        status = text(lang, f"nr_status_{report.status}")
        return home.notice(lang, "nr_fact_status", text(lang, "nr_edit_too_late", ref=report.ref, status=status))
    heading = text(lang, "nr_updated_heading", ref=report.ref)
    if outcome.repeated:
        intro = text(lang, "nr_updated_repeated")
    elif not outcome.changed:
        intro = text(lang, "nr_updated_nothing")
    else:
        fields = ", ".join(text(lang, f"nr_field_{key}") for key in outcome.changed)
        intro = text(lang, "nr_updated_intro", fields=fields)
    return Reply(card=summary_card(report, lang, heading=heading, intro=intro))
