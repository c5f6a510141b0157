"""The foundation through the real bot and the real Playground: welcome, help, language,
'coming soon', installs, unknown input. One bot + Playground for the module."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import KARI
from tests.e2e.playground import (
    PLAYGROUND_LABEL,
    BotMessage,
    Playground,
    button_titles,
    card_text,
    find_action,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

WELCOME_BUTTONS_NB = ["Ny behovsmelding", "Mine behovsmeldinger", "Mine kontrakter", "Meld avvik"]
WELCOME_BUTTONS_EN = ["New needs report", "My needs reports", "My contracts", "Report deviation"]


def assert_welcome_nb(message: BotMessage) -> None:
    card = message.card
    assert card is not None, message
    text = card_text(card)
    assert "Innkjøpsassistenten" in text
    assert "behovsmeldinger til Innkjøpsseksjonen" in text  # Norwegian, not English
    assert "Procurement" not in text
    assert button_titles(card) == WELCOME_BUTTONS_NB
    assert card.get("version") == "1.5"


def assert_welcome_en(message: BotMessage) -> None:
    card = message.card
    assert card is not None, message
    text = card_text(card)
    assert "Procurement assistant" in text
    assert "needs reports to the procurement section" in text
    assert button_titles(card) == WELCOME_BUTTONS_EN


async def kari_says(pg: Playground, text: str) -> None:
    await pg.send_text(pg.personal_chat_id, text)


async def next_card(pg: Playground, predicate: str | None = None) -> BotMessage:
    def is_card(message: BotMessage) -> bool:
        if message.card is None:
            return False
        if predicate is None:
            return True
        return predicate in message.all_text

    return await pg.next_message(is_card, conversation_id=pg.personal_chat_id)


async def test_hjelp_shows_the_norwegian_welcome_card(app_playground: Playground) -> None:
    pg = app_playground
    await kari_says(pg, "hjelp")
    reply = await next_card(pg)
    assert reply.from_id == pg.bot_id
    assert reply.text in (None, "")  # a card alone, so it can be updated later
    assert_welcome_nb(reply)
    # The Playground speaks en-US; that alone must not switch Kari to English.
    exchange = await pg.wait_for_exchange(
        lambda item: (
            item.get("from") == PLAYGROUND_LABEL
            and item.get("activityName") == "message"
            and "hjelp" in str(item["request"]["body"].get("text"))
        )
    )
    assert exchange["request"]["body"]["locale"] == "en-US"


async def test_meld_avvik_opens_the_deviation_form(app_playground: Playground) -> None:
    pg = app_playground
    await kari_says(pg, "hjelp")
    welcome = await next_card(pg, "Innkjøpsassistenten")
    assert find_action(welcome.card, "Meld avvik")["type"] == "Action.Execute"
    result = await pg.click(welcome, "Meld avvik")
    assert result is not None and result.card is not None
    text = card_text(result.card)
    assert "Steg 1 av 3: Hva og hvor" in text
    assert "Kommer snart" not in text
    # The typed command opens the same step (the draft the button started).
    await kari_says(pg, "meld avvik")
    typed = await next_card(pg, "Steg 1 av 3")
    assert "Meld avvik" in typed.all_text


async def test_language_switch_sticks_until_switched_back(app_playground: Playground) -> None:
    pg = app_playground
    await kari_says(pg, "language english")
    changed = await next_card(pg, "Language changed")
    assert "English" in changed.all_text
    assert_welcome_en(await next_card(pg))

    await kari_says(pg, "hjelp")  # the Norwegian word still works, the answer stays English
    assert_welcome_en(await next_card(pg))

    await kari_says(pg, "språk norsk")
    changed = await next_card(pg, "Språk endret")
    assert "norsk" in changed.all_text
    assert_welcome_nb(await next_card(pg))

    await kari_says(pg, "hjelp")
    assert_welcome_nb(await next_card(pg))


async def test_opening_the_personal_chat_greets_with_the_welcome_card(
    app_playground: Playground,
) -> None:
    pg = app_playground
    pg.drain()
    await pg.open_personal_chat()  # installationUpdate + conversationUpdate, as the web UI does
    assert_welcome_nb(await next_card(pg))
    # Teams sends both events on install; the user should be greeted once, not twice.
    await pg.expect_no_message(lambda m: m.card is not None, timeout=2.0, conversation_id=pg.personal_chat_id)


@pytest.mark.parametrize("text", ["asdf", '${x} {"a": "b"} **fett** 🚀'])
async def test_unknown_or_hostile_text_gets_the_help_card(app_playground: Playground, text: str) -> None:
    pg = app_playground
    await kari_says(pg, text)
    reply = await next_card(pg)
    assert_welcome_nb(reply)
    json.dumps(reply.card)  # a plain JSON card, nothing half-rendered
    assert "Noe gikk galt" not in reply.all_text


async def test_unknown_verb_gets_an_unknown_action_card(app_playground: Playground) -> None:
    pg = app_playground
    await kari_says(pg, "hjelp")
    welcome = await next_card(pg, "Innkjøpsassistenten")
    assert welcome.message_id
    # An old card's button: the verb is no longer known. Must be a card, not HTTP 502.
    result = await pg.invoke(pg.personal_chat_id, welcome.message_id, "old.removed_verb", {"x": "1"}, from_id=KARI)
    assert result.card is not None
    text = card_text(result.card)
    assert "Ukjent handling" in text
    assert "hjelp" in text
    assert pg.failed_exchanges() == []
