"""A needs report end to end through the Agents Playground: open → invalid submit (values
kept) → valid submit → summary → double tap → intake card in the channel → refusal for a
non-innkjøper (revealing nothing) → approval by an innkjøper (updated for everyone) → submitter notified →
listed → the signed contract registered from the competition. Plus the draft. One bot + Playground for the module."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from dialogs.needs_report import REQUIRED_FIELDS
from procurement.shared.calendar import OSLO
from tests.e2e.conftest import INGRID, INTAKE_CHANNEL, NINA
from tests.e2e.playground import (
    BotMessage,
    Playground,
    button_titles,
    card_inputs,
    card_text,
    field_messages,
    find_input,
)
from tests.needs_forms import FORM_FIELDS

pytestmark = pytest.mark.asyncio(loop_scope="module")


TITLE = "Transport av hjelpemidler til hjemmeboende"
NEED = (
    "Hjemmetjenesten må få hjelpemidler (senger, rullatorer) levert og hentet hos brukerne "
    "innen to virkedager. I dag bruker sykepleierne egen tid på dette."
)


def oslo_today() -> date:
    return datetime.now(OSLO).date()


def valid_inputs() -> dict[str, str]:
    return {
        "title": TITLE,
        "need": NEED,
        "service_area": "helse_mestring",
        "estimated_value": "1,3 mill",
        "value_basis": "Dagens kostnad 325 000 kr per år i fire år.",
        "category": "services",
        "agreement_type": "single",
        "start_date": (oslo_today() + timedelta(days=120)).isoformat(),
        "duration_months": "24",
        "option_months": "24",
        "budget_secured": "true",
        "risk_notes": "Sjåførene må ha ordnede lønns- og arbeidsvilkår.",
    }


def is_form(message: BotMessage) -> bool:
    return message.card is not None and any(i.get("id") == "estimated_value" for i in card_inputs(message.card))


async def open_form(pg: Playground) -> BotMessage:
    await pg.send_text(pg.personal_chat_id, "behovsmelding")
    return await pg.next_message(is_form, conversation_id=pg.personal_chat_id)


async def test_needs_report_journey(app_playground: Playground) -> None:
    pg = app_playground
    intake_channel = pg.channel_id("Behovsmeldinger")
    assert intake_channel == INTAKE_CHANNEL

    # -- open -------------------------------------------------------------------------
    form_message = await open_form(pg)
    form = form_message.card
    assert form is not None
    # Every field is on the card: the required ones first, the optional ones behind "Flere detaljer".
    ids = [i["id"] for i in card_inputs(form)]
    required = [key for key in FORM_FIELDS if key in REQUIRED_FIELDS]
    assert ids == required + [key for key in FORM_FIELDS if key not in REQUIRED_FIELDS]
    assert "Ny behovsmelding" in card_text(form)
    assert button_titles(form) == ["Flere detaljer (valgfritt)", "Send til Innkjøpsseksjonen", "Lagre utkast"]

    # -- invalid submit: ambiguous value, start in the past ---------------------------
    bad = valid_inputs() | {
        "estimated_value": "1.300",
        "start_date": (oslo_today() - timedelta(days=10)).isoformat(),
    }
    result = await pg.click(form_message, "Send til Innkjøpsseksjonen", bad)
    assert result is not None and result.card is not None
    again = result.card
    text = card_text(again)
    assert "Skjemaet er ikke sendt" in text
    assert "Alt du skrev er tatt vare på" in text
    # Kari's values are all still there.
    assert find_input(again, "title")["value"] == TITLE
    assert find_input(again, "need")["value"] == NEED
    assert find_input(again, "estimated_value")["value"] == "1.300"
    assert find_input(again, "service_area")["value"] == "helse_mestring"
    assert find_input(again, "category")["value"] == "services"
    assert find_input(again, "risk_notes")["value"] == bad["risk_notes"]
    assert find_input(again, "start_date")["value"] == bad["start_date"]
    assert find_input(again, "duration_months")["value"] == 24
    # Norwegian messages at the fields that are wrong, nothing at the others.
    value_msg = " ".join(field_messages(again, "estimated_value"))
    assert "kan bety både" in value_msg and "1 300" in value_msg, value_msg
    start_msg = " ".join(field_messages(again, "start_date"))
    assert "Oppstart kan ikke være tilbake i tid" in start_msg, start_msg
    assert field_messages(again, "title") == []
    assert field_messages(again, "need") == []
    # Nothing reached the section.
    await pg.expect_no_message(conversation_id=intake_channel, timeout=1.5)

    # -- valid submit (from the re-rendered form, as in the Playground) ---------------
    good = valid_inputs()
    fixed = form_message.with_card(again)
    result = await pg.click(fixed, "Send til Innkjøpsseksjonen", good)
    assert result is not None and result.card is not None
    summary = card_text(result.card)
    ref = f"BM-{oslo_today().year}-0001"
    assert f"Behovsmelding {ref} er sendt" in summary
    assert "1 300 000" in summary
    # 1,3 mill is the national threshold: Doffin, KGV, a competition strategy; services
    # bring the wage and working conditions requirement.
    assert "nasjonal terskelverdi" in summary
    assert "kunngjøres i Doffin" in summary
    assert "(KGV)" in summary
    assert "skriftlig konkurransestrategi" in summary
    assert "stiller kommunen krav til lønns- og arbeidsvilkår" in summary

    # -- double tap: the same card again gives the same report ------------------------
    result = await pg.click(fixed, "Send til Innkjøpsseksjonen", good)
    assert result is not None and result.card is not None
    repeated = card_text(result.card)
    assert f"allerede sendt som {ref}" in repeated
    assert f"BM-{oslo_today().year}-0002" not in repeated

    # -- the intake card in Innkjøpsseksjonen's channel -------------------------------
    intake = await pg.next_message(TITLE, timeout=15, conversation_id=intake_channel)
    assert intake.event == "createMessage"
    # A proactive post to the channel starts a new thread there.
    assert intake.action_conversation_id == intake_channel
    assert intake.conversation_id.startswith(intake_channel + ";messageid=")
    intake_text = card_text(intake.card)
    assert f"Ny behovsmelding: {TITLE}" in intake_text
    assert "Venter på behandling" in intake_text
    assert f"Referanse: {ref}" in intake_text
    assert "Meldt av: Kari Nordmann" in intake_text
    assert button_titles(intake.card) == ["Godkjenn", "Be om mer informasjon", "Avvis"]
    # Exactly one intake card for the double tap.
    await pg.expect_no_message(conversation_id=intake_channel, timeout=2.5)

    # -- Nina (not innkjøper) presses Godkjenn: polite refusal, nothing changes -------
    result = await pg.click(intake, "Godkjenn", from_id=NINA)
    assert result is not None and result.card is not None
    refusal = card_text(result.card)
    assert "bare medlemmer av Innkjøpsseksjonen" in refusal
    assert "Ingenting er endret" in refusal
    # The refusal reveals nothing of the report (issue 8.1): no title, need, status or buttons.
    assert TITLE not in refusal and NEED not in refusal and "Venter på behandling" not in refusal
    assert button_titles(result.card) == []
    await pg.expect_no_message(conversation_id=intake_channel, timeout=1.0)
    await pg.expect_no_message(conversation_id=pg.personal_chat_id, timeout=1.0)

    # -- Ingrid (innkjøper) approves ---------------------------------------------------
    competition = f"K-{oslo_today().year}-0001"
    result = await pg.click(intake, "Godkjenn", {"decision_note": "Vi tar kontakt."}, INGRID)
    assert result is not None and result.card is not None
    decided = card_text(result.card)
    assert "Godkjent av Ingrid Haugen" in decided
    assert competition in decided
    assert button_titles(result.card) == []  # decided: no more buttons
    # Everyone in the channel sees the new card: the bot edited the message.
    updated = await pg.next_message("Godkjent av Ingrid Haugen", conversation_id=intake_channel, event="updateMessage")
    assert updated.message_id == intake.message_id
    assert competition in updated.all_text
    assert button_titles(updated.card) == []
    # Universal Actions: Teams refreshes the card for the section's members it knows.
    refresh = (updated.card or {}).get("refresh") or {}
    assert refresh.get("action", {}).get("verb") == "needs_report.refresh"
    assert pg.user(INGRID)["id"] in refresh.get("userIds", [])
    assert pg.user(NINA)["id"] not in refresh.get("userIds", [])
    refreshed = await pg.invoke(
        intake.conversation_id,
        intake.message_id or "",
        "needs_report.refresh",
        refresh["action"].get("data"),
        from_id=INGRID,
    )
    assert "Godkjent av Ingrid Haugen" in card_text(refreshed.card)

    # -- Kari is told in her personal chat --------------------------------------------
    notice = await pg.next_message(ref, timeout=15, conversation_id=pg.personal_chat_id)
    assert notice.event == "createMessage"
    assert f"Behovsmelding {ref}: Godkjent" in notice.all_text
    assert competition in notice.all_text
    assert "Vi tar kontakt." in notice.all_text

    # -- a second press after the decision changes nothing ----------------------------
    result = await pg.click(intake, "Godkjenn", from_id="Lars Berg")
    assert result is not None and result.card is not None
    assert "Allerede behandlet av Ingrid Haugen" in card_text(result.card)

    # -- "mine behovsmeldinger" lists it as Godkjent ----------------------------------
    await pg.send_text(pg.personal_chat_id, "mine behovsmeldinger")
    listing = await pg.next_message("Mine behovsmeldinger", conversation_id=pg.personal_chat_id)
    text = card_text(listing.card)
    assert f"{ref} · {TITLE}" in text
    assert "Godkjent" in text
    assert f"BM-{oslo_today().year}-0002" not in text

    # -- the contract is signed: Ingrid registers it from the competition --------------
    ingrid_chat = await pg.personal_chat(INGRID)
    await pg.send_text(ingrid_chat, f"kontrakt signert {competition}", from_id=INGRID)
    contract_form = await pg.next_message(f"Fra konkurranse {competition}", conversation_id=ingrid_chat)
    prefilled = {i.get("id"): i.get("value") for i in card_inputs(contract_form.card)}
    assert prefilled["title"] == TITLE and prefilled["value_nok"] == "1 300 000"
    assert prefilled["options"] == "24 mnd" and prefilled["start_date"] and prefilled["end_date"]
    end = datetime.strptime(str(prefilled["end_date"]), "%d.%m.%Y").date()
    result = await pg.click(
        contract_form,
        "Lagre kontrakt",
        {
            "external_ref": "KAV-2027-0007",
            "supplier_name": "Hjelpemiddeltransport AS",
            "supplier_org_no": "974760673",
            "manager": "kari.nordmann@kommune.example.no",
            "option_notice": (end - timedelta(days=90)).strftime("%d.%m.%Y"),
        },
        INGRID,
    )
    assert result is not None and result.card is not None
    saved = card_text(result.card)
    assert "Kontrakt KAV-2027-0007 er registrert" in saved
    assert f"Konkurranse {competition} er markert som signert" in saved
    assert pg.failed_exchanges() == []


async def test_save_draft_and_resume(app_playground: Playground) -> None:
    pg = app_playground
    pg.drain()
    form_message = await open_form(pg)
    assert "Vi har fylt inn utkastet" not in form_message.all_text
    title = 'Utkast: ${x} {"a": "b"} **fett** 🚀'
    # Only a title: the card has no client-side required checks, so this goes through.
    result = await pg.click(form_message, "Lagre utkast", {"title": title})
    assert result is not None and result.card is not None
    assert "Utkastet er lagret" in card_text(result.card)
    assert find_input(result.card, "title")["value"] == title

    form_message = await open_form(pg)
    assert "Vi har fylt inn utkastet ditt" in form_message.all_text
    assert find_input(form_message.card, "title")["value"] == title  # exactly as typed
    assert not find_input(form_message.card, "need").get("value")

    await pg.send_text(pg.personal_chat_id, "mine behovsmeldinger")
    listing = await pg.next_message("Mine behovsmeldinger", conversation_id=pg.personal_chat_id)
    assert f"utkast som ikke er sendt: «{title}»" in card_text(listing.card)
    assert "Fortsett utkastet" in button_titles(listing.card)
    assert pg.failed_exchanges() == []


async def test_a_draft_with_only_a_title_can_be_sent_from_the_card(
    app_playground: Playground,
) -> None:
    pg = app_playground
    pg.drain()
    form_message = await open_form(pg)
    result = await pg.click(form_message, "Lagre utkast", {"title": "Bare en tittel"})
    assert result is not None and result.card is not None
    assert "Utkastet er lagret" in card_text(result.card)
    listing_form = await open_form(pg)
    assert find_input(listing_form.card, "title")["value"] == "Bare en tittel"
