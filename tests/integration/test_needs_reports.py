"""Needs reports (behovsmelding) through the real HTTP app, on SQLite and PostgreSQL.

The app is `app.build_app(settings)` on an aiohttp TestServer; every activity carries a
Connector stub as `serviceUrl`, so the bot's replies, the intake post, card updates and the
submitter's notice all land on the stub. The outbox worker is driven by hand
(`runtime.outbox.run_once()`) so each test decides when side effects happen; one test runs
the real background worker (RUN_WORKERS=true). Every card the bot sends or answers with is
checked with `validate_card`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from procurement.contracts.model import ContractData
from procurement.needs.fields import LIMITS, NEEDS_REPORT_FIELDS
from procurement.store.tables import (
    Competition,
    Draft,
    NeedsReport,
    SubmitRecord,
)
from tests.cardcheck import validate_card
from tests.connector_stub import adaptive_cards
from tests.integration.bot_harness import (
    FORM_FIELDS,
    INGRID,
    INTAKE,
    KARI,
    KARI_CHAT,
    OLA,
    Bot,
    BotFactory,
    actions_of,
    execute_activity,
    inputs_of,
    message_after,
    ref_in,
    texts_of,
    today,
    token_of,
    valid_inputs,
    verbs_of,
    year,
)

# -- the form ------------------------------------------------------------------------------


async def test_behovsmelding_opens_the_form_with_all_inputs(bot: Bot) -> None:
    cards = await bot.say("behovsmelding")
    assert len(cards) == 1
    form = cards[0]
    assert "Ny behovsmelding" in texts_of(form)
    inputs = inputs_of(form)
    assert sorted(inputs) == sorted(FORM_FIELDS)
    assert set(NEEDS_REPORT_FIELDS) == set(FORM_FIELDS)
    assert len(inputs) == 16
    assert all(i.get("label") for i in inputs.values())
    assert verbs_of(form)[:2] == ["needs_report.submit", "needs_report.save_draft"]
    # The submit carries a card-instance token (idempotency), the same on both buttons.
    tokens = {a["data"].get("token") for a in actions_of(form)}
    assert len(tokens) == 1 and None not in tokens
    # Maximum lengths shown match the server's limits.
    assert inputs["title"]["maxLength"] == LIMITS["title"]
    assert inputs["need"]["maxLength"] == LIMITS["need"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("estimated_value", "1.300", "kan bety både"),
        ("start_date", "2020-01-01", "tilbake i tid"),
        ("title", "", "Skriv en kort tittel"),
        ("title", "x" * 5000, "for lang: 5000 tegn"),
        ("category", "weapons", "Velg en av verdiene"),
        ("duration_months", "0", "minst 1 måned"),
        ("cpv", "abc", "CPV-koden skal være 8 siffer"),
    ],
)
async def test_invalid_submit_returns_the_form_with_values_and_messages(
    bot: Bot, field: str, value: str, expected: str
) -> None:
    form = (await bot.say("behovsmelding"))[0]
    token = token_of(form)
    values = valid_inputs(**{field: value})
    card = await bot.submit(values, token)

    # The same form again …
    assert sorted(inputs_of(card)) == sorted(FORM_FIELDS)
    assert "Skjemaet er ikke sendt" in texts_of(card)
    # … the Norwegian message right under the field …
    message = message_after(card, field)
    assert message is not None and expected in message, message
    # … no message at the fields that were fine …
    for other in FORM_FIELDS:
        if other != field:
            assert message_after(card, other) is None, (other, message_after(card, other))
    # … and what the user typed is kept (the past date as typed; an over-long text at least up
    # to the field's limit, so the user can shorten it).
    inputs = inputs_of(card)
    for key in ("title", "need", "estimated_value", "value_basis", "faggruppe", "cpv"):
        shown = str(inputs[key].get("value") or "")
        if len(values[key]) > LIMITS.get(key, 10**9):
            assert values[key].startswith(shown) and len(shown) >= LIMITS[key], key
        else:
            assert shown == values[key], key
    assert inputs["service_area"]["value"] == values["service_area"]
    assert inputs["category"]["value"] == values["category"]
    if field != "start_date":
        assert inputs["start_date"]["value"] == values["start_date"]
    else:
        assert inputs["start_date"].get("value") == value
    if field != "duration_months":
        assert inputs["duration_months"]["value"] == 24
    assert inputs["option_months"]["value"] == 12
    # The retry keeps the same token, so a later valid submit of this card is still idempotent.
    assert token_of(card) == token
    # Nothing was stored, nothing queued.
    assert await bot.rows(NeedsReport) == []
    assert await bot.rows(SubmitRecord) == []
    assert await bot.outbox() == []


async def test_all_errors_at_once(bot: Bot) -> None:
    card = await bot.submit({"verb": "needs_report.submit"}, uuid.uuid4().hex)
    required = [
        "title",
        "need",
        "service_area",
        "estimated_value",
        "category",
        "agreement_type",
        "start_date",
        "duration_months",
    ]
    for field in required:
        assert message_after(card, field), field
    assert "(8)" in texts_of(card)
    assert await bot.rows(NeedsReport) == []


async def test_very_long_values_in_several_fields_still_get_the_form_back(bot: Bot) -> None:
    """A client that ignores maxLength (or a paste into several fields): the form comes back
    with the length messages, and the form still opens afterwards (the draft is not poison)."""
    long = "🚀" * 10_000
    card = await bot.submit(valid_inputs(title=long, need=long, risk_notes=long), uuid.uuid4().hex)
    assert "Skjemaet er ikke sendt" in texts_of(card), texts_of(card)[:200]
    assert "for lang" in (message_after(card, "title") or "")
    [reopened] = await bot.say("behovsmelding")
    assert sorted(inputs_of(reopened)) == sorted(FORM_FIELDS), texts_of(reopened)[:200]


@pytest.mark.parametrize(
    ("verb", "data", "expected", "bad"),
    [
        ("needs_report.withdraw", {"ref": "\ud800"}, "Jeg finner ikke noe med den referansen", "surrogate"),
        ("needs_report.approve", {"ref": "BM-\udfff"}, "Jeg finner ikke noe med den referansen", "surrogate"),
        ("needs_report.submit", {"token": "a\ud800"}, "Skjemaet er ikke sendt", "surrogate"),
        ("needs_report.save_draft", {"title": "a\ud800b"}, "Utkastet er lagret", "surrogate"),
        ("needs_report.withdraw", {"ref": "BM-\u0000"}, "Jeg finner ikke noe med den referansen", "nul"),
        ("needs_report.submit", {"token": "a\u0000"}, "Skjemaet er ikke sendt", "nul"),
    ],
)
async def test_unstorable_characters_get_an_answer_not_an_error(
    bot: Bot, verb: str, data: dict[str, Any], expected: str, bad: str
) -> None:
    """Lone surrogates (any database) and NUL (PostgreSQL) can't be stored or compared: the
    user must still get the normal answer ("not found", the form with messages)."""
    card = await bot.invoke(verb, {**data, "verb": verb}, user=INGRID if "approve" in verb else KARI)
    assert expected in texts_of(card), texts_of(card)[:200]


# -- submit ----------------------------------------------------------------------------------


async def test_valid_submit_gives_a_summary_with_ref_and_consequences(bot: Bot) -> None:
    form = (await bot.say("behovsmelding"))[0]
    card = await bot.submit(valid_inputs(), token_of(form))
    text = texts_of(card)
    ref = f"BM-{year()}-0001"
    assert f"Behovsmelding {ref} er sendt" in text
    assert "Innkjøpsseksjonen har fått meldingen" in text
    # 1 300 000 kr, services: run by procurement, KGV, Doffin, climate weight, wage conditions.
    assert "Påkrevd" in text
    for phrase in ("Doffin", "1 300 000"):
        assert phrase in text, phrase
    assert "Trekk tilbake" not in text  # no framework agreement covers it
    assert verbs_of(card) == ["needs_report.mine"]

    report = await bot.report(ref)
    assert report.status == "submitted"
    assert report.submitter_aad_id == KARI and report.submitter_name == "Kari Nordmann"
    assert report.estimated_value == 1_300_000
    assert report.category == "services"
    codes = [c["code"] for c in report.assessment["consequences"]]
    assert {"run_by_procurement", "kgv", "doffin", "climate_weight", "wage_conditions"} <= set(codes)
    assert "below_reporting_threshold" not in codes
    assert report.data["start_date"] == valid_inputs()["start_date"]
    assert report.data["faggruppe"] == ["Per Pleier", "Siri Sykepleier"]

    entries = await bot.audit(ref)
    assert [e.action for e in entries] == ["needs_report.submitted"]
    assert entries[0].actor_aad_id == KARI and entries[0].activity_id.startswith("f:")
    assert [o.kind for o in await bot.outbox()] == ["needs_report.post_intake"]


async def test_small_purchase_is_told_it_is_below_the_threshold(bot: Bot) -> None:
    form = (await bot.say("behovsmelding"))[0]
    card = await bot.submit(valid_inputs(estimated_value="50 000"), token_of(form))
    report = await bot.report(ref_in(card))
    codes = [c["code"] for c in report.assessment["consequences"]]
    assert codes[0] == "below_reporting_threshold"
    assert "doffin" not in codes and "kgv" not in codes


async def test_same_token_twice_is_one_report(bot: Bot) -> None:
    form = (await bot.say("behovsmelding"))[0]
    token = token_of(form)
    first = await bot.submit(valid_inputs(), token)
    again = await bot.submit(valid_inputs(), token)
    ref = f"BM-{year()}-0001"
    assert ref_in(first) == ref_in(again) == ref
    assert "allerede sendt som" in texts_of(again)
    assert len(await bot.rows(NeedsReport)) == 1
    assert len(await bot.rows(SubmitRecord)) == 1
    assert len(await bot.outbox()) == 1
    assert [e.action for e in await bot.audit(ref)] == ["needs_report.submitted"]
    # Another card (new token) is a new report.
    form2 = (await bot.say("behovsmelding"))[0]
    third = await bot.submit(valid_inputs(), token_of(form2))
    assert ref_in(third) == f"BM-{year()}-0002"


async def test_concurrent_double_tap_is_one_report(bot: Bot) -> None:
    form = (await bot.say("behovsmelding"))[0]
    token = token_of(form)
    cards = await asyncio.gather(*(bot.submit(valid_inputs(), token) for _ in range(2)))
    refs = {ref_in(c) for c in cards}
    assert refs == {f"BM-{year()}-0001"}, [texts_of(c)[:300] for c in cards]
    assert len(await bot.rows(NeedsReport)) == 1
    assert len(await bot.outbox()) == 1


async def test_concurrent_submits_with_different_tokens_get_distinct_refs(
    bot: Bot,
) -> None:
    """Five people submitting at the same moment (the first reports of the year)."""
    cards = await asyncio.gather(*(bot.submit(valid_inputs(title=f"Behov {i}"), uuid.uuid4().hex) for i in range(5)))
    refs = sorted(ref_in(c) for c in cards)
    assert refs == [f"BM-{year()}-{i:04d}" for i in range(1, 6)], [texts_of(c)[:200] for c in cards]
    assert len(await bot.rows(NeedsReport)) == 5


# -- intake ----------------------------------------------------------------------------------


async def test_outbox_posts_the_intake_card_once(bot: Bot) -> None:
    ref = await bot.submit_valid()
    assert bot.stub.cards(INTAKE) == []  # nothing before the outbox runs
    assert await bot.drain() == 1
    for _ in range(3):
        assert await bot.runtime.outbox.run_once() == 0
    cards = bot.stub.cards(INTAKE)
    assert len(cards) == 1
    intake = cards[0]
    text = texts_of(intake)
    assert "Ny behovsmelding: Transport av hjelpemidler" in text
    assert ref in text and "Kari Nordmann" in text and "Venter på behandling" in text
    assert verbs_of(intake) == ["needs_report.approve", "needs_report.request_info", "needs_report.reject"]
    assert all(a["data"]["ref"] == ref for a in actions_of(intake))
    assert "decision_note" in inputs_of(intake)
    # Universal Actions: the innkjøper's client refreshes the card.
    assert intake["refresh"]["action"]["verb"] == "needs_report.refresh"
    assert intake["refresh"]["userIds"] == [f"29:{INGRID}"]
    report = await bot.report(ref)
    assert report.intake_conversation_id == INTAKE
    delivered = bot.stub.activities(INTAKE)[0]
    assert report.intake_activity_id == delivered["id"]
    [item] = await bot.outbox()
    assert item.status == "done" and item.attempts == 1


async def test_background_worker_posts_without_help(start_bot: BotFactory, new_database: Any) -> None:
    b = await start_bot(await new_database("sqlite"), RUN_WORKERS="true", WORKER_POLL_SECONDS="0.2")
    await b.say("hei")
    ref = await b.submit_valid()
    await b.stub.wait_for(lambda: len(b.stub.cards(INTAKE)) == 1, within=10)
    await asyncio.sleep(0.5)
    assert len(b.stub.cards(INTAKE)) == 1
    assert ref in texts_of(b.stub.cards(INTAKE)[0])


async def test_intake_post_survives_503_and_is_not_lost(bot: Bot) -> None:
    bot.runtime.outbox.base_backoff = 0.05  # seconds instead of 2 s, 4 s …
    ref = await bot.submit_valid()
    bot.stub.fail(INTAKE, 503, times=2)
    assert await bot.runtime.outbox.run_once() == 1
    assert bot.stub.cards(INTAKE) == []
    [item] = await bot.outbox()
    assert item.status == "pending" and item.attempts == 1 and "503" in (item.last_error or "")
    deadline = time.monotonic() + 10
    while not bot.stub.cards(INTAKE) and time.monotonic() < deadline:
        await bot.runtime.outbox.run_once()
        await asyncio.sleep(0.05)
    assert len(bot.stub.cards(INTAKE)) == 1
    assert len(bot.stub.refused(503)) == 2
    [item] = await bot.outbox()
    assert item.status == "done"
    assert (await bot.report(ref)).intake_activity_id


async def test_intake_post_honours_429_retry_after(bot: Bot) -> None:
    await bot.submit_valid()
    bot.stub.fail(INTAKE, 429, times=1, retry_after=1)
    assert await bot.runtime.outbox.run_once() == 1
    [item] = await bot.outbox()
    assert item.status == "pending"
    assert item.attempts == 0  # a throttle is not a failed attempt
    wait = (item.next_attempt_at - datetime.now(item.next_attempt_at.tzinfo)).total_seconds()
    assert 0.5 < wait <= 1.05, wait
    # Not before Retry-After …
    assert await bot.runtime.outbox.run_once() == 0
    assert bot.stub.cards(INTAKE) == []
    # … but right after it.
    await asyncio.sleep(max(0.0, wait) + 0.1)
    assert await bot.runtime.outbox.run_once() == 1
    assert len(bot.stub.cards(INTAKE)) == 1
    assert [r.status for r in bot.stub.requests if r.conversation_id == INTAKE] == [429, 201]


# -- decisions -------------------------------------------------------------------------------


async def _submitted_and_posted(bot: Bot, **overrides: Any) -> str:
    ref = await bot.submit_valid(**overrides)
    await bot.drain()
    assert (await bot.report(ref)).intake_activity_id
    return ref


async def test_approve_by_non_innkjoper_is_refused(bot: Bot) -> None:
    ref = await _submitted_and_posted(bot)
    before = len(await bot.audit())
    card = await bot.decide("needs_report.approve", ref, user=OLA)
    text = texts_of(card)
    assert "bare medlemmer av Innkjøpsseksjonen" in text and "Ingenting er endret" in text
    # The refusal reveals nothing of the report (issue 8.1): no status, title, value or buttons.
    report = await bot.report(ref)
    assert "Venter på behandling" not in text and report.title not in text and ref not in text
    assert verbs_of(card) == []
    assert report.status == "submitted" and report.decided_by_aad_id is None
    assert len(await bot.audit()) == before
    assert await bot.rows(Competition) == []
    assert bot.stub.updates == []
    assert await bot.drain() == 0  # nothing queued for the submitter
    # Even the submitter cannot approve their own report.
    await bot.decide("needs_report.approve", ref, user=KARI)
    assert (await bot.report(ref)).status == "submitted"


async def test_approve_by_innkjoper(bot: Bot) -> None:
    ref = await _submitted_and_posted(bot)
    intake_id = (await bot.report(ref)).intake_activity_id
    kari_cards_before = len(bot.stub.cards(KARI_CHAT))

    status, body = await bot.post(
        execute_activity(
            bot.stub.url,
            "needs_report.approve",
            {"verb": "needs_report.approve", "ref": ref, "decision_note": "Ser bra ut, vi tar kontakt."},
            user=INGRID,
            conversation=INTAKE,
            conversation_type="channel",
            replyToId=intake_id,
        )
    )
    assert status == 200
    card = body["value"]
    validate_card(card)
    competition = f"K-{year()}-0001"
    text = texts_of(card)
    assert "Godkjent av Ingrid Innkjøper" in text
    assert f"Konkurranse {competition} er opprettet" in text
    assert "Ser bra ut, vi tar kontakt." in text
    assert actions_of(card) == [] and "decision_note" not in inputs_of(card)

    report = await bot.report(ref)
    assert report.status == "approved"
    assert report.decided_by_aad_id == INGRID and report.decided_by_name == "Ingrid Innkjøper"
    assert report.decision_note == "Ser bra ut, vi tar kontakt."
    assert report.competition_ref == competition
    [comp] = await bot.rows(Competition)
    assert comp.ref == competition and comp.needs_report_id == report.id and comp.title == report.title

    entries = await bot.audit()
    mine = [(e.action, e.entity_id) for e in entries if e.entity_id in (ref, competition)]
    assert mine == [
        ("needs_report.submitted", ref),
        ("competition.created", competition),
        ("needs_report.approved", ref),
    ]
    approved = next(e for e in entries if e.action == "needs_report.approved")
    created = next(e for e in entries if e.action == "competition.created")
    assert approved.actor_aad_id == INGRID and created.actor_aad_id == INGRID
    assert created.activity_id and created.activity_id == approved.activity_id
    assert created.activity_id.startswith("f:")
    assert created.details == {"needs_report": ref}
    assert approved.details["competition"] == competition

    # Everyone else sees the decision: the intake message was edited in place.
    [update] = bot.stub.updates
    assert (update.conversation_id, update.activity_id) == (INTAKE, intake_id)
    [updated_card] = adaptive_cards(update.activity)
    assert "Godkjent av Ingrid Innkjøper" in texts_of(updated_card)

    # The submitter is told in her personal chat, by the outbox.
    assert len(bot.stub.cards(KARI_CHAT)) == kari_cards_before
    updates_before = len(bot.stub.updates)
    await bot.drain(rounds=20)
    # The notice, the competition's room (it redraws the intake card as it goes) and the
    # archive copies of the decided report and the room's draft strategy, each done once.
    rows = await bot.outbox()
    done = [(r.kind, r.status) for r in rows]
    for kind in ("needs_report.notify_submitter", "competition.provision_room"):
        assert done.count((kind, "done")) == 1, (kind, done)
    archived = sorted(r.payload["document"] for r in rows if r.kind == "archive.document")
    assert archived == ["needs_report", "strategy"], rows
    assert all(status == "done" for _, status in done), done
    assert len(bot.stub.updates) > updates_before
    last = texts_of(adaptive_cards(bot.stub.updates[-1].activity)[0])
    assert "Godkjent av Ingrid Innkjøper" in last
    notices = [texts_of(c) for c in bot.stub.cards(KARI_CHAT)[kari_cards_before:]]
    decisions = [n for n in notices if f"Behovsmelding {ref}: Godkjent" in n]
    assert len(decisions) == 1
    assert competition in decisions[0] and "Ser bra ut, vi tar kontakt." in decisions[0]
    assert await bot.drain() == 0
    assert len(bot.stub.cards(KARI_CHAT)) == kari_cards_before + len(notices)


async def test_second_approve_is_already_handled(bot: Bot) -> None:
    ref = await _submitted_and_posted(bot)
    await bot.decide("needs_report.approve", ref)
    await bot.drain()
    audit_before = len(await bot.audit())
    updates_before = len(bot.stub.updates)
    kari_before = len(bot.stub.cards(KARI_CHAT))

    for verb in ("needs_report.approve", "needs_report.reject", "needs_report.request_info"):
        card = await bot.decide(verb, ref)
        text = texts_of(card)
        assert "Allerede behandlet av Ingrid Innkjøper: Godkjent" in text, text
        assert "Ingenting er endret" in text

    report = await bot.report(ref)
    assert report.status == "approved" and report.competition_ref == f"K-{year()}-0001"
    assert len(await bot.rows(Competition)) == 1
    assert len(await bot.audit()) == audit_before
    assert len(bot.stub.updates) == updates_before
    assert await bot.drain() == 0
    assert len(bot.stub.cards(KARI_CHAT)) == kari_before


async def test_reject(bot: Bot) -> None:
    ref = await _submitted_and_posted(bot)
    card = await bot.decide("needs_report.reject", ref, note="Dekkes av eksisterende avtale.")
    assert "Avvist av Ingrid Innkjøper" in texts_of(card)
    report = await bot.report(ref)
    assert report.status == "rejected" and report.competition_ref is None
    assert await bot.rows(Competition) == []
    assert [e.action for e in await bot.audit(ref)] == ["needs_report.submitted", "needs_report.rejected"]
    assert len(bot.stub.updates) == 1
    kari_before = len(bot.stub.cards(KARI_CHAT))
    await bot.drain()
    [notice] = bot.stub.cards(KARI_CHAT)[kari_before:]
    assert "avvist" in texts_of(notice) and "Dekkes av eksisterende avtale." in texts_of(notice)
    # Rejected is final: an approve afterwards changes nothing.
    card = await bot.decide("needs_report.approve", ref)
    assert "Allerede behandlet" in texts_of(card)
    assert (await bot.report(ref)).status == "rejected"


async def test_request_info_then_approve(bot: Bot) -> None:
    ref = await _submitted_and_posted(bot)
    card = await bot.decide("needs_report.request_info", ref, note="Hva er verdigrunnlaget?")
    assert "Mer informasjon etterspurt" in texts_of(card)
    # Still open: the decision buttons stay.
    assert verbs_of(card) == ["needs_report.approve", "needs_report.request_info", "needs_report.reject"]
    assert (await bot.report(ref)).status == "info_requested"
    kari_before = len(bot.stub.cards(KARI_CHAT))
    await bot.drain()
    [notice] = bot.stub.cards(KARI_CHAT)[kari_before:]
    assert "trenger mer informasjon" in texts_of(notice) and "Hva er verdigrunnlaget?" in texts_of(notice)
    # Asking again without a question changes nothing (the question is required; the whole
    # question-and-answer loop is in test_needs_questions.py).
    again = await bot.decide("needs_report.request_info", ref)
    assert "Skriv spørsmålet til melderen" in (message_after(again, "decision_note") or "")
    # Then approve.
    await bot.decide("needs_report.approve", ref)
    report = await bot.report(ref)
    assert report.status == "approved" and report.competition_ref == f"K-{year()}-0001"
    assert [e.action for e in await bot.audit(ref)] == [
        "needs_report.submitted",
        "needs_report.info_requested",
        "needs_report.approved",
    ]


async def test_decision_on_unknown_ref(bot: Bot) -> None:
    card = await bot.invoke(
        "needs_report.approve",
        {"verb": "needs_report.approve", "ref": "BM-1999-9999"},
        user=INGRID,
        conversation=INTAKE,
        conversation_type="channel",
    )
    assert "Jeg finner ikke noe med den referansen" in texts_of(card)


async def test_refresh_shows_the_current_card(bot: Bot) -> None:
    ref = await _submitted_and_posted(bot)
    await bot.decide("needs_report.reject", ref)
    card = await bot.invoke(
        "needs_report.refresh",
        {"verb": "needs_report.refresh", "ref": ref},
        user=INGRID,
        conversation=INTAKE,
        conversation_type="channel",
    )
    assert "Avvist av Ingrid Innkjøper" in texts_of(card)


async def test_throttled_card_update_does_not_hide_a_committed_approval(bot: Bot) -> None:
    """The intake channel is busy (429 on the PUT): the approval is committed, so the presser
    must still see the approved card, and the others' copy must be updated later."""
    ref = await _submitted_and_posted(bot)
    bot.stub.fail(INTAKE, 429, times=1, retry_after=1)
    card = await bot.decide("needs_report.approve", ref)
    assert (await bot.report(ref)).status == "approved"
    assert "Godkjent av Ingrid Innkjøper" in texts_of(card), texts_of(card)[:300]
    deadline = time.monotonic() + 5
    while not bot.stub.updates and time.monotonic() < deadline:
        await bot.runtime.outbox.run_once()
        await asyncio.sleep(0.1)
    assert bot.stub.updates, "the intake message was never updated for the others"


