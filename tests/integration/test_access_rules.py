"""Who sees what, through the real HTTP app (issue 8, items 1, 3 and 4).

A needs report's content goes only to its submitter and innkjøpere, a guessed reference
tells nothing, personal commands stay out of group chats and channels, and contract prices
are shown only to innkjøpere and the contract's manager, only in a personal chat.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from procurement.contracts.model import ContractData, ContractOption
from procurement.store.tables import NeedsReport, Reminder
from tests.integration.bot_harness import (
    BOT_ID,
    INGRID,
    INTAKE,
    KARI,
    OLA,
    Bot,
    activity,
    texts_of,
    today,
    verbs_of,
)
from tests.integration.reminder_fixtures import contract_with_one_due

GROUP = "19:group-chat-kari-ola@thread.v2"
CHANNEL = "19:some-team-channel@thread.tacv2"
PRICE = "4 321 000"


async def _say_in(bot: Bot, text: str, conversation: str, conversation_type: str, *, user: str = KARI) -> list[Any]:
    before = len(bot.stub.cards(conversation))
    status, _ = await bot.post(
        activity(
            bot.stub.url,
            text=text,
            textFormat="plain",
            user=user,
            conversation=conversation,
            conversation_type=conversation_type,
        )
    )
    assert status in (200, 201, 202)
    return bot.stub.cards(conversation)[before:]


async def test_refresh_shows_the_report_only_to_submitter_and_innkjopere(bot: Bot) -> None:
    ref = await bot.submit_valid()
    report = await bot.report(ref)
    for user in (KARI, INGRID):
        card = await bot.invoke("needs_report.refresh", {"ref": ref}, user=user)
        assert report.title in texts_of(card), user
    refused = await bot.invoke("needs_report.refresh", {"ref": ref}, user=OLA)
    unknown = await bot.invoke("needs_report.refresh", {"ref": "BM-2099-9999"}, user=OLA)
    text = texts_of(refused)
    assert report.title not in text and ref not in text and report.data["need"] not in text
    # A guessed reference and a real one someone may not see answer exactly alike.
    assert texts_of(refused) == texts_of(unknown)
    assert verbs_of(refused) == []


async def test_withdraw_by_someone_else_reveals_nothing(bot: Bot) -> None:
    ref = await bot.submit_valid()
    card = await bot.invoke("needs_report.withdraw", {"ref": ref}, user=OLA)
    unknown = await bot.invoke("needs_report.withdraw", {"ref": "BM-2099-9999"}, user=OLA)
    assert texts_of(card) == texts_of(unknown)
    assert (await bot.report(ref)).status == "submitted"


@pytest.mark.parametrize("command", ["mine behovsmeldinger", "behovsmelding", "mine kontrakter", "ny kontrakt"])
@pytest.mark.parametrize(("conversation", "kind"), [(GROUP, "groupChat"), (CHANNEL, "channel")])
async def test_personal_commands_in_shared_conversations_say_continue_in_personal_chat(
    bot: Bot, command: str, conversation: str, kind: str
) -> None:
    await bot.submit_valid()  # she has a report whose title must not be shown to the others
    title = (await bot.rows(NeedsReport))[0].title
    user = INGRID if command == "ny kontrakt" else KARI
    cards = await _say_in(bot, command, conversation, kind, user=user)
    assert len(cards) == 1
    text = texts_of(cards[0])
    assert "Fortsett i personlig chat" in text
    assert title not in text and "BM-" not in text
    urls = [a.get("url", "") for a in cards[0].get("actions", [])]
    assert urls == [f"https://teams.microsoft.com/l/chat/0/0?users={BOT_ID}"]


async def test_bot_added_to_a_channel_posts_no_personal_welcome(bot: Bot) -> None:
    before = len(bot.stub.cards(CHANNEL))
    act = activity(
        bot.stub.url,
        "conversationUpdate",
        user=INGRID,
        conversation=CHANNEL,
        conversation_type="channel",
        membersAdded=[{"id": BOT_ID}],
    )
    status, _ = await bot.post(act)
    assert status in (200, 201, 202)
    cards = bot.stub.cards(CHANNEL)[before:]
    assert len(cards) == 1
    text = texts_of(cards[0])
    assert "Innkjøpsassistenten er lagt til" in text
    assert "needs_report.open" not in verbs_of(cards[0]) and "Ny behovsmelding" not in text


async def _contract(bot: Bot) -> None:
    await bot.runtime.services.contracts.upsert_contract(
        ContractData(
            external_ref="RA-2025-099",
            supplier_name="Renhold Øst AS",
            title="Rammeavtale renhold",
            category="services",
            start_date=today() - timedelta(days=100),
            end_date=today() + timedelta(days=600),
            agreement_type="framework",
            value_nok=4_321_000,
            internal_notes="Hemmelig prisnotat",
        ),
        source="test",
    )


@pytest.mark.parametrize(
    ("user", "conversation", "kind", "sees_price"),
    [
        (INGRID, None, "personal", True),
        (INGRID, INTAKE, "channel", False),
        (INGRID, GROUP, "groupChat", False),
        (OLA, None, "personal", False),
        (OLA, GROUP, "groupChat", False),
    ],
)
async def test_find_contract_shows_prices_only_to_the_entitled_in_personal_chat(
    bot: Bot, user: str, conversation: str | None, kind: str, sees_price: bool
) -> None:
    await _contract(bot)
    for command in ("finn kontrakt renhold.", "find contract renhold"):
        if conversation is None:
            cards = await bot.say(command, user=user)
        else:
            cards = await _say_in(bot, command, conversation, kind, user=user)
        assert len(cards) == 1
        text = texts_of(cards[0])
        assert "Rammeavtale renhold" in text and "Renhold Øst AS" in text
        assert (PRICE in text) is sees_price, (user, kind, command)
        assert ("Hemmelig prisnotat" in text) is sees_price


@pytest.mark.parametrize("user", [INGRID, OLA])
async def test_typeahead_never_carries_prices(bot: Bot, user: str) -> None:
    await _contract(bot)
    act = activity(
        bot.stub.url,
        "invoke",
        user=user,
        name="application/search",
        value={"dataset": "contracts", "queryText": "renhold", "queryOptions": {"top": 5}},
    )
    status, body = await bot.post(act)
    assert status == 200
    results = body["value"]["results"]
    assert results == [{"title": "Rammeavtale renhold – Renhold Øst AS (RA-2025-099)", "value": "RA-2025-099"}]


@pytest.mark.parametrize("verb", ["reminder.snooze", "reminder.extend_option", "reminder.not_relevant"])
async def test_a_reminder_is_answered_only_by_its_manager_or_innkjopere(bot: Bot, verb: str) -> None:
    data = contract_with_one_due(
        "KAV-77", 1, options=[ContractOption(number=1, months=12, notice_deadline=today() + timedelta(days=60))]
    )
    data = dataclasses.replace(data, manager_aad_id=KARI, manager_email="")
    await bot.runtime.services.contracts.upsert_contract(data, source="test")
    reminder = (await bot.rows(Reminder))[0]
    refused = await bot.invoke(verb, {"reminder": reminder.id, "reason": "x"}, user=OLA)
    unknown = await bot.invoke(verb, {"reminder": 999_999, "reason": "x"}, user=OLA)
    text = texts_of(refused)
    assert texts_of(refused) == texts_of(unknown)
    assert "KAV-77" not in text and "Leverandør" not in text
    assert (await bot.rows(Reminder, Reminder.id == reminder.id))[0].answer is None
    # The manager may (as may an innkjøper).
    answered = await bot.invoke(verb, {"reminder": reminder.id, "reason": "ny avtale på plass"}, user=KARI)
    assert "KAV-77" in texts_of(answered)
