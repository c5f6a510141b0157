"""«Be om mer informasjon» clicked through two Playground web clients in Chromium (issue 9.2):
Ingrid (innkjøper) presses it without a question and is told at the field; she asks; Kari
(the submitter) gets the question in her chat, answers (an empty answer is refused at the
field); the answer appears on the intake card in Ingrid's client, the report is back in the
queue, and Ingrid approves it.

Two Playgrounds in front of one bot, as in test_needs_report_browser.py (one current user
per Playground). Kari's report is sent through her Playground's API (the form itself is
clicked through in that module); everything in the question-and-answer loop is clicked.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from procurement.shared.calendar import OSLO
from tests.e2e.conftest import INTAKE_CHANNEL
from tests.e2e.playground import BotMessage, Playground, card_inputs, card_text

# The second Playground (Ingrid) is the journey test's fixture, shared rather than copied.
from tests.e2e.test_needs_report_browser import ingrid_playground, open_page  # noqa: F401

pytestmark = pytest.mark.asyncio(loop_scope="module")

TITLE = "Elektriske senger til sykehjem"
QUESTION = "Hva er verdigrunnlaget? Oppgi antall senger og pris per seng."
ANSWER = "40 senger à 32 500 kr, til sammen 1,3 mill."
ASK = "Be om mer informasjon"


def oslo_today() -> date:
    return datetime.now(OSLO).date()


def report_inputs() -> dict[str, str]:
    return {
        "title": TITLE,
        "need": "Beboerne trenger senger som kan heves og senkes, så pleierne slipper tunge løft.",
        "service_area": "helse_mestring",
        "estimated_value": "1,3 mill",
        "category": "goods",
        "agreement_type": "single",
        "start_date": (oslo_today() + timedelta(days=120)).isoformat(),
        "duration_months": "24",
        "option_months": "0",
        "budget_secured": "true",
    }


def is_form(message: BotMessage) -> bool:
    return message.card is not None and any(i.get("id") == "estimated_value" for i in card_inputs(message.card))


async def type_into(card: Any, label: re.Pattern[str], value: str) -> None:
    # Typed key by key: the Fluent textarea ignores a programmatic fill.
    box = card.get_by_label(label)
    await box.click()
    await box.press_sequentially(value)


async def test_question_and_answer_clicked_through_two_web_clients(
    app_playground: Playground,
    ingrid_playground: Playground,  # noqa: F811 (the imported fixture)
    app_browser: Any,
) -> None:
    kari_pg, ingrid_pg = app_playground, ingrid_playground
    outside: list[str] = []
    kari = await open_page(app_browser, kari_pg, outside)
    ingrid = await open_page(app_browser, ingrid_pg, outside)
    artifacts = kari_pg.artifacts_dir
    try:
        # The app is added to the team in Ingrid's client (as an admin would in Teams).
        await ingrid_pg.send_activity(await ingrid_pg.activity_template(ingrid_pg.team_id, "botAdded"))
        await ingrid_pg.wait_for_exchange(
            lambda item: (
                ((item.get("request") or {}).get("body") or {}).get("conversation", {}).get("id") == ingrid_pg.team_id
            )
        )

        # -- Kari sends a report (through her Playground) ---------------------------------
        await kari_pg.send_text(kari_pg.personal_chat_id, "behovsmelding")
        form = await kari_pg.next_message(is_form, 20, conversation_id=kari_pg.personal_chat_id)
        sent = await kari_pg.click(form, "Send til Innkjøpsseksjonen", report_inputs())
        assert sent is not None and sent.card is not None
        ref = f"BM-{oslo_today().year}-0001"
        assert f"Behovsmelding {ref} er sendt" in card_text(sent.card)

        # -- Ingrid: the intake card; "Be om mer informasjon" without a question ----------
        await ingrid_pg.next_message(ref, timeout=20, conversation_id=INTAKE_CHANNEL)
        await ingrid.get_by_role("treeitem", name="Innkjøp - Behovsmeldinger").click()
        intake = ingrid.locator(".ac-adaptiveCard").filter(has_text=ref).filter(has_text=TITLE).last
        await intake.get_by_role("button", name=ASK).wait_for(timeout=15_000)
        await intake.get_by_role("button", name=ASK).click()
        refused = ingrid.locator(".ac-adaptiveCard").filter(has_text="Skriv spørsmålet til melderen").last
        await refused.wait_for(timeout=15_000)
        assert "Venter på behandling" in await refused.inner_text()
        await ingrid.screenshot(path=str(artifacts / "ingrid-question-required.png"))

        # -- she asks ----------------------------------------------------------------------
        await type_into(refused, re.compile("^Kommentar til melder"), QUESTION)
        await refused.get_by_role("button", name=ASK).click()
        asked = ingrid.locator(".ac-adaptiveCard").filter(has_text="Mer informasjon etterspurt av Ingrid Haugen").last
        await asked.wait_for(timeout=15_000)
        asked_text = await asked.inner_text()
        assert QUESTION in asked_text and "Ikke besvart ennå" in asked_text
        pressed = next(i for i in reversed(ingrid_pg.log_items) if i.get("activityName") == "invoke")
        assert pressed["request"]["body"]["value"]["action"]["verb"] == "needs_report.request_info"

        # -- Kari: the question in her chat; an empty answer is refused --------------------
        await kari_pg.next_message(QUESTION, timeout=20, conversation_id=kari_pg.personal_chat_id)
        question = kari.locator(".ac-adaptiveCard").filter(has_text=f"Spørsmål om behovsmelding {ref}").last
        await question.wait_for(timeout=15_000)
        q_text = await question.inner_text()
        assert QUESTION in q_text and "Ingrid Haugen" in q_text and TITLE in q_text
        assert await question.get_by_role("button", name="Endre behovsmeldingen").count() == 1
        await question.get_by_role("button", name="Send svar").click()
        empty = kari.locator(".ac-adaptiveCard").filter(has_text="Skriv svaret ditt før du sender").last
        await empty.wait_for(timeout=15_000)

        # -- she answers -------------------------------------------------------------------
        await type_into(empty, re.compile("^Ditt svar"), ANSWER)
        await kari.screenshot(path=str(artifacts / "kari-answering.png"))
        await empty.get_by_role("button", name="Send svar").click()
        thanked = kari.locator(".ac-adaptiveCard").filter(has_text="Svaret er sendt til Innkjøpsseksjonen").last
        await thanked.wait_for(timeout=15_000)
        assert ANSWER in await thanked.inner_text()
        assert await thanked.get_by_role("button", name="Send svar").count() == 0
        await kari.screenshot(path=str(artifacts / "kari-answered.png"))

        # -- Ingrid: the answer on the intake card (updated in place), back in the queue ----
        await ingrid_pg.next_message(ANSWER, timeout=20, conversation_id=INTAKE_CHANNEL, event="updateMessage")
        answered = (
            ingrid.locator(".ac-adaptiveCard")
            .filter(has_text=ANSWER)
            .filter(has=ingrid.get_by_role("button", name="Godkjenn"))
            .last
        )
        await answered.wait_for(timeout=15_000)
        answered_text = await answered.inner_text()
        assert "Besvart – venter på vurdering" in answered_text and "Svar fra Kari Nordmann" in answered_text
        await ingrid.screenshot(path=str(artifacts / "ingrid-answered.png"))
        await answered.get_by_role("button", name="Godkjenn").click()
        decided = ingrid.locator(".ac-adaptiveCard").filter(has_text="Godkjent av Ingrid Haugen").last
        await decided.wait_for(timeout=15_000)
        assert ANSWER in await decided.inner_text()

        # -- Kari is told ----------------------------------------------------------------
        await kari_pg.next_message(f"Behovsmelding {ref}: Godkjent", 20, conversation_id=kari_pg.personal_chat_id)
    finally:
        await kari.close()
        await ingrid.close()
    assert all("127.0.0.1" not in url for url in outside)
    assert kari_pg.failed_exchanges() == [] and ingrid_pg.failed_exchanges() == []
