"""Issue 9 over HTTP: a contract's reminders that fall due together come as one card (a line
each, one set of buttons) and an answer applies to all of them; an escalation is one card per
contract in the follow-up channel whose buttons work — assign another avtaleforvalter (who
then gets the reminders), mark as handled (the card is updated for everyone), open the
contract — for innkjøpere only."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from procurement.contracts.model import ContractOption
from procurement.store.tables import AuditEntry, Contract, Reminder
from tests.connector_stub import adaptive_cards
from tests.integration.bot_harness import INGRID, KARI, KARI_CHAT, OLA, OLA_CHAT, Bot, BotFactory, texts_of, today
from tests.integration.reminder_fixtures import FOLLOWUP_CHANNEL, contract_with_one_due, reminder_ids_of, seed_people


@pytest.fixture
async def rbot(start_bot: BotFactory, new_database: Callable[[str], Awaitable[str]]) -> Bot:
    b = await start_bot(
        await new_database("sqlite"), FOLLOWUP_CHANNEL_ID=FOLLOWUP_CHANNEL, REMINDER_WORKING_HOURS="always"
    )
    for user in (KARI, OLA, INGRID):
        await b.say("hei", user=user)
    await seed_people(b.store, b.stub.url, ["00000000-0000-0000-0000-00000000dead"])  # the channel's reference
    return b


async def _contract(bot: Bot, ref: str, *, option_in_days: int = 60, end_in_days: int = 100) -> None:
    option = ContractOption(number=1, months=12, notice_deadline=today() + timedelta(days=option_in_days))
    data = contract_with_one_due(ref, 1, options=[option], end_in_days=end_in_days)
    data = dataclasses.replace(data, manager_aad_id=KARI, manager_email="kari.nordmann@kommune.example.no")
    await bot.runtime.services.contracts.upsert_contract(data, source="test")


async def _reminders(bot: Bot, ref: str) -> dict[str, Reminder]:
    async with bot.store.session() as session:
        rows = await session.scalars(
            sa.select(Reminder).join(Contract, Contract.id == Reminder.contract_id).where(Contract.external_ref == ref)
        )
        return {r.subject_key.split(":", 1)[1]: r for r in rows}


async def _contract_row(bot: Bot, ref: str) -> Contract:
    (row,) = await bot.rows(Contract, Contract.external_ref == ref)
    return row


def _verbs(card: dict[str, Any]) -> list[str]:
    return [a["verb"] for a in card.get("actions", [])]


async def test_due_reminders_of_one_contract_come_as_one_card_and_one_answer_declines_the_option(rbot: Bot) -> None:
    bot = rbot
    await _contract(bot, "KAV-10")
    due = [r for r in (await _reminders(bot, "KAV-10")).values() if r.status == "pending" and r.due_date <= today()]
    assert sorted(r.kind for r in due) == ["end_6m", "option_notice_3m"]

    await bot.runtime.reminder_worker.run_once()
    (card,) = bot.stub.cards(KARI_CHAT)[-1:]
    activities = [a for a in bot.stub.activities(KARI_CHAT) if adaptive_cards(a)]
    assert sum(1 for a in activities if reminder_ids_of(adaptive_cards(a)[0])) == 1, "one activity"
    assert reminder_ids_of(card) == {r.id for r in due}
    text = texts_of(card)
    end, notice = contract_with_one_due("KAV-10", 1).end_date, today() + timedelta(days=60)
    assert f"Avtalen utløper {end:%d.%m.%Y}, om 3 måneder" in text
    assert f"Fristen for å utløse opsjon 1 er {notice:%d.%m.%Y}, om" in text
    assert "Skal opsjon 1 utløses?" in text and "Trengs en ny avtale?" not in text  # one question
    verbs = _verbs(card)
    assert verbs == ["reminder.extend_option", "reminder.new_needs_report", "reminder.not_relevant", "reminder.snooze"]
    rows = await _reminders(bot, "KAV-10")
    activity_ids = {rows[k].activity_id for k in rows if rows[k].status == "delivered"}
    assert len(activity_ids) == 1 and None not in activity_ids, "the card's reminders share its message id"

    data = next(a["data"] for a in card["actions"] if a["verb"] == "reminder.not_relevant")
    refused = await bot.invoke("reminder.not_relevant", {**data, "reason": ""}, user=KARI, replyToId="card-1")
    assert "Skriv en kort begrunnelse" in texts_of(refused)
    answered = await bot.invoke(
        "reminder.not_relevant", {**data, "reason": "Avtalen fases ut"}, user=KARI, replyToId="card-1"
    )
    assert "ikke aktuelt" in texts_of(answered) and not answered.get("actions")

    rows = await _reminders(bot, "KAV-10")
    assert {rows[k].status for k in rows if rows[k].id in {r.id for r in due}} == {"answered"}
    option_1m = next(r for k, r in rows.items() if k.startswith("option_notice_1m"))
    end_3m = next(r for k, r in rows.items() if k.startswith("end_3m"))
    assert option_1m.status == "cancelled", "the declined option's other reminder goes"
    assert end_3m.status == "pending", "the end's reminders continue"
    option = (await _contract_row(bot, "KAV-10")).options[0]
    assert option["exercised"] is False and option["decision_reason"] == "Avtalen fases ut"
    assert option["decided_by"] == "Kari Nordmann"
    actions = [a.action for a in await bot.audit("KAV-10")]
    assert "contract.option_declined" in actions


async def test_exercising_the_option_moves_the_end_and_cancels_the_old_ends_reminders(rbot: Bot) -> None:
    bot = rbot
    await _contract(bot, "KAV-11")
    await bot.runtime.reminder_worker.run_once()
    card = bot.stub.cards(KARI_CHAT)[-1]
    old_end = (await _contract_row(bot, "KAV-11")).end_date
    data = next(a["data"] for a in card["actions"] if a["verb"] == "reminder.extend_option")
    answered = await bot.invoke("reminder.extend_option", data, user=KARI, replyToId="card-2")
    assert "opsjonen utløses" in texts_of(answered)
    row = await _contract_row(bot, "KAV-11")
    assert row.end_date > old_end and row.options[0]["exercised"] is True
    rows = await _reminders(bot, "KAV-11")
    old = [r for k, r in rows.items() if k.endswith(old_end.isoformat()) and r.id not in reminder_ids_of(card)]
    assert old and {r.status for r in old} == {"cancelled"}
    assert any(k.endswith(row.end_date.isoformat()) and r.status == "pending" for k, r in rows.items())


async def test_escalation_card_per_contract_with_three_working_buttons_for_innkjopere_only(rbot: Bot) -> None:
    bot = rbot
    await _contract(bot, "KAV-20")
    await _contract(bot, "KAV-21")
    bot.stub.block(KARI_CHAT)  # Kari blocked the app: her reminders escalate
    await bot.runtime.reminder_worker.run_once()
    cards = bot.stub.cards(FOLLOWUP_CHANNEL)
    assert len(cards) == 2, "one card per contract, each with both reminders"
    by_ref = {("KAV-20" if "KAV-20" in texts_of(c) else "KAV-21"): c for c in cards}
    card = by_ref["KAV-20"]
    text = texts_of(card)
    assert "Kari Nordmann har blokkert appen" in text and "kari.nordmann@" not in text
    assert text.count("har blokkert appen") == 2
    assert _verbs(card) == ["reminder.assign_manager", "reminder.escalation_handled", "reminder.open_contract"]
    data = card["actions"][0]["data"]
    in_channel = {"conversation": FOLLOWUP_CHANNEL, "conversation_type": "channel", "replyToId": "esc-1"}

    # Not an innkjøper: refused, nothing learnt or changed.
    for verb in ("reminder.assign_manager", "reminder.escalation_handled", "reminder.open_contract"):
        refused = await bot.invoke(verb, {**data, "manager": "Ola Hansen"}, user=OLA, **in_channel)
        assert "KAV-20" not in texts_of(refused)
    assert (await _contract_row(bot, "KAV-20")).manager_aad_id == KARI

    # Open the contract: the contract card for the presser, with a way back.
    opened = await bot.invoke("reminder.open_contract", data, user=INGRID, **in_channel)
    assert "KAV-20" in texts_of(opened) and "Leverandør KAV-20 AS" in texts_of(opened)
    assert _verbs(opened) == ["reminder.escalation_view"]

    # Assign another avtaleforvalter (typed, as in local mode): Ola gets the reminders, as one card.
    unknown = await bot.invoke("reminder.assign_manager", {**data, "manager": "Nils Nobody"}, user=INGRID, **in_channel)
    assert "Fant ingen «Nils Nobody»" in texts_of(unknown)
    assigned = await bot.invoke("reminder.assign_manager", {**data, "manager": "Ola Hansen"}, user=INGRID, **in_channel)
    assert "Ola Hansen er ny avtaleforvalter" in texts_of(assigned)
    assert _verbs(assigned) == ["reminder.open_contract"]
    assert (await _contract_row(bot, "KAV-20")).manager_aad_id == OLA
    assert any(u.activity.get("id") == "esc-1" for u in bot.stub.updates), "updated for everyone"
    await bot.runtime.reminder_worker.run_once()
    ola_cards = [c for c in bot.stub.cards(OLA_CHAT) if reminder_ids_of(c)]
    assert len(ola_cards) == 1 and reminder_ids_of(ola_cards[0]) == set(data["reminders"])

    # Mark the other contract's escalation handled: updated in place for everyone, recorded.
    other = by_ref["KAV-21"]["actions"][1]["data"]
    handled = await bot.invoke(
        "reminder.escalation_handled",
        other,
        user=INGRID,
        conversation=FOLLOWUP_CHANNEL,
        conversation_type="channel",
        replyToId="esc-2",
    )
    assert "Håndtert av Ingrid Innkjøper" in texts_of(handled) and _verbs(handled) == ["reminder.open_contract"]
    assert any(u.activity.get("id") == "esc-2" for u in bot.stub.updates)
    again = await bot.invoke(
        "reminder.escalation_handled",
        other,
        user=INGRID,
        conversation=FOLLOWUP_CHANNEL,
        conversation_type="channel",
        replyToId="esc-2",
    )
    assert "allerede fulgt opp" in texts_of(again)
    async with bot.store.session() as session:
        audit = list(await session.scalars(sa.select(AuditEntry.action)))
    assert "reminder.escalation_handled" in audit and "contract.manager_assigned" in audit
