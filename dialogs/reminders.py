"""Reminder cards and answers (the avtaleforvalter), and escalation cards and their follow-up
(Innkjøpsseksjonen's channel).

A card shows one contract's reminders: a line per reminder with its date and the real time
left (`procurement.reminders.wording`), one question and one set of buttons that answer them
all. An escalation card likewise shows one contract: the avtaleforvalter by name, each
reminder's plain reason, and what an innkjøper can do (assign another avtaleforvalter, mark
it handled, open the contract).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from cards.render import render_card
from cards.strings import text
from procurement.access import Actor
from procurement.contracts.service import ContractView
from procurement.errors import EscalationReason
from procurement.reminders.service import (
    MAX_GROUP,
    FollowUp,
    ReminderView,
    is_open,
    open_option,
    parse_reminder_ids,
)
from procurement.reminders.wording import distance
from procurement.shared.dates import format_date, format_datetime
from procurement.shared.money import format_nok

from . import needs_report
from .base import Reply, as_text
from .contracts import contract_facts
from .services import Services

_d = format_date


# -- the words ------------------------------------------------------------------------------


def when(lang: str, today: date, target: date) -> str:
    """ "om 2 måneder", "i morgen", "for 3 dager siden" — from the dates."""
    d = distance(today, target)
    return text(lang, d.catalog_key, n=d.count)


def reminder_line(lang: str, reminder: ReminderView, contract: ContractView, today: date) -> str:
    """One reminder's fact with its date and the time left: "Avtalen utløper 31.01.2027, om 2 måneder"."""
    target = reminder.target_date
    past = "_past" if target < today else ""
    fmt: dict[str, Any] = {"date": _d(target), "when": when(lang, today, target)}
    kind = reminder.kind
    if kind.startswith("option"):
        return text(lang, f"rm_line_option{past}", option=reminder.option_number or 1, **fmt)
    if kind == "control":
        controls = contract.controls or []
        idx = reminder.control_index or 0
        control = (controls[idx].get("description") or controls[idx].get("kind")) if idx < len(controls) else ""
        return text(lang, f"rm_line_control{past}", control=control or "", **fmt)
    return text(lang, f"rm_line_end{past}", **fmt)


def _lines(lang: str, reminders: list[ReminderView], contract: ContractView, today: date) -> list[str]:
    lines: list[str] = []
    for r in sorted(reminders, key=lambda r: (r.target_date, r.id)):
        line = reminder_line(lang, r, contract, today)
        if line not in lines:  # the 12- and 6-month reminders of one end say the same
            lines.append(line)
    return lines


def reminder_question(lang: str, reminders: list[ReminderView]) -> str:
    """The one question a card asks, from what is on it: an undecided option first (its
    answer decides whether a new contract is needed), then a new competition, the end,
    a control."""
    option = open_option(reminders)
    kinds = {r.kind for r in reminders}
    if option is not None:
        return text(lang, "rm_ask_option", option=option)
    if "new_competition" in kinds:
        return text(lang, "rm_ask_new_competition")
    if kinds & {"end_6m", "end_3m"}:
        return text(lang, "rm_ask_end")
    return text(lang, "rm_ask_control")


def _ids(data: dict[str, Any]) -> list[int]:
    """The card's reminder ids: `reminders` (a list), or `reminder` (one, as cards posted
    before merging carry). Only selectors: the service checks each against the actor."""
    raw = data.get("reminders")
    values: list[object] = list(raw[:MAX_GROUP]) if isinstance(raw, list) else []
    if not values and "reminder" in data:
        values = [data.get("reminder")]
    return parse_reminder_ids(values)


# -- the avtaleforvalter's card ---------------------------------------------------------------


