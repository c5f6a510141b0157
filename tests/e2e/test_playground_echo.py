"""The harness against the echo bot: real bot process, real Playground, no mocks."""

from __future__ import annotations

import json

import pytest

from tests.e2e.playground import BotProcess, Playground, card_text, find_action

KARI = "00000000-0000-4000-8000-0000000000a2"
INGRID = "00000000-0000-4000-8000-0000000000a1"
NINA = "00000000-0000-4000-8000-0000000000a6"


async def test_config_is_the_municipality(echo_playground: Playground) -> None:
    pg = echo_playground
    config = (await pg.config())["config"]
    assert config["tenantId"] == "6f1a2b3c-0000-4000-8000-000000000001"
    assert pg.bot_name == "Innkjøpsassistenten"
    assert pg.user().get("aadObjectId") == KARI
    assert {u["aadObjectId"][-2:] for u in pg.users} == {"a1", "a2", "a3", "a4", "a5", "a6"}
    assert pg.team["name"] == "Innkjøp"
    assert pg.channel_id("Behovsmeldinger") == "19:innkjop-behovsmeldinger@thread.tacv2"
    assert pg.channel_id("Generelt") == pg.team_id == "19:innkjop-generelt@thread.tacv2"


async def test_kari_personal_chat_echo(echo_playground: Playground) -> None:
    pg = echo_playground
    sent = await pg.send_text(pg.personal_chat_id, "hei", from_id=KARI)
    assert sent["messageId"]
    reply = await pg.next_message("echo: hei", conversation_id=pg.personal_chat_id)
    assert reply.text == "echo: hei"
    assert reply.from_id == pg.bot_id
    assert reply.event == "createMessage"
    assert reply.source == "conversation"
    assert pg.failed_exchanges() == []


async def test_second_user_in_own_personal_chat(echo_playground: Playground) -> None:
    pg = echo_playground
    chat = await pg.personal_chat("Ingrid Haugen")
    assert chat != pg.personal_chat_id
    assert await pg.personal_chat(INGRID) == chat  # stable within a run
    activity = await pg.send_text(chat, "hei fra Ingrid", from_id=INGRID)
    assert activity["from"]["aadObjectId"] == INGRID
    reply = await pg.next_message("echo: hei fra Ingrid", conversation_id=chat)
    assert reply.source == "log"  # the conversation websocket hides other users' chats
    assert reply.message_id
    with pytest.raises(ValueError, match="personal chat"):
        await pg.send_text(pg.personal_chat_id, "hei", from_id=INGRID)


async def test_team_channel_and_group_chat(echo_playground: Playground) -> None:
    pg = echo_playground
    intake = pg.channel_id("Behovsmeldinger")
    posted = await pg.send_text(intake, "hei kanal")  # @mentions the bot by default
    thread = posted["postConversationId"]
    assert thread == f"{intake};messageid={posted['messageId']}"
    reply = await pg.next_message("echo: hei kanal", conversation_id=intake)
    assert reply.conversation_id == thread

    await pg.send_text(thread, "svar i tråd")
    reply = await pg.next_message("echo: svar i tråd", conversation_id=thread)
    assert reply.conversation_id == thread

    # Another team member posting in the channel (custom activity: the message API
    # would attribute it to the current user).
    await pg.send_text(intake, "hei fra Nina", from_id=NINA)
    reply = await pg.next_message("echo: hei fra Nina", conversation_id=intake)
    assert reply.post_conversation_id and reply.post_conversation_id.startswith(intake)

    await pg.send_text(pg.group_chat_id, "hei gruppe")
    await pg.next_message("echo: hei gruppe", conversation_id=pg.group_chat_id)
    await pg.send_text(pg.group_chat_id, "ingen omtale", mention_bot=False)
    await pg.expect_no_message(conversation_id=pg.group_chat_id, timeout=1.5)


async def test_card_execute_and_submit(echo_playground: Playground) -> None:
    pg = echo_playground
    await pg.send_text(pg.personal_chat_id, "card")
    message = await pg.next_message(lambda m: m.card is not None)
    assert "echo card" in card_text(message.card)
    assert "Bot: echo" in message.all_text
    assert find_action(message.card, "echo.execute")["type"] == "Action.Execute"

    result = await pg.click(message, "Execute", {"note": "notat"})
    assert result is not None and result.card is not None
    assert 'echo: execute echo.execute {"note": "notat", "source": "card"}' in card_text(result.card)

    assert await pg.click(message, "Submit", {"note": "n2"}, from_id=KARI) is None
    reply = await pg.next_message("echo: submit")
    assert json.loads((reply.text or "").removeprefix("echo: submit ")) == {
        "note": "n2",
        "verb": "echo.submit",
    }

    # Raw calls with a second user in the group chat: invoke and submit carry from.id.
    await pg.send_text(pg.group_chat_id, "card")
    group_card = await pg.next_message(lambda m: m.card is not None, conversation_id=pg.group_chat_id)
    assert group_card.message_id
    result = await pg.invoke(pg.group_chat_id, group_card.message_id, "echo.execute", {"x": "1"}, from_id=INGRID)
    assert result.type == "application/vnd.microsoft.card.adaptive"
    assert "echo.execute" in card_text(result.card)
    exchange = next(item for item in reversed(pg.log_items) if item.get("activityName") == "invoke")
    assert exchange["request"]["body"]["from"]["aadObjectId"] == INGRID


async def test_update_in_place(echo_playground: Playground) -> None:
    pg = echo_playground
    await pg.send_text(pg.personal_chat_id, "update")
    first = await pg.next_message("echo: update v1")
    edited = await pg.next_message("echo: update v2", event="updateMessage")
    assert edited.message_id == first.message_id


async def test_custom_activities(echo_playground: Playground) -> None:
    pg = echo_playground
    await pg.open_personal_chat()  # as the web UI does on page load
    await pg.next_message("echo: installationUpdate add")
    await pg.next_message(f"echo: conversationUpdate added=29:kari-nordmann-a2,{pg.bot_id}")

    sent = await pg.custom_activity("install", pg.personal_chat_id)
    assert sent["type"] == "installationUpdate"
    await pg.next_message("echo: installationUpdate add")

    await pg.custom_activity("userAdded", pg.team_id, from_id=INGRID, membersAdded=[pg.account("Nina")])
    reply = await pg.next_message("echo: conversationUpdate added=29:nina-olsen-a6")
    assert reply.in_conversation(pg.team_id)

    await pg.custom_activity("botAdded", pg.channel_id("Behovsmeldinger"))
    await pg.next_message(f"added={pg.bot_id}")


async def test_bot_restart_keeps_playground(echo_bot: BotProcess, echo_playground: Playground) -> None:
    pg = echo_playground
    await echo_bot.restart()
    await pg.send_text(pg.personal_chat_id, "etter omstart")
    await pg.next_message("echo: etter omstart")
