"""Deviation reports end to end through the Agents Playground (issue 11, point 8): a report in
three steps by Nina routed to the avtaleforvalter (Kari); Kari's status change reaching Nina;
a critical report with a typed supplier alerting Innkjøpsseksjonen's channel, where Nina's
status press is refused and reveals nothing; an interrupted report resumed; a report started
from a message through the message action ("…" on a message: fetchTask, then submitAction).
One bot + Playground for the module; the contract comes from the product's import CLI."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from procurement.shared.calendar import OSLO
from tests.e2e.conftest import INGRID, NINA, PER, TEAM, app_database_path
from tests.e2e.playground import BotMessage, Playground, button_titles, card_inputs, card_text, field_messages
from tests.e2e.test_reminders_flow import run_import

pytestmark = pytest.mark.asyncio(loop_scope="module")

KARI_EMAIL = "kari.nordmann@kommune.example.no"
CONTRACT = "KAV-2025-0301"
SUPPLIER = "Renhold Øst AS"
TITLE = "Renhold av skoler"


def oslo_today() -> date:
    return datetime.now(OSLO).date()


def nb(value: date) -> str:
    return value.strftime("%d.%m.%Y")


def has_input(input_id: str) -> Callable[[BotMessage], bool]:
    return lambda m: m.card is not None and any(i.get("id") == input_id for i in card_inputs(m.card))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def contract(app_playground: Playground, app_data_dir: Path, app_env: dict[str, str | None]) -> str:
    """A cleaning contract Kari follows up, imported next to the running bot; Kari and Nina
    have talked to the bot (it knows their personal chats)."""
    pg = app_playground
    await pg.send_text(pg.personal_chat_id, "hei")
    await pg.next_message("Innkjøpsassistenten", conversation_id=pg.personal_chat_id)
    nina = await pg.personal_chat(NINA)
    await pg.send_text(nina, "hei", from_id=NINA)
    await pg.next_message("Innkjøpsassistenten", conversation_id=nina)
    today = oslo_today()
    header = "Avtalenummer;Leverandør;Avtalenavn;Kategori;Startdato;Sluttdato;Avtaleverdi;Avtaletype;Avtaleforvalter"
    row = (
        f"{CONTRACT};{SUPPLIER};{TITLE};Tjenester;{nb(today - timedelta(days=200))};"
        f"{nb(today + timedelta(days=900))};3 000 000;Rammeavtale;{KARI_EMAIL}"
    )
    path = app_data_dir / "kav-avvik.csv"
    path.write_text(f"{header}\n{row}\n", encoding="utf-8")
    output = await run_import(path, app_database_path(app_data_dir), app_env)
    assert "Opprettet: 1" in output, output
    return CONTRACT


async def step(
    pg: Playground, message: BotMessage, title: str, inputs: dict[str, Any], who: str | None = None
) -> BotMessage:
    result = await pg.click(message, title, inputs, from_id=who)
    assert result is not None and result.card is not None, result
    return message.with_card(result.card)


async def test_a_report_in_three_steps_and_the_avtaleforvalters_status_reaches_the_reporter(
    app_playground: Playground, contract: str
) -> None:
    pg = app_playground
    nina = await pg.personal_chat(NINA)
    await pg.send_text(nina, "meld avvik", from_id=NINA)
    form = await pg.next_message(has_input("category"), conversation_id=nina)
    assert "Steg 1 av 3: Hva og hvor" in card_text(form.card)
    assert button_titles(form.card) == ["Neste"]
    details = await step(pg, form, "Neste", {"contract": contract, "category": "hms", "severity": "high"}, NINA)
    assert "Steg 2 av 3" in card_text(details.card) and button_titles(details.card) == ["Neste", "Tilbake"]
    files = await step(
        pg,
        details,
        "Neste",
        {"description": "Vaskemidler står ulåst i gangen der elevene går.", "location": "Sletta skole"},
        NINA,
    )
    text = card_text(files.card)
    assert "Steg 3 av 3" in text and "JPEG, PNG, HEIC, PDF" in text
    receipt = await step(pg, files, "Send avviksmeldingen", {}, NINA)
    receipt_text = card_text(receipt.card)
    ref = f"AV-{oslo_today().year}-0001"
    assert f"Avviksmelding {ref}" in receipt_text and "avtaleforvalteren" in receipt_text

    # Kari, the contract's avtaleforvalter, gets the actionable card in her chat.
    routed = await pg.next_message(f"Avvik {ref}", 20, conversation_id=pg.personal_chat_id)
    assert "Nina Olsen" in card_text(routed.card) and "Vaskemidler står ulåst" in card_text(routed.card)
    assert "Lagre status" in button_titles(routed.card)
    saved = await step(pg, routed, "Lagre status", {"status": "received"})
    assert "Lagret: Mottatt" in card_text(saved.card)
    told = await pg.next_message(f"Avviksmeldingen {ref} om {SUPPLIER} er mottatt", 20, conversation_id=nina)
    assert told.card is not None and "Avviksmeldingen din" in card_text(told.card)

    # Under behandling with a deadline: Nina is told the deadline, never who is behind it.
    deadline = oslo_today() + timedelta(days=10)
    moved = await step(
        pg,
        saved,
        "Lagre status",
        {"status": "in_progress", "remedy_deadline": deadline.isoformat(), "supplier_notice": "formal_notice"},
    )
    assert "Under behandling" in card_text(moved.card)
    told = await pg.next_message(f"frist til {nb(deadline)}", 20, conversation_id=nina)
    assert "under behandling" in card_text(told.card)
    notice = await pg.next_message("Varsel til leverandøren", 30, conversation_id=pg.personal_chat_id)
    assert "navngir ikke den som meldte avviket" in card_text(notice.card)

    # "mine avvik" lists it with its status.
    await pg.send_text(nina, "mine avvik", from_id=NINA)
    mine = await pg.next_message("Mine avvik", conversation_id=nina)
    assert ref in card_text(mine.card) and "Under behandling" in card_text(mine.card)


async def test_a_critical_report_alerts_the_channel_and_an_employees_status_press_is_refused(
    app_playground: Playground, contract: str
) -> None:
    pg = app_playground
    nina = await pg.personal_chat(NINA)
    await pg.send_text(nina, "avvik", from_id=NINA)
    form = await pg.next_message(has_input("category"), conversation_id=nina)
    details = await step(
        pg,
        form,
        "Neste",
        {
            "contract": "not_listed",
            "supplier_name": "Ukjent Bygg AS",
            "category": "wage_conditions",
            "severity": "critical",
        },
        NINA,
    )
    files = await step(
        pg, details, "Neste", {"description": "Arbeiderne sier de ikke får lønn for overtid og bor på brakkene."}, NINA
    )
    receipt = await step(pg, files, "Send avviksmeldingen", {}, NINA)
    assert "er Innkjøpsseksjonen varslet med en gang" in card_text(receipt.card)
    ref = f"AV-{oslo_today().year}-0002"
    alert = await pg.next_message(f"Kritisk avvik meldt: {ref}", 20, conversation_id=TEAM)
    assert "Ukjent Bygg AS" in card_text(alert.card) and "Nina Olsen" not in card_text(alert.card)
    card = await pg.next_message(f"Avvik {ref}: Ukjent Bygg AS", 20, conversation_id=TEAM)

    # Per, an ordinary employee, presses "Lagre status": refused, and told nothing of the report.
    refused = await pg.click(card, "Lagre status", {"status": "received"}, from_id=PER)
    assert refused is not None and refused.card is not None
    shown = card_text(refused.card)
    assert ref not in shown and "Ukjent Bygg" not in shown and "overtid" not in shown
    assert "Jeg finner ikke noe med den referansen" in shown
    # A guessed reference gives the same answer as the real one.
    guess = await pg.invoke(
        card.conversation_id, card.message_id or "", "deviation.refresh", {"ref": "AV-2020-0999"}, PER
    )
    assert guess.card is not None and card_text(guess.card) == shown
    # Nina, who reported it, may not change its status either.
    own = await pg.click(card, "Lagre status", {"status": "received"}, NINA)
    assert own is not None and own.card is not None and "Ingenting er endret" in card_text(own.card)
    # An innkjøper (Ingrid) follows it up from the channel.
    done = await pg.click(card, "Lagre status", {"status": "received"}, INGRID)
    assert done is not None and done.card is not None and "Lagret: Mottatt" in card_text(done.card)


async def test_an_interrupted_report_is_resumed_where_it_stopped(app_playground: Playground, contract: str) -> None:
    pg = app_playground
    chat = pg.personal_chat_id
    await pg.send_text(chat, "avvik")
    form = await pg.next_message(has_input("category"), conversation_id=chat)
    await step(pg, form, "Neste", {"contract": contract, "category": "delivery", "severity": "medium"})
    # The phone's app is closed; later Kari types "avvik" again.
    await pg.send_text(chat, "avvik")
    again = await pg.next_message(has_input("description"), conversation_id=chat)
    assert "ingenting er borte" in card_text(again.card) and "Steg 2 av 3" in card_text(again.card)
    back = await step(pg, again, "Tilbake", {"description": "Leveransen kom ikke"})
    assert next(i for i in card_inputs(back.card) if i["id"] == "severity")["value"] == "medium"
    forward = await step(pg, back, "Neste", {})
    assert next(i for i in card_inputs(forward.card) if i["id"] == "description")["value"] == "Leveransen kom ikke"
    # A hostile, oversized description is refused at the field; what was typed stays.
    bad = await step(pg, forward, "Neste", {"description": "<b>" + "x" * 5000, "location": "Lager 2"})
    assert any("for lang" in m for m in field_messages(bad.card, "description"))
    assert next(i for i in card_inputs(bad.card) if i["id"] == "location")["value"] == "Lager 2"


async def test_a_report_from_a_message_through_the_message_action(app_playground: Playground, contract: str) -> None:
    pg = app_playground
    per_account = pg.user(PER)
    per_chat = await pg.personal_chat(PER)
    await pg.send_text(per_chat, "hei", from_id=PER)  # the bot knows Per's chat (the receipt goes there)
    await pg.next_message("Innkjøpsassistenten", conversation_id=per_chat)
    payload = {
        "id": "1730000000000",
        "createdDateTime": datetime.now(OSLO).isoformat(),
        "from": {"user": {"id": "29:siri-johansen-a4", "displayName": "Siri Johansen"}},
        "body": {"contentType": "html", "content": "<p>Bussen kom <b>45 minutter</b> for sent igjen.</p>"},
        "linkToMessage": f"https://teams.microsoft.com/l/message/{TEAM}/1730000000000",
    }

    async def compose(name: str, value: dict[str, Any]) -> dict[str, Any]:
        body = {"name": name, "value": value, "from": {"id": per_account["id"]}, "conversation": {"id": TEAM}}
        answer = await pg._request("POST", "/_conversation/v1/invoke", body)
        assert isinstance(answer, dict) and answer.get("task"), answer
        return dict(answer["task"])

    base = {"commandId": "reportDeviation", "commandContext": "message"}
    task = await compose("composeExtension/fetchTask", {**base, "messagePayload": payload})
    assert task["type"] == "continue"
    card = task["value"]["card"]["content"]
    assert "Siri Johansen" in card_text(card)

    def submit_data(card: dict[str, Any], title: str, inputs: dict[str, Any]) -> dict[str, Any]:
        action = next(a for a in card["actions"] if a["title"] == title)
        assert action["type"] == "Action.Submit"
        values = {i["id"]: i.get("value") for i in card_inputs(card) if i.get("value") not in (None, "")}
        return {**action["data"], **values, **inputs}

    task = await compose(
        "composeExtension/submitAction",
        {**base, "data": submit_data(card, "Neste", {"contract": contract, "category": "delivery", "severity": "low"})},
    )
    card = task["value"]["card"]["content"]
    description = next(i for i in card_inputs(card) if i["id"] == "description")["value"]
    assert description == "Bussen kom 45 minutter for sent igjen."
    task = await compose("composeExtension/submitAction", {**base, "data": submit_data(card, "Neste", {})})
    card = task["value"]["card"]["content"]
    task = await compose(
        "composeExtension/submitAction", {**base, "data": submit_data(card, "Send avviksmeldingen", {})}
    )
    assert task["type"] == "message" and "er sendt" in task["value"], task
    ref = task["value"].split()[1]
    receipt = await pg.next_message(f"Avviksmelding {ref}", 20, conversation_id=per_chat)
    assert "Takk!" in card_text(receipt.card)
    await pg.expect_no_message(ref, 1.5, conversation_id=TEAM)  # nothing of it in the channel
