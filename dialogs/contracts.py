"""Contracts: 'mine kontrakter', search and the new-contract card (reminders: dialogs/reminders.py)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from cards.render import render_card
from cards.strings import text
from procurement.access import Actor, NotFound
from procurement.contracts.access import POLICY as CONTRACTS_POLICY
from procurement.contracts.form import CONTRACT_FORM_FIELDS, validate_contract_form
from procurement.contracts.service import CompetitionInfo, CompetitionTaken, ContractView
from procurement.needs.agreements import default_cpv_names
from procurement.shared.calendar import add_months
from procurement.shared.dates import format_date
from procurement.shared.money import format_nok

from . import home
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
    if view.cpv_codes:
        facts.append({"title": text(lang, "ct_fact_cpv"), "value": _cpv_list(lang, view.cpv_codes)})
    if view.scope:
        facts.append({"title": text(lang, "ct_fact_scope"), "value": view.scope[:300]})
    if view.value_nok is not None:
        facts.append({"title": text(lang, "ct_fact_value"), "value": format_nok(view.value_nok, lang)})
        facts.append({"title": text(lang, "ct_fact_manager"), "value": view.manager_display or "–"})
        facts.append({"title": text(lang, "ct_fact_risk"), "value": text(lang, f"ct_risk_{view.risk_level}")})
        if view.archive_case_no:
            facts.append({"title": text(lang, "ct_fact_case"), "value": view.archive_case_no})
        if view.internal_notes:
            facts.append({"title": text(lang, "ct_fact_notes"), "value": view.internal_notes})
    return facts


def _cpv_list(lang: str, codes: tuple[str, ...]) -> str:
    """ "33192000 Medisinske møbler, 39143110" (a code without a shipped name shows its digits)."""
    names = default_cpv_names()
    return ", ".join(f"{code} {names.name(code, lang)}".strip() for code in codes[:5]) + (
        " …" if len(codes) > 5 else ""
    )


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
        "value_nok": format_nok(c.estimated_value, "nb").removesuffix(" kr") if c.estimated_value else "",
        # What the need was for: the register's coverage matching reads CPV and scope.
        "cpv": str(form.get("cpv") or ""),
        "scope": str(form.get("need") or "")[:500],
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
