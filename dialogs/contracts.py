"""Contracts: 'mine kontrakter', search, the new-contract card, and reminder cards and answers."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from cards.render import render_card
from cards.strings import text
from procurement.access import Actor, NotFound
from procurement.contracts.access import POLICY as CONTRACTS_POLICY
from procurement.contracts.form import CONTRACT_FORM_FIELDS, validate_contract_form
from procurement.contracts.service import CompetitionInfo, CompetitionTaken, ContractView
from procurement.reminders.service import ReminderView
from procurement.shared.calendar import add_months
from procurement.shared.dates import format_date, format_datetime
from procurement.shared.money import format_nok

from . import home, needs_report
from .base import Reply, as_text
from .services import Services

_d = format_date


def _deadline(lang: str, view: ContractView) -> str:
    if not view.next_deadline:
        return text(lang, "ct_no_deadline")
    kind, when = view.next_deadline
    key = f"ct_deadline_{kind}"
    try:
        return text(lang, key, date=_d(when))
    except KeyError:
        return f"{kind} {_d(when)}"


def contract_facts(lang: str, view: ContractView) -> list[dict[str, str]]:
    facts = [
        {"title": text(lang, "ct_fact_ref"), "value": view.external_ref},
        {"title": text(lang, "ct_fact_supplier"), "value": view.supplier_name},
        {"title": text(lang, "ct_fact_period"), "value": f"{_d(view.start_date)} – {_d(view.end_date)}"},
        {"title": text(lang, "ct_fact_next"), "value": _deadline(lang, view)},
        {"title": text(lang, "ct_fact_type"), "value": text(lang, f"nr_agreement_{view.agreement_type}")},
    ]
    if view.value_nok is not None:
        facts.append({"title": text(lang, "ct_fact_value"), "value": format_nok(view.value_nok, lang)})
        facts.append({"title": text(lang, "ct_fact_manager"), "value": view.manager_email or "–"})
        facts.append({"title": text(lang, "ct_fact_risk"), "value": text(lang, f"ct_risk_{view.risk_level}")})
        if view.archive_case_no:
            facts.append({"title": text(lang, "ct_fact_case"), "value": view.archive_case_no})
        if view.internal_notes:
            facts.append({"title": text(lang, "ct_fact_notes"), "value": view.internal_notes})
    return facts


def _list_card(
    lang: str, heading: str, intro: str | None, empty: str, views: list[ContractView], actions: list[dict[str, Any]]
) -> dict[str, Any]:
    items = [{"title": v.title, "facts": contract_facts(lang, v)} for v in views]
    return render_card("contract_list", lang, heading=heading, intro=intro, empty=empty, items=items, actions=actions)


async def mine(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    lang = actor.lang
    views = await s.contracts.for_manager(actor)
    views.sort(key=lambda v: v.next_deadline[1] if v.next_deadline else date.max)
    actions = (
        [{"title": text(lang, "action_new_contract"), "verb": "contracts.new", "data": {}}]
        if actor.is_procurement
        else []
    )
    return Reply(
        card=_list_card(
            lang, text(lang, "ct_mine_title"), text(lang, "ct_mine_intro"), text(lang, "ct_mine_empty"), views, actions
        )
    )


async def search(s: Services, actor: Actor, query: str) -> Reply:
    lang = actor.lang
    views = await s.contracts.search(actor, query[:100])
    limited = any(v.value_nok is None for v in views)
    return Reply(
        card=_list_card(
            lang,
            text(lang, "ct_search_title", query=query[:100]),
            text(lang, "ct_search_limited") if limited else None,
            text(lang, "ct_search_empty"),
            views,
            [],
        )
    )


async def typeahead(s: Services, actor: Actor, query: str, limit: int) -> list[dict[str, str]]:
    """`Data.Query` results for a contract picker: title and supplier only (never prices)."""
    rows = await s.contracts.search(actor, query, limit)
    return [{"title": f"{r.title} – {r.supplier_name} ({r.external_ref})", "value": r.external_ref} for r in rows]


def form_card(
    lang: str,
    values: dict[str, Any] | None = None,
    errors: dict[str, dict[str, str]] | None = None,
    token: str | None = None,
    competition: CompetitionInfo | None = None,
) -> dict[str, Any]:
    vals = {k: as_text((values or {}).get(k), 4000) for k in CONTRACT_FORM_FIELDS}
    errs = {k: v.get(lang) or v.get("nb", "") for k, v in (errors or {}).items()}
    labels = {k: text(lang, f"ct_label_{k}") for k in CONTRACT_FORM_FIELDS}
    origin = (
        text(lang, "ct_from_competition", ref=competition.ref, needs=competition.needs_report_ref)
        if competition
        else None
    )
    return render_card(
        "contract_form",
        lang,
        values=vals,
        errors=errs,
        labels=labels,
        token=token,
        error_summary=text(lang, "ct_errors_summary", count=len(errs)),
        origin=origin,
        action_data={"competition": competition.ref} if competition else {},
    )


async def new_form(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    CONTRACTS_POLICY.check(actor, "register")
    return Reply(card=form_card(actor.lang))


def _competition_not_found(lang: str, ref: str) -> Reply:
    return home.notice(lang, "ct_competition_not_found_title", text(lang, "ct_competition_not_found", ref=ref))


def _competition_taken(lang: str, ref: str, contract_ref: str) -> Reply:
    return home.notice(
        lang, "ct_competition_taken_title", text(lang, "ct_competition_taken", ref=ref, contract=contract_ref)
    )


async def from_competition(s: Services, actor: Actor, ref: str) -> Reply:
    """The contract form prefilled from a competition whose contract is signed."""
    try:
        found = await s.contracts.competition(actor, ref)
    except NotFound:
        return _competition_not_found(actor.lang, ref)
    if found.contract_ref:
        return _competition_taken(actor.lang, ref, found.contract_ref)
    return Reply(card=form_card(actor.lang, competition_prefill(found), competition=found))


def competition_prefill(c: CompetitionInfo) -> dict[str, str]:
    """What the needs report already said; the rest comes from the signed contract."""
    form = c.form
    values = {
        "title": c.title,
        "category": c.category,
        "agreement_type": str(form.get("agreement_type") or ""),
        "value_nok": str(c.estimated_value) if c.estimated_value else "",
    }
    try:
        start = date.fromisoformat(str(form.get("start_date") or ""))
        months = int(str(form.get("duration_months") or "0"))
    except ValueError:
        return values
    values["start_date"] = start.strftime("%d.%m.%Y")
    if months > 0:
        values["end_date"] = (add_months(start, months) - timedelta(days=1)).strftime("%d.%m.%Y")
    try:
        option_months = int(str(form.get("option_months") or "0"))
    except ValueError:
        option_months = 0
    if option_months > 0:
        values["options"] = f"{option_months} mnd"
    return values


async def save(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    lang = actor.lang
    CONTRACTS_POLICY.check(actor, "register")
    token = as_text(data.get("token"), 200) or None
    # The competition comes from the card's action data: checked again here, never trusted.
    competition_ref = as_text(data.get("competition"), 32).strip().upper() or None
    competition = None
    if competition_ref:
        try:
            competition = await s.contracts.competition(actor, competition_ref)
        except NotFound:
            # (Already signed with another contract is refused by the register, atomically.)
            return _competition_not_found(lang, competition_ref)
    result = validate_contract_form(data, s.today())
    if result.errors or result.value is None:
        return Reply(card=form_card(lang, data, result.errors, token, competition))
    contract = result.value
    try:
        outcome = await s.contracts.register(actor, contract, competition_ref=competition_ref)
    except CompetitionTaken as taken:
        # Someone registered the competition's contract meanwhile: the same form back, values
        # kept, the reason at the contract number (saving that number updates their contract).
        message = {
            code: text(code, "ct_competition_taken", ref=taken.ref, contract=taken.contract_ref or "")
            for code in ("nb", "en")
        }
        return Reply(card=form_card(lang, data, {"external_ref": message}, token, competition))
    title = text(lang, "ct_saved_title", ref=contract.external_ref, outcome=text(lang, f"ct_outcome_{outcome}"))
    body = title + ". " + text(lang, "ct_saved_body")
    if competition_ref:
        body += " " + text(lang, "ct_competition_signed", ref=competition_ref)
    return home.notice(lang, "ct_form_title", body)


# -- reminders ------------------------------------------------------------------------------


def reminder_card(
    lang: str,
    reminder: ReminderView,
    contract: ContractView,
    *,
    notice: str | None = None,
    reason_error: str | None = None,
    reason: str = "",
    asking: bool = False,
) -> dict[str, Any]:
    """The reminder as the avtaleforvalter sees it. `asking`: the worker (re)sends it, so a
    snoozed reminder asks afresh instead of showing the snooze."""
    kind = reminder.kind
    heading = text(lang, f"rm_heading_{kind}", title=contract.title)
    question = reminder_question(lang, reminder, contract)
    facts = [
        {"title": text(lang, "ct_fact_ref"), "value": contract.external_ref},
        {"title": text(lang, "ct_fact_supplier"), "value": contract.supplier_name},
        {"title": text(lang, "ct_fact_period"), "value": f"{_d(contract.start_date)} – {_d(contract.end_date)}"},
    ]
    answered_line = None
    snoozed = reminder.status == "pending" and reminder.answer == "snooze" and not asking
    if (reminder.answer and reminder.answer != "snooze") or snoozed:
        when = format_datetime(reminder.answered_at) if reminder.answered_at else ""
        answered_line = text(
            lang,
            "rm_answered",
            answer=text(lang, f"rm_answer_{reminder.answer}"),
            who=reminder.answered_by or "",
            when=when,
        )
        if reminder.answer_reason:
            answered_line += "\n\n" + text(lang, "rm_reason_line", reason=reminder.answer_reason)
    open_ = answered_line is None and reminder.status in ("delivered", "escalated", "escalate", "pending")
    data = {"reminder": reminder.id}
    actions = []
    if kind.startswith("option"):
        actions.append(
            {
                "title": text(lang, "rm_extend_option"),
                "verb": "reminder.extend_option",
                "data": data,
                "style": "positive",
            }
        )
    actions += [
        {"title": text(lang, "rm_new_needs_report"), "verb": "reminder.new_needs_report", "data": data},
        {"title": text(lang, "rm_not_relevant"), "verb": "reminder.not_relevant", "data": data},
        {"title": text(lang, "rm_snooze"), "verb": "reminder.snooze", "data": data},
    ]
    return render_card(
        "reminder",
        lang,
        heading=heading,
        question=question,
        facts=facts,
        answered_line=answered_line,
        notice=notice,
        open=open_,
        reason=reason,
        reason_error=reason_error,
        actions=actions,
    )


def reminder_question(lang: str, reminder: ReminderView, contract: ContractView) -> str:
    """What the reminder asks, as plain text (the renderer escapes it once)."""
    kind = reminder.kind
    target = _d(reminder.target_date)
    if kind.startswith("option"):
        return text(lang, "rm_question_option", option=reminder.option_number or 1, target=target)
    if kind == "control":
        controls = contract.controls or []
        idx = reminder.control_index or 0
        control = controls[idx].get("description") or controls[idx].get("kind") if idx < len(controls) else ""
        return text(lang, "rm_question_control", control=control or "", target=target)
    if kind == "new_competition":
        return text(lang, "rm_question_new_competition", target=target)
    return text(lang, "rm_question_end", target=target)


def escalation_card(lang: str, reminder: ReminderView, contract: ContractView, reason: str) -> dict[str, Any]:
    body = text(lang, "rm_escalation_body", reason=reason, manager=contract.manager_email or "–")
    return render_card(
        "notice",
        lang,
        title=text(lang, "rm_escalation_heading", title=contract.title),
        body=body + "\n\n" + reminder_question(lang, reminder, contract),
    )


async def answer(s: Services, actor: Actor, data: dict[str, Any], answer_kind: str) -> Reply:
    lang = actor.lang
    raw_id = data.get("reminder")
    reminder_id = (
        raw_id if isinstance(raw_id, int) else int(raw_id) if isinstance(raw_id, str) and raw_id.isdigit() else -1
    )
    reason = as_text(data.get("reason"), 2000)
    outcome = await s.reminders.answer(actor, reminder_id, answer_kind, reason)
    if outcome.reason == "needs_reason":
        return Reply(
            card=reminder_card(
                lang, outcome.reminder, outcome.contract, reason=reason, reason_error=text(lang, "rm_needs_reason")
            )
        )
    if outcome.reason == "already_answered":
        return Reply(
            card=reminder_card(lang, outcome.reminder, outcome.contract, notice=text(lang, "rm_already_answered"))
        )
    reply = Reply(card=reminder_card(lang, outcome.reminder, outcome.contract), update_for_all=True)
    if answer_kind == "new_needs_report" and actor.in_personal_chat:
        form = await needs_report.open_form(s, actor, {}, prefill=needs_report_prefill(outcome.contract))
        assert form.card is not None
        reply.followups.append(form.card)
    return reply


def needs_report_prefill(contract: ContractView) -> dict[str, Any]:
    # The new contract starts the day after the old one ends and runs as long: a contract
    # 01.01.2023–31.12.2026 is 48 months (its end is inclusive).
    after = contract.end_date + timedelta(days=1)
    months = max(1, (after.year - contract.start_date.year) * 12 + after.month - contract.start_date.month)
    return {
        "title": f"Ny avtale: {contract.title}"[:120],
        "need": f"Avtalen {contract.external_ref} med {contract.supplier_name} utløper {_d(contract.end_date)}.",
        "category": contract.category,
        "agreement_type": contract.agreement_type,
        "estimated_value": format_nok(contract.value_nok, "nb").removesuffix(" kr") if contract.value_nok else "",
        "value_basis": f"Verdien av dagens avtale {contract.external_ref}.",
        "replaces_contract": contract.external_ref,
        "start_date": after.isoformat(),
        "duration_months": str(min(months, 240)),
    }