def reminder_card(
    lang: str,
    reminders: list[ReminderView],
    contract: ContractView,
    today: date,
    *,
    notice: str | None = None,
    reason_error: str | None = None,
    reason: str = "",
    asking: bool = False,
) -> dict[str, Any]:
    """The card for one contract's reminders. `asking`: the worker (re)sends it, so a snoozed
    group asks afresh instead of showing the snooze."""
    reminders = sorted(reminders, key=lambda r: (r.target_date, r.id))
    lines = _lines(lang, reminders, contract, today)
    heading = text(lang, "rm_heading", title=contract.title, line=lines[0].rstrip(".") if lines else "")
    facts = [
        {"title": text(lang, "ct_fact_ref"), "value": contract.external_ref},
        {"title": text(lang, "ct_fact_supplier"), "value": contract.supplier_name},
        {"title": text(lang, "ct_fact_period"), "value": f"{_d(contract.start_date)} – {_d(contract.end_date)}"},
    ]
    answered = next((r for r in reminders if r.answer), None)
    answered_line = None
    still_open = [r for r in reminders if is_open(r)]
    snoozed = bool(still_open) and all(r.answer == "snooze" and r.status == "pending" for r in still_open)
    if answered is not None and (not still_open or (snoozed and not asking)):
        at = format_datetime(answered.answered_at) if answered.answered_at else ""
        answered_line = text(
            lang,
            "rm_answered",
            answer=text(lang, f"rm_answer_{answered.answer}"),
            who=answered.answered_by or "",
            when=at,
        )
        if answered.answer_reason:
            answered_line += "\n\n" + text(lang, "rm_reason_line", reason=answered.answer_reason)
    open_ = answered_line is None and bool(still_open)
    if not still_open and answered is None:
        notice = notice or text(lang, "rm_no_longer_current")
    data = {"reminders": [r.id for r in reminders]}
    actions = []
    if open_option(still_open) is not None:
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
        lines=lines,
        question=reminder_question(lang, still_open or reminders),
        facts=facts,
        answered_line=answered_line,
        notice=notice,
        open=open_,
        reason=reason,
        reason_error=reason_error,
        actions=actions,
    )


async def answer(s: Services, actor: Actor, data: dict[str, Any], answer_kind: str) -> Reply:
    lang = actor.lang
    reason = as_text(data.get("reason"), 2000)
    outcome = await s.reminders.answer(actor, _ids(data) or [-1], answer_kind, reason)
    today = s.today()
    if outcome.reason == "needs_reason":
        return Reply(
            card=reminder_card(
                lang,
                outcome.reminders,
                outcome.contract,
                today,
                reason=reason,
                reason_error=text(lang, "rm_needs_reason"),
            )
        )
    if outcome.reason == "already_answered":
        return Reply(
            card=reminder_card(
                lang, outcome.reminders, outcome.contract, today, notice=text(lang, "rm_already_answered")
            )
        )
    if outcome.reason == "no_longer_current":
        return Reply(card=reminder_card(lang, outcome.reminders, outcome.contract, today))
    reply = Reply(card=reminder_card(lang, outcome.reminders, outcome.contract, today), update_for_all=True)
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


# -- escalations (Innkjøpsseksjonen) -----------------------------------------------------------


def _reason_text(lang: str, reason: EscalationReason, manager: str) -> str:
    return text(lang, reason.catalog_key, ref=reason.ref or "–", name=manager)


def escalation_card(
    lang: str,
    reminders: list[ReminderView],
    contract: ContractView,
    today: date,
    *,
    people_picker: bool = False,
    notice: str | None = None,
    manager_error: str | None = None,
    manager: str = "",
    status_line: str | None = None,
    posting: bool = False,
) -> dict[str, Any]:
    """One card per contract: number, title, the avtaleforvalter by name, a line per
    reminder with its plain reason, and the follow-up buttons while any reminder waits.
    `posting`: the worker posts it now (its reminders are being escalated, not yet marked)."""
    reminders = sorted(reminders, key=lambda r: (r.target_date, r.id))
    who = contract.manager_display or text(lang, "rm_esc_no_manager")
    lines = []
    for r in reminders:
        line = reminder_line(lang, r, contract, today).rstrip(".")
        why = _reason_text(lang, EscalationReason.parse(r.escalation_reason), who)
        state = "" if posting else _state(lang, r, contract)
        lines.append(text(lang, "rm_esc_line", line=line, reason=why) + (f" {state}" if state else ""))
    waiting = reminders if posting else [r for r in reminders if r.status == "escalated" and r.answer is None]
    data = {"reminders": [r.id for r in reminders], "contract": contract.external_ref}
    actions: list[dict[str, Any]] = []
    if waiting:
        actions += [
            {"title": text(lang, "rm_esc_assign"), "verb": "reminder.assign_manager", "data": data},
            {"title": text(lang, "rm_esc_handled"), "verb": "reminder.escalation_handled", "data": data},
        ]
    actions.append({"title": text(lang, "rm_esc_open"), "verb": "reminder.open_contract", "data": data})
    if status_line is None and not waiting:
        status_line = text(lang, "rm_esc_closed")
    return render_card(
        "escalation",
        lang,
        heading=text(lang, "rm_esc_heading", title=contract.title, ref=contract.external_ref),
        facts=[
            {"title": text(lang, "ct_fact_ref"), "value": contract.external_ref},
            {"title": text(lang, "rm_esc_fact_title"), "value": contract.title},
            {"title": text(lang, "ct_fact_supplier"), "value": contract.supplier_name},
            {"title": text(lang, "ct_fact_manager"), "value": who},
        ],
        lines=lines,
        status_line=status_line,
        notice=notice,
        open=bool(waiting),
        people_picker=people_picker,
        manager=manager,
        manager_error=manager_error,
        actions=actions,
    )


