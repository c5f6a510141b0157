"""A competition room end to end through the Agents Playground (local mode): Kari reports a need,
Ingrid approves it in the intake channel, her card answers "Oppretter samhandlingsrom …" at once and
is updated in place until every step is done; the welcome card arrives in the team's channel for
rooms; "rom K-…" shows the status to Kari (a member) and nothing to Nina; the room is on disk."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import docx
import pytest

from procurement.ports import ROOM_FOLDERS
from procurement.shared.calendar import OSLO
from tests.e2e.conftest import INGRID, INTAKE_CHANNEL, KARI, NINA, PER, TEAM
from tests.e2e.playground import BotMessage, Playground, button_titles, card_inputs, card_text

pytestmark = pytest.mark.asyncio(loop_scope="module")

TITLE = "Skyss for elever i Nordbygda"


@pytest.fixture(scope="module")
def app_env_overrides() -> dict[str, str | None]:
    # The welcome is posted in the Playground team's General channel (the channel for rooms).
    return {"ROOMS_CHANNEL_ID": TEAM}


def oslo_today() -> date:
    return datetime.now(OSLO).date()


def is_form(message: BotMessage) -> bool:
    return message.card is not None and any(i.get("id") == "estimated_value" for i in card_inputs(message.card))


async def test_an_approved_need_gets_its_room(app_playground: Playground, app_data_dir: Path) -> None:
    pg = app_playground
    await pg.send_text(pg.personal_chat_id, "behovsmelding")
    form = await pg.next_message(is_form, conversation_id=pg.personal_chat_id)
    values = {
        "title": TITLE,
        "need": "Elevene i Nordbygda må fraktes trygt til og fra skolen hver skoledag.",
        "service_area": "oppvekst",
        "estimated_value": "2 mill",
        "value_basis": "Dagens avtale: 500 000 kr per år i fire år.",
        "category": "services",
        "agreement_type": "single",
        "start_date": (oslo_today() + timedelta(days=200)).isoformat(),
        "duration_months": "36",
        "option_months": "12",
        "budget_secured": "true",
        "faggruppe": "per.hansen@kommune.example.no, Ukjent Fagperson",
    }
    sent = await pg.click(form, "Send til Innkjøpsseksjonen", values)
    assert sent is not None and sent.card is not None and "er sendt" in card_text(sent.card)
    intake = await pg.next_message(TITLE, timeout=15, conversation_id=INTAKE_CHANNEL)

    # Ingrid approves: her card answers at once, the room is being made.
    competition = f"K-{oslo_today().year}-0001"
    result = await pg.click(intake, "Godkjenn", from_id=INGRID)
    assert result is not None and result.card is not None
    answered = card_text(result.card)
    assert "Godkjent av Ingrid Haugen" in answered and "Oppretter samhandlingsrom" in answered
    assert f"Samhandlingsrom {competition}" in answered

    # The same message is updated in place as the steps complete, ending with every step done.
    done = await pg.next_message(
        "Samhandlingsrommet er klart.", timeout=30, conversation_id=INTAKE_CHANNEL, event="updateMessage"
    )
    assert done.message_id == intake.message_id
    for step in ("Kanal ✓", "Medlemmer ✓", "Mapper ✓", "Strategi ✓", "Fane ✓", "Velkomst ✓"):
        assert step in done.all_text, step
    assert "Ukjent Fagperson: finnes ikke i katalogen" in done.all_text
    assert "Prøv igjen" not in button_titles(done.card)

    # The welcome card in the channel for rooms.
    welcome = await pg.next_message(
        f"Velkommen til samhandlingsrommet for {competition}", timeout=15, conversation_id=TEAM
    )
    assert "Per Hansen" in welcome.all_text and "Behovsvurdering" in welcome.all_text
    assert "Meld avvik" in button_titles(welcome.card)

    # "rom K-…": Kari is a member and sees the status; Nina learns nothing.
    await pg.send_text(pg.personal_chat_id, f"rom {competition}")
    status = await pg.next_message(f"Samhandlingsrom {competition}", conversation_id=pg.personal_chat_id)
    assert "Samhandlingsrommet er klart." in status.all_text
    await pg.send_text(INTAKE_CHANNEL, f"rom {competition}", from_id=NINA)
    refused = await pg.next_message("Jeg finner ikke noe med den referansen", conversation_id=INTAKE_CHANNEL)
    assert TITLE not in refused.all_text and "Samhandlingsrom" not in refused.all_text

    # The room on disk, as Graph would hold it.
    room = app_data_dir / "rooms" / competition
    recorded = json.loads((room / "room.json").read_text(encoding="utf-8"))
    assert recorded["channelName"] == f"{competition} {TITLE}"
    assert {m["aadId"]: m["role"] for m in recorded["members"]} == {INGRID: "owner", KARI: "member", PER: "member"}
    assert sorted(p.name for p in room.iterdir() if p.is_dir()) == sorted(ROOM_FOLDERS)
    document = docx.Document(io.BytesIO((room / ROOM_FOLDERS[0] / recorded["document"]).read_bytes()))
    text = "\n".join(p.text for p in document.paragraphs)
    assert competition in text and TITLE in text