async def test_concurrent_approve_and_reject_decide_once(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two innkjøpere press at the same moment: exactly one decision is recorded.

    The needs-report service's units of work wait 0.3 s before they commit, so the second press
    certainly reads the report while the first one's transaction is still open (the race made
    deterministic; the rest of the app is not slowed)."""
    refs = [await _submitted_and_posted(bot, title=f"Behov {i}") for i in range(2)]
    needs = bot.runtime.services.needs
    store = needs.store

    class SlowStore:
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        @contextlib.asynccontextmanager
        async def session(self) -> AsyncIterator[Any]:
            async with store.session() as session:
                yield session
                await asyncio.sleep(0.3)  # still inside the transaction: commit comes after this

    monkeypatch.setattr(needs, "store", SlowStore())
    await asyncio.gather(
        *(bot.decide(verb, ref) for ref in refs for verb in ("needs_report.approve", "needs_report.reject"))
    )
    monkeypatch.setattr(needs, "store", store)

    doubles = {}
    for ref in refs:
        decisions = [e.action for e in await bot.audit(ref) if e.action != "needs_report.submitted"]
        if len(decisions) != 1:
            doubles[ref] = decisions
    assert not doubles, f"decided twice: {doubles}"
    approved = 0
    for ref in refs:
        report = await bot.report(ref)
        assert report.status in ("approved", "rejected")
        assert (report.competition_ref is not None) == (report.status == "approved")
        approved += report.status == "approved"
    assert len(await bot.rows(Competition)) == approved


# -- withdraw --------------------------------------------------------------------------------


async def _framework(
    bot: Bot,
    category: str = "services",
    *,
    ref: str = "RA-2024-017",
    title: str = "Rammeavtale transporttjenester",
    cpv: tuple[str, ...] = ("60100000-9",),
    scope: str = "Transport av hjelpemidler og utstyr mellom lager og brukere",
) -> None:
    await bot.runtime.services.contracts.upsert_contract(
        ContractData(
            external_ref=ref,
            supplier_name="Hjelpemiddeltransport AS",
            title=title,
            category=category,  # type: ignore[arg-type]
            start_date=today() - timedelta(days=200),
            end_date=today() + timedelta(days=500),
            agreement_type="framework",
            value_nok=5_000_000,
            cpv_codes=cpv,
            scope=scope,
        ),
        source="test",
    )


async def test_withdraw_when_a_framework_agreement_covers_it(bot: Bot) -> None:
    await _framework(bot)
    # Same category, but cleaning: named nowhere on the card.
    await _framework(bot, ref="RA-2024-018", title="Renholdstjenester", cpv=("90911200",), scope="Renhold av bygg")
    form = (await bot.say("behovsmelding"))[0]
    card = await bot.submit(valid_inputs(cpv="60130000"), token_of(form))
    ref = ref_in(card)
    text = texts_of(card)
    assert "«Rammeavtale transporttjenester»" in text and "RA-2024-017" in text
    # ... and why: the CPV group 601 (road transport) and the title.
    assert "samme CPV-gruppe 601" in text and "tittelen ligner" in text
    assert "Renholdstjenester" not in text and "RA-2024-018" not in text
    # The framework agreement is the first consequence, and withdrawing the first action.
    report = await bot.report(ref)
    assert report.assessment["consequences"][0]["code"] == "framework_agreement"
    first = actions_of(card)[0]
    assert first["verb"] == "needs_report.withdraw"
    assert first["title"].startswith("Trekk tilbake")
    assert first["data"]["ref"] == ref
    await bot.drain()  # intake posted

    # Someone else cannot withdraw it.
    other = await bot.invoke("needs_report.withdraw", first["data"], user=OLA)
    assert "Jeg finner ikke noe med den referansen" in texts_of(other)
    # An innkjøper cannot either (it is the submitter's).
    await bot.invoke("needs_report.withdraw", first["data"], user=INGRID)
    assert (await bot.report(ref)).status == "submitted"

    done = await bot.invoke("needs_report.withdraw", first["data"], user=KARI)
    assert f"Behovsmelding {ref} er trukket tilbake" in texts_of(done)
    report = await bot.report(ref)
    assert report.status == "withdrawn"
    assert [e.action for e in await bot.audit(ref)] == ["needs_report.submitted", "needs_report.withdrawn"]
    # The intake card is updated for the section.
    assert await bot.drain() == 1
    [update] = bot.stub.updates
    assert update.activity_id == report.intake_activity_id
    [updated] = adaptive_cards(update.activity)
    assert "Trukket tilbake" in texts_of(updated)
    assert actions_of(updated) == []
    # Twice: too late, nothing changes; and no decision after a withdrawal.
    again = await bot.invoke("needs_report.withdraw", first["data"], user=KARI)
    assert "kan ikke trekkes tilbake" in texts_of(again)
    card = await bot.decide("needs_report.approve", ref)
    assert "Allerede behandlet" in texts_of(card)
    assert (await bot.report(ref)).status == "withdrawn"


async def test_framework_agreements_that_cover_something_else_say_nothing(bot: Bot) -> None:
    # Same category as the report (services), but other things: the category is no reason.
    await _framework(bot, ref="RA-2024-018", title="Renholdstjenester", cpv=("90911200",), scope="Renhold av bygg")
    await _framework(bot, ref="RA-2024-019", title="Kantinetjenester", cpv=("55500000",), scope="")
    form = (await bot.say("behovsmelding"))[0]
    card = await bot.submit(valid_inputs(), token_of(form))
    assert "needs_report.withdraw" not in verbs_of(card)
    text = texts_of(card)
    assert "Renholdstjenester" not in text and "Kantinetjenester" not in text and "eHandel på avtalen" not in text
    report = await bot.report(ref_in(card))
    assert "framework_agreement" not in [c["code"] for c in report.assessment["consequences"]]


async def test_withdraw_after_approval_is_too_late(bot: Bot) -> None:
    await _framework(bot)
    ref = await _submitted_and_posted(bot)
    await bot.decide("needs_report.approve", ref)
    card = await bot.invoke("needs_report.withdraw", {"verb": "needs_report.withdraw", "ref": ref})
    assert "allerede behandlet (Godkjent)" in texts_of(card)
    assert (await bot.report(ref)).status == "approved"


# -- drafts and the list -----------------------------------------------------------------------


async def test_save_draft_then_open_is_prefilled(bot: Bot) -> None:
    form = (await bot.say("behovsmelding"))[0]
    partial = {
        "title": "Ny skolebuss",
        "need": "Elever i Nordbygda trenger skyss",
        "estimated_value": "2,5 mill",
        "category": "services",
        "verb": "needs_report.save_draft",
        "token": token_of(form),
    }
    saved = await bot.invoke("needs_report.save_draft", partial)
    assert "Utkastet er lagret" in texts_of(saved)
    assert inputs_of(saved)["title"]["value"] == "Ny skolebuss"
    assert await bot.rows(NeedsReport) == []
    [draft] = await bot.rows(Draft)
    assert draft.user_aad_id == KARI and draft.data["title"] == "Ny skolebuss"

    reopened = (await bot.say("behovsmelding"))[0]
    assert "fylt inn utkastet" in texts_of(reopened)
    inputs = inputs_of(reopened)
    assert inputs["title"]["value"] == "Ny skolebuss"
    assert inputs["estimated_value"]["value"] == "2,5 mill"
    assert inputs["category"]["value"] == "services"
    # Someone else's form is empty.
    ola_form = (await bot.say("behovsmelding", user=OLA))[0]
    assert inputs_of(ola_form)["title"]["value"] == ""
    # The list shows the draft.
    [listing] = await bot.say("mine behovsmeldinger")
    assert "utkast som ikke er sendt: «Ny skolebuss»" in texts_of(listing)
    # A successful submit clears the draft.
    await bot.submit(valid_inputs(title="Ny skolebuss"), token_of(reopened))
    assert await bot.rows(Draft) == []
    assert "fylt inn utkastet" not in texts_of((await bot.say("behovsmelding"))[0])


async def test_invalid_submit_keeps_a_draft(bot: Bot) -> None:
    await bot.submit(valid_inputs(estimated_value="1.300"), uuid.uuid4().hex)
    [draft] = await bot.rows(Draft)
    assert draft.data["estimated_value"] == "1.300"


async def test_mine_lists_my_reports_newest_first(bot: Bot) -> None:
    [empty] = await bot.say("mine behovsmeldinger")
    assert "ikke sendt noen behovsmeldinger" in texts_of(empty)
    first = await bot.submit_valid(title="Første behov")
    second = await bot.submit_valid(title="Andre behov", estimated_value="50 000")
    await bot.submit_valid(user=OLA, title="Olas behov")
    [listing] = await bot.say("mine behovsmeldinger")
    text = texts_of(listing)
    assert f"{second} · Andre behov" in text and f"{first} · Første behov" in text
    assert text.index(second) < text.index(first)
    assert "Olas behov" not in text
    assert "Venter på behandling · 1 300 000 kr" in text or "1 300 000" in text
    # The same list from the button.
    card = await bot.invoke("needs_report.mine", {"verb": "needs_report.mine"})
    assert texts_of(card) == text