def _state(lang: str, r: ReminderView, contract: ContractView) -> str:
    """What became of an escalated reminder since, in brackets ("" while it waits)."""
    at = _d(r.answered_at.date()) if r.answered_at else ""
    if r.answer == "handled":
        return text(lang, "rm_esc_state_handled", who=r.answered_by or "", date=at)
    if r.status == "cancelled":
        return text(lang, "rm_esc_state_cancelled")
    if r.answer and r.answer != "snooze":
        return text(lang, "rm_esc_state_answered", answer=text(lang, f"rm_answer_{r.answer}"), who=r.answered_by or "")
    if r.status != "escalated":
        return text(lang, "rm_esc_state_resent", name=contract.manager_display)
    return ""


def _escalation_reply(
    s: Services, actor: Actor, outcome: FollowUp, *, update_for_all: bool = False, **kw: Any
) -> Reply:
    card = escalation_card(
        actor.lang, outcome.reminders, outcome.contract, s.today(), people_picker=s.people_picker, **kw
    )
    return Reply(card=card, update_for_all=update_for_all)


async def escalation_handled(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    outcome = await s.reminders.mark_handled(actor, _ids(data) or [-1])
    lang = actor.lang
    if not outcome.changed:
        return _escalation_reply(s, actor, outcome, notice=text(lang, "rm_esc_already_closed"))
    status = text(lang, "rm_esc_handled_by", who=actor.name or "", date=_d(s.today()))
    return _escalation_reply(s, actor, outcome, update_for_all=True, status_line=status)


async def assign_manager(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    lang = actor.lang
    typed = as_text(data.get("manager"), 300)
    ids = _ids(data) or [-1]
    if not typed.strip():
        outcome = await s.reminders.escalation(actor, ids)
        return _escalation_reply(s, actor, outcome, manager_error=text(lang, "rm_esc_manager_missing"))
    outcome = await s.reminders.assign_manager(actor, ids, typed)
    if outcome.reason == "unknown_person":
        return _escalation_reply(
            s, actor, outcome, manager=typed, manager_error=text(lang, "rm_esc_manager_unknown", typed=typed)
        )
    if not outcome.changed:
        return _escalation_reply(s, actor, outcome, notice=text(lang, "rm_esc_already_closed"))
    person = outcome.assigned
    name = (person.name or person.email or person.aad_id) if person else ""
    status = text(lang, "rm_esc_assigned", name=name, who=actor.name or "", date=_d(s.today()))
    return _escalation_reply(s, actor, outcome, update_for_all=True, status_line=status)


async def open_contract(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    """The contract card, for the innkjøper who pressed (the channel's card stays as it is
    for everyone else), with a way back to the escalation."""
    outcome = await s.reminders.escalation(actor, _ids(data) or [-1])
    lang = actor.lang
    # Read as the innkjøper sees it here: in the channel without prices (they are not public).
    view = await s.contracts.view_for(actor, outcome.contract.external_ref)
    back = {"reminders": [r.id for r in outcome.reminders], "contract": view.external_ref}
    card = render_card(
        "contract_list",
        lang,
        heading=text(lang, "rm_esc_contract_heading", ref=view.external_ref),
        intro=None if view.value_nok is not None else text(lang, "ct_search_limited"),
        empty="",
        items=[{"title": view.title, "facts": contract_facts(lang, view)}],
        actions=[{"title": text(lang, "rm_esc_back"), "verb": "reminder.escalation_view", "data": back}],
    )
    return Reply(card=card)


async def escalation_view(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    """Back from the contract card to the escalation as it stands now."""
    outcome = await s.reminders.escalation(actor, _ids(data) or [-1])
    return _escalation_reply(s, actor, outcome)
