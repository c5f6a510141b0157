"""Deviation reports over HTTP against the real app (SQLite and PostgreSQL) with the Connector
stub: three steps, resume, double tap, routing to the avtaleforvalter or the follow-up channel,
the critical alert, status changes told to the reporter and redrawn in place, refusals that
reveal nothing, "mine avvik", the supplier summary and its CSV, the supplier notice PDF, the
remedy deadline reminder, and the message action's dialog."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from procurement.contracts.model import ContractData
from procurement.store.tables import AuditEntry, DeviationReport, OutboxItem
from tests.cardcheck import validate_card
from tests.connector_stub import card_texts
from tests.integration.bot_harness import (
    INGRID,
    KARI,
    KARI_CHAT,
    OLA,
    OLA_CHAT,
    USERS,
    Bot,
    BotFactory,
    activity,
    inputs_of,
    message_after,
    texts_of,
    today,
)

FOLLOW_UP = "19:innkjop-oppfolging@thread.tacv2"
PER = "5e5e5e5e-1111-4222-8333-944445555666"  # an employee who is neither reporter nor manager
PER_CHAT = "a:per-personal"
USERS.setdefault(PER, ("Per Ansatt", PER_CHAT))
CONTRACT = "KAV-2025-0042"
SUPPLIER = "Renhold Øst AS"


@pytest.fixture
async def dv_bot(start_bot: BotFactory, db_url: str) -> Bot:
    bot = await start_bot(db_url, FOLLOWUP_CHANNEL_ID=FOLLOW_UP)
    for user in (KARI, OLA, INGRID, PER):
        await bot.say("hei", user=user)
    await bot.runtime.services.contracts.upsert_contract(
        ContractData(
            external_ref=CONTRACT,
            supplier_name=SUPPLIER,
            title="Renhold av skoler",
            category="services",
            start_date=today() - timedelta(days=300),
            end_date=today() + timedelta(days=700),
            manager_aad_id=OLA,
        ),
        source="test",
    )
    return bot


# -- helpers ---------------------------------------------------------------------------------


def action(card: dict[str, Any], verb: str) -> dict[str, Any]:
    for a in card.get("actions") or []:
        if a.get("verb") == verb or (a.get("data") or {}).get("verb") == verb:
            return dict(a.get("data") or {})
    raise AssertionError(f"no {verb} on the card: {[a.get('verb') for a in card.get('actions') or []]}")


async def press(bot: Bot, card: dict[str, Any], verb: str, inputs: dict[str, Any] | None = None, **kw: Any) -> Any:
    data = {**action(card, verb), **(inputs or {})}
    return await bot.invoke(verb, data, **kw)


def what(**over: Any) -> dict[str, Any]:
    return {"contract": CONTRACT, "supplier_name": "", "category": "hms", "severity": "high", **over}


def details(**over: Any) -> dict[str, Any]:
    return {
        "description": "Vaskemidlene står ulåst i gangen der elevene går.",
        "occurred_on": today().isoformat(),
        "location": "Sletta skole",
        "financial_impact": "",
        "breached_clause": "Punkt 4.2 HMS",
        **over,
    }


async def send_report(bot: Bot, user: str = KARI, **over: Any) -> str:
    card = (await bot.say("avvik", user=user))[-1]
    card = await press(bot, card, "deviation.next", what(**{k: v for k, v in over.items() if k in what()}), user=user)
    card = await press(
        bot, card, "deviation.next", details(**{k: v for k, v in over.items() if k in details()}), user=user
    )
    receipt = await press(bot, card, "deviation.submit", user=user)
    return ref_of(receipt)


def ref_of(card: dict[str, Any]) -> str:
    for value in card_texts(card):
        for word in value.replace("«", " ").replace("»", " ").split():
            if word.startswith("AV-") and len(word) >= 12:
                return word.strip(".,:;")
    raise AssertionError(texts_of(card))


async def status(bot: Bot, ref: str, user: str, conversation: str | None = None, **inputs: Any) -> dict[str, Any]:
    data = {"verb": "deviation.status", "ref": ref, "token": uuid.uuid4().hex, **inputs}
    kw: dict[str, Any] = {"user": user}
    if conversation:
        kw.update(conversation=conversation, conversation_type="channel")
    return await bot.invoke("deviation.status", data, **kw)


# -- the form ---------------------------------------------------------------------------------


async def test_a_report_in_three_steps_is_routed_to_the_avtaleforvalter(dv_bot: Bot) -> None:
    bot = dv_bot
    form = (await bot.say("meld avvik"))[-1]
    assert "Steg 1 av 3" in texts_of(form)
    assert list(inputs_of(form)) == ["contract", "supplier_name", "category", "severity"]
    contract = inputs_of(form)["contract"]
    assert contract["choices.data"] == {"type": "Data.Query", "dataset": "contracts"}

    step2 = await press(bot, form, "deviation.next", what())
    assert "Steg 2 av 3" in texts_of(step2)
    assert inputs_of(step2)["occurred_on"]["value"] == today().isoformat()  # today by default
    step3 = await press(bot, step2, "deviation.next", details(financial_impact="12 500"))
    assert "Steg 3 av 3" in texts_of(step3)
    assert "JPEG, PNG, HEIC, PDF, høyst 10 MB hver og 10 per avviksmelding" in texts_of(step3)
    receipt = await press(bot, step3, "deviation.submit")
    ref = ref_of(receipt)
    assert ref == f"AV-{date.today().year}-0001" or ref.startswith("AV-")
    text = texts_of(receipt)
    assert "avtaleforvalteren" in text and "Leverandøren får aldri vite hvem som meldte avviket" in text

    rows = await bot.rows(DeviationReport, DeviationReport.ref == ref)
    assert rows[0].financial_impact == 12500 and rows[0].manager_aad_ids == [OLA]
    actions = [a.action for a in await bot.audit(ref)]
    assert actions == ["deviation.submitted"]

    await bot.drain()
    manager_cards = bot.stub.cards(OLA_CHAT)
    assert any(ref in texts_of(c) for c in manager_cards)
    card = next(c for c in manager_cards if ref in texts_of(c))
    assert "Vaskemidlene står ulåst" in texts_of(card) and "Kari Nordmann" in texts_of(card)
    assert not any(ref in texts_of(c) for c in bot.stub.cards(FOLLOW_UP))  # not critical, has a manager


async def test_errors_keep_the_values_and_stand_at_the_field(dv_bot: Bot) -> None:
    bot = dv_bot
    form = (await bot.say("avvik"))[-1]
    hostile = "x" * 300 + "\u0000{{ t }}</script>"
    card = await press(bot, form, "deviation.next", {"contract": "", "supplier_name": hostile, "category": "nope"})
    assert "Steg 1 av 3" in texts_of(card)
    assert "for lang" in (message_after(card, "supplier_name") or "")
    assert message_after(card, "category") == "Velg en av verdiene i listen."
    assert message_after(card, "severity") == "Velg hvor alvorlig avviket er."
    assert inputs_of(card)["supplier_name"]["value"] == hostile.replace("\u0000", "")[:200]
    # A contract the register does not have.
    card = await press(bot, card, "deviation.next", what(contract="KAV-9999-0000"))
    assert "finner ikke den avtalen" in (message_after(card, "contract") or "")
    # Step 2: a future date, øre, a 100 kB description: refused, values kept.
    card = await press(bot, card, "deviation.next", what())
    future = (today() + timedelta(days=3)).isoformat()
    big = "å" * 100_000
    card = await press(
        bot, card, "deviation.next", details(occurred_on=future, financial_impact="12,50", description=big)
    )
    assert "fram i tid" in (message_after(card, "occurred_on") or "")
    assert message_after(card, "financial_impact")
    assert "for lang" in (message_after(card, "description") or "")
    assert inputs_of(card)["location"]["value"] == "Sletta skole"
    validate_card(card)


async def test_an_interrupted_report_is_resumed_where_it_stopped(dv_bot: Bot) -> None:
    bot = dv_bot
    form = (await bot.say("avvik"))[-1]
    step2 = await press(bot, form, "deviation.next", what(supplier_name="", severity="medium"))
    await press(bot, step2, "deviation.back", details(description="Halvferdig tekst"))  # saved, not validated
    again = (await bot.say("avvik"))[-1]  # the app was closed; "avvik" again
    assert "ingenting er borte" in texts_of(again)
    assert "Steg 1 av 3" in texts_of(again) and inputs_of(again)["severity"]["value"] == "medium"
    step2 = await press(bot, again, "deviation.next", what(severity="medium"))
    assert inputs_of(step2)["description"]["value"] == "Halvferdig tekst"
    # The welcome card's button resumes it too.
    resumed = await bot.invoke("deviation.open", {"verb": "deviation.open"})
    assert "Steg 2 av 3" in texts_of(resumed)


async def test_a_double_tap_sends_one_report(dv_bot: Bot) -> None:
    bot = dv_bot
    form = (await bot.say("avvik"))[-1]
    card = await press(bot, form, "deviation.next", what())
    step3 = await press(bot, card, "deviation.next", details())
    first = await press(bot, step3, "deviation.submit")
    second = await press(bot, step3, "deviation.submit")
    assert ref_of(first) == ref_of(second)
    assert "var allerede sendt" in texts_of(second)
    assert len(await bot.rows(DeviationReport)) == 1
    # An older card of the sent report leads to it, not to a new one.
    old = await press(bot, card, "deviation.next", details())
    assert ref_of(old) == ref_of(first)


# -- routing and follow-up -----------------------------------------------------------------------


async def test_a_typed_supplier_goes_to_the_follow_up_channel_and_critical_alerts_it(dv_bot: Bot) -> None:
    bot = dv_bot
    ref = await send_report(bot, contract="not_listed", supplier_name="Ukjent Bygg AS", severity="critical")
    await bot.drain()
    channel = [texts_of(c) for c in bot.stub.cards(FOLLOW_UP)]
    assert any("Kritisk avvik meldt" in t and ref in t for t in channel)
    assert any(f"Avvik {ref}: Ukjent Bygg AS" in t and "Ny status" in t for t in channel)  # the actionable card
    assert not any(ref in texts_of(c) for c in bot.stub.cards(OLA_CHAT))
    assert all("Kari Nordmann" not in t for t in channel if "Kritisk avvik meldt" in t)
    # Drained again: nothing is posted twice.
    before = len(bot.stub.cards(FOLLOW_UP))
    await bot.drain()
    assert len(bot.stub.cards(FOLLOW_UP)) == before


async def test_the_avtaleforvalter_moves_it_to_closure_and_the_reporter_is_told(dv_bot: Bot, tmp_path: Path) -> None:
    bot = dv_bot
    ref = await send_report(bot)
    await bot.drain()
    kari_before = len(bot.stub.cards(KARI_CHAT))

    card = await status(bot, ref, OLA, status="received")
    assert "Lagret: Mottatt" in texts_of(card)
    # Under behandling needs a deadline and how the supplier is told.
    refused = await status(bot, ref, OLA, status="in_progress")
    assert message_after(refused, "remedy_deadline") and message_after(refused, "supplier_notice")
    deadline = today() + timedelta(days=14)
    card = await status(
        bot, ref, OLA, status="in_progress", remedy_deadline=deadline.isoformat(), supplier_notice="formal_notice"
    )
    assert "Under behandling" in texts_of(card)
    await bot.drain()
    kari = [texts_of(c) for c in bot.stub.cards(KARI_CHAT)[kari_before:]]
    assert any("er mottatt" in t for t in kari)
    assert any(deadline.strftime("%d.%m.%Y") in t and "under behandling" in t for t in kari)
    # The notice PDF: stored with the report, never naming the reporter.
    notice = Path(bot.runtime.settings.data_dir) / "attachments" / ref / f"Varsel om avvik {ref}.pdf"
    assert notice.is_file()
    from pypdf import PdfReader

    pdf_text = "\n".join(page.extract_text() for page in PdfReader(str(notice)).pages)
    assert SUPPLIER in pdf_text and deadline.strftime("%d.%m.%Y") in pdf_text
    assert "Kari" not in pdf_text and "Nordmann" not in pdf_text
    assert any("Varsel til leverandøren" in texts_of(c) for c in bot.stub.cards(OLA_CHAT))
    # The routed card was redrawn in place.
    assert any(ref in " ".join(card_texts(u.activity)) for u in bot.stub.updates if u.conversation_id == OLA_CHAT)

    card = await status(bot, ref, OLA, status="sanction_assessed", note="Trekk i vederlaget etter punkt 9.")
    refused = await status(bot, ref, OLA, status="closed", note="")
    assert "begrunnelsen" in (message_after(refused, "note") or "")
    card = await status(bot, ref, OLA, status="closed", note="Rettet; ingen nye avvik på fire uker.")
    assert "Lukket" in texts_of(card)
    actions = [a.action for a in await bot.audit(ref)]
    assert actions.count("deviation.status_changed") == 4
    assert "deviation.closed" in actions and "deviation.notice_created" in actions
    changes = [a.details for a in await bot.audit(ref) if a.action == "deviation.status_changed"]
    assert changes[0]["from"] == "reported" and changes[0]["to"] == "received"
    await bot.drain()
    assert any("er lukket" in texts_of(c) and "fire uker" in texts_of(c) for c in bot.stub.cards(KARI_CHAT))
    # The internal assessment note is not sent to the reporter.
    assert not any("vederlaget" in texts_of(c) for c in bot.stub.cards(KARI_CHAT))


async def test_others_learn_nothing_and_the_reporter_cannot_change_status(dv_bot: Bot) -> None:
    bot = dv_bot
    ref = await send_report(bot)
    for who in (PER,):
        for guess in (ref, "AV-2020-0999"):
            card = await bot.invoke("deviation.refresh", {"verb": "deviation.refresh", "ref": guess}, user=who)
            assert "Jeg finner ikke noe med den referansen" in texts_of(card)
        refused = await status(bot, ref, who, status="received")
        shown = texts_of(refused)
        assert ref not in shown and SUPPLIER not in shown

    async def refresh(guess: str) -> str:
        return texts_of(await bot.invoke("deviation.refresh", {"verb": "deviation.refresh", "ref": guess}, user=PER))

    seen_missing = await refresh("AV-2020-0999")
    seen_hidden = await refresh(ref)
    assert seen_missing == seen_hidden
    # The reporter sees her receipt, not the status form, and cannot press a status.
    own = await bot.invoke("deviation.refresh", {"verb": "deviation.refresh", "ref": ref}, user=KARI)
    assert "status" not in inputs_of(own)
    refused = await status(bot, ref, KARI, status="received")
    assert "Mottatt" not in texts_of(refused).split("Status")[0]
    rows = await bot.rows(DeviationReport, DeviationReport.ref == ref)
    assert rows[0].status == "reported"
    # An innkjøper may, from the follow-up channel.
    card = await status(bot, ref, INGRID, conversation=FOLLOW_UP, status="received")
    assert "Lagret: Mottatt" in texts_of(card)


async def test_mine_lists_her_reports_and_the_summary_is_for_those_who_follow_up(dv_bot: Bot) -> None:
    bot = dv_bot
    first = await send_report(bot)
    second = await send_report(bot, severity="critical", category="wage_conditions")
    mine = (await bot.say("mine avvik"))[-1]
    assert first in texts_of(mine) and second in texts_of(mine)
    assert "Meldt" in texts_of(mine)
    assert first not in texts_of((await bot.say("mine avvik", user=PER))[-1])

    refused = (await bot.say(f"avvik for {SUPPLIER}", user=PER))[-1]
    assert SUPPLIER not in texts_of(refused) and first not in texts_of(refused)
    summary = (await bot.say("avvik for renhold øst", user=OLA))[-1]
    text = texts_of(summary)
    assert f"Avvik for {SUPPLIER}" in text and "2 avvik, 2 åpne" in text
    assert text.index(second) < text.index(first)  # critical first
    export = await press(bot, summary, "deviation.export", user=OLA)
    assert "CSV-filen lages nå" in texts_of(export)
    await bot.drain()
    files = list((Path(bot.runtime.settings.data_dir) / "exports").glob("avvik-renhold-ost-as-*.csv"))
    assert len(files) == 1
    raw = files[0].read_bytes()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][0] == "Referanse" and {r[0] for r in rows[1:]} == {first, second}
    assert "Kari" not in raw.decode("utf-8-sig")
    assert any("CSV-filen med 2 avvik" in texts_of(c) for c in bot.stub.cards(OLA_CHAT))


async def test_a_passed_remedy_deadline_reminds_the_avtaleforvalter(dv_bot: Bot) -> None:
    bot = dv_bot
    ref = await send_report(bot)
    await status(bot, ref, OLA, status="received")
    deadline = today() + timedelta(days=3)
    await status(
        bot,
        ref,
        OLA,
        status="in_progress",
        remedy_deadline=deadline.isoformat(),
        supplier_notice="already_notified",
        note="Ringt daglig leder 1. september.",
    )
    await bot.drain()
    rows = [r for r in await bot.outbox() if r.kind == "deviation.remedy_reminder"]
    assert len(rows) == 1 and rows[0].status == "pending"
    assert rows[0].next_attempt_at > datetime.now(UTC) + timedelta(days=3)
    # The morning after the deadline comes.
    async with bot.store.session() as session:
        await session.execute(
            sa.update(OutboxItem).where(OutboxItem.id == rows[0].id).values(next_attempt_at=datetime.now(UTC))
        )
        await session.commit()
    before = len(bot.stub.cards(OLA_CHAT))
    await bot.drain()
    reminders = [texts_of(c) for c in bot.stub.cards(OLA_CHAT)[before:]]
    assert any("Fristen er ute" in t and ref in t for t in reminders)


# -- the message action -----------------------------------------------------------------------------


def compose(service_url: str, name: str, value: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return activity(service_url, "invoke", name=name, value=value, **kw)


async def test_a_report_from_a_message_in_a_channel(dv_bot: Bot) -> None:
    bot = dv_bot
    payload = {
        "id": "1700000000000",
        "createdDateTime": "2026-09-01T08:15:00.000Z",
        "from": {"user": {"id": "x", "displayName": "Siri Vaktmester"}},
        "body": {
            "contentType": "html",
            "content": "<p>Renholderne kom ikke <b>i dag</b> heller.</p><p>Doene er skitne.</p>",
        },
        "linkToMessage": "https://teams.microsoft.com/l/message/19:abc/1700000000000",
    }
    value = {"commandId": "reportDeviation", "commandContext": "message", "messagePayload": payload}
    status_code, body = await bot.post(
        compose(
            bot.stub.url,
            "composeExtension/fetchTask",
            value,
            conversation="19:team-general@thread.tacv2",
            conversation_type="channel",
        )
    )
    assert status_code == 200, body
    task = body["task"]
    assert task["type"] == "continue"
    card = task["value"]["card"]["content"]
    validate_card(card)
    assert "Siri Vaktmester" in texts_of(card)
    assert all(a["type"] == "Action.Submit" for a in card["actions"])

    async def submit(card: dict[str, Any], verb: str, inputs: dict[str, Any]) -> dict[str, Any]:
        data = {**action(card, verb), **inputs}
        code, answer = await bot.post(
            compose(
                bot.stub.url,
                "composeExtension/submitAction",
                {"commandId": "reportDeviation", "commandContext": "message", "data": data},
                conversation="19:team-general@thread.tacv2",
                conversation_type="channel",
            )
        )
        assert code == 200, answer
        return dict(answer["task"])

    step = await submit(card, "deviation.next", what(severity="medium"))
    card = step["value"]["card"]["content"]
    assert inputs_of(card)["description"]["value"] == "Renholderne kom ikke i dag heller.\nDoene er skitne."
    step = await submit(card, "deviation.next", {**details(), "description": inputs_of(card)["description"]["value"]})
    card = step["value"]["card"]["content"]
    done = await submit(card, "deviation.submit", {})
    assert done["type"] == "message" and "AV-" in done["value"]
    ref = done["value"].split()[1]
    rows = await bot.rows(DeviationReport, DeviationReport.ref == ref)
    assert rows[0].source["author_name"] == "Siri Vaktmester"
    await bot.drain()
    assert any(ref in texts_of(c) and "Takk!" in texts_of(c) for c in bot.stub.cards(KARI_CHAT))
    assert not any(ref in texts_of(c) for c in bot.stub.cards("19:team-general@thread.tacv2"))
    entries = await bot.rows(AuditEntry, AuditEntry.entity_id == ref)
    assert [e.action for e in entries] == ["deviation.submitted"]
