"""Delivery status over HTTP (the app, the Connector stub): a job that keeps failing stops as a
dead letter after the configured attempts and Innkjøpsseksjonen's follow-up channel is alerted
exactly once; an innkjøper sees it in "status utsending" and retries it, and it completes; a
retried job that dies again is not alerted again; anyone else asking is refused and learns
nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from procurement.delivery.effects import AlertDeadLetter
from procurement.needs.effects import NotifySubmitter
from procurement.store.tables import AuditEntry, OutboxItem, utcnow
from tests.cardcheck import shown_text
from tests.connector_stub import card_texts
from tests.integration.bot_harness import INGRID, KARI, KARI_CHAT, OLA, OLA_CHAT, Bot, BotFactory, activity, texts_of

FOLLOWUP = "19:oppfolging-innkjop@thread.tacv2"
KIND_NB = "Avgjørelse på behovsmelding til innsenderen"
REASON_NB = "tjenesten svarte ikke eller var midlertidig utilgjengelig"


@pytest.fixture
async def bot(start_bot: BotFactory, db_url: str) -> Bot:
    """The app with a follow-up channel and 3 attempts a few milliseconds apart."""
    b = await start_bot(
        db_url,
        FOLLOWUP_CHANNEL_ID=FOLLOWUP,
        OUTBOX_MAX_ATTEMPTS="3",
        OUTBOX_BASE_BACKOFF_SECONDS="0.001",
        OUTBOX_MAX_BACKOFF_SECONDS="0.001",
    )
    for user in (KARI, OLA, INGRID):
        await b.say("hei", user=user)
    return b


async def _run_until(bot: Bot, done: Callable[[list[OutboxItem]], bool], rounds: int = 40) -> list[OutboxItem]:
    """Run the outbox (its backoff is a few ms here) until `done(rows)`, or fail."""
    for _ in range(rounds):
        await bot.runtime.outbox.run_once()
        rows = await bot.outbox()
        if done(rows):
            return rows
        await asyncio.sleep(0.01)
    raise AssertionError([(r.kind, r.status, r.attempts, r.reason) for r in await bot.outbox()])


def _notice(rows: list[OutboxItem]) -> OutboxItem:
    [row] = [r for r in rows if r.kind == NotifySubmitter.kind]
    return row


def _alerts(bot: Bot) -> list[dict[str, Any]]:
    return [c for c in bot.stub.cards(FOLLOWUP) if "Utsending stoppet" in texts_of(c)]


def _retry_data(card: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "Action.Execute" and node.get("verb") == "outbox.retry":
                found.append(node["data"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found


async def _decision_notice_that_fails(bot: Bot, failures: int) -> str:
    """A needs report decided while the submitter's chat answers 503 `failures` times. Rejected,
    so that the notice is the only thing sent to her chat (an approval also opens a room)."""
    ref = await bot.submit_valid()
    await bot.drain()
    bot.stub.fail(KARI_CHAT, 503, times=failures)
    await bot.decide("needs_report.reject", ref, note="Dekkes av en eksisterende rammeavtale.")
    return ref


async def test_a_dead_letter_is_alerted_once_and_an_innkjopers_retry_completes_it(bot: Bot) -> None:
    ref = await _decision_notice_that_fails(bot, failures=6)
    before = len(bot.stub.cards(KARI_CHAT))

    # Three attempts, then dead; its alert goes to the follow-up channel, once.
    rows = await _run_until(bot, lambda rows: _notice(rows).status == "dead")
    notice = _notice(rows)
    assert notice.attempts == 3 and notice.reason == "unavailable" and notice.alerted_at is not None
    rows = await _run_until(bot, lambda rows: any(r.kind == AlertDeadLetter.kind and r.status == "done" for r in rows))
    [alert] = _alerts(bot)
    shown = texts_of(alert)
    assert KIND_NB in shown and ref in shown and REASON_NB in shown and "3 forsøk" in shown
    assert "503" not in shown and "Transient" not in shown  # no error text, only the plain reason
    assert _retry_data(alert) == [{"id": notice.id, "view": "alert", "verb": "outbox.retry"}]
    assert await bot.drain() == 0 and len(_alerts(bot)) == 1

    # The innkjøper sees it in her status card, newest problem first, and retries it there; the
    # chat still fails (3 faults left), so it dies again — and is not alerted again.
    [card] = await bot.say("status utsending", user=INGRID)
    shown = texts_of(card)
    assert "Status for utsending" in shown and "1 er stoppet" in shown
    assert f"{KIND_NB} – {ref}" in shown and REASON_NB in shown
    assert {"id": notice.id, "verb": "outbox.retry"} in _retry_data(card)
    card = await bot.invoke("outbox.retry", {"id": notice.id}, user=INGRID)
    assert "er lagt i kø igjen" in texts_of(card)
    row = _notice(await bot.outbox())
    assert row.status == "pending" and row.attempts == 0 and row.reason is None and row.alerted_at is not None
    [audit] = await bot.rows(AuditEntry, AuditEntry.action == "outbox.retried")
    assert audit.entity == "outbox" and audit.entity_id == str(notice.id) and audit.actor_aad_id == INGRID
    assert audit.details["from"] == "dead" and audit.details["reason"] == "unavailable"

    rows = await _run_until(bot, lambda rows: _notice(rows).status == "dead")
    assert await bot.drain() == 0
    assert len(_alerts(bot)) == 1, "a retried row's alert is not repeated"
    assert len([r for r in rows if r.kind == AlertDeadLetter.kind]) == 1

    # Retried from the channel's alert (the chat works again): the alert card says who, for
    # everyone, and the notice reaches the submitter once.
    alert_row = next(r for r in rows if r.kind == AlertDeadLetter.kind)
    card = await bot.invoke(
        "outbox.retry",
        {"id": notice.id, "view": "alert"},
        user=INGRID,
        conversation=FOLLOWUP,
        conversation_type="channel",
        replyToId=alert_row.message_id,
    )
    assert "Lagt i kø igjen av Ingrid Innkjøper" in texts_of(card) and _retry_data(card) == []
    assert any(u.activity_id == alert_row.message_id for u in bot.stub.updates)
    rows = await _run_until(bot, lambda rows: _notice(rows).status == "done")
    assert len(bot.stub.cards(KARI_CHAT)) == before + 1
    assert len(_alerts(bot)) == 1
    assert len(await bot.rows(AuditEntry, AuditEntry.action == "outbox.retried")) == 2

    # Pressing the old alert's button again changes nothing and says so.
    card = await bot.invoke(
        "outbox.retry",
        {"id": notice.id, "view": "alert"},
        user=INGRID,
        conversation=FOLLOWUP,
        conversation_type="channel",
    )
    assert "trenger ikke prøves igjen nå: sendt" in texts_of(card)
    assert len(await bot.rows(AuditEntry, AuditEntry.action == "outbox.retried")) == 2


async def test_anyone_else_asking_is_refused_and_learns_nothing(bot: Bot) -> None:
    ref = await _decision_notice_that_fails(bot, failures=3)
    rows = await _run_until(bot, lambda rows: _notice(rows).status == "dead")
    notice = _notice(rows)

    for command in ("status utsending", "delivery status"):
        [card] = await bot.say(command, user=OLA)
        shown = texts_of(card)
        assert "Ikke tilgang" in shown or "Access" in shown
        assert ref not in shown and KIND_NB not in shown and "stoppet" not in shown
    for data in ({"id": notice.id}, {"id": notice.id, "view": "alert"}, {"id": 999999}, {"id": "x"}):
        card = await bot.invoke("outbox.retry", data, user=OLA)
        assert ref not in texts_of(card) and _retry_data(card) == []
    card = await bot.invoke("outbox.status", {}, user=OLA)
    assert ref not in texts_of(card)
    assert _notice(await bot.outbox()).status == "dead"
    assert await bot.rows(AuditEntry, AuditEntry.action == "outbox.retried") == []
    assert not any(ref in t for c in bot.stub.cards(OLA_CHAT) for t in card_texts(c))


async def test_the_status_card_lists_problems_newest_first_bounded_with_counts(bot: Bot) -> None:
    """30 dead and failing jobs and a waiting one: 25 listed, dead or failing by their last
    failure (newest first), the counts cover all; hostile payload text stays text."""
    now = utcnow()
    async with bot.store.session() as session:
        for i in range(30):
            session.add(
                OutboxItem(
                    kind="records.mirror" if i % 2 else "needs_report.post_intake",
                    idempotency_key=f"t:{i}",
                    payload={"ref": f"BM-2026-{i:04d}" if i != 29 else "**[x](https://evil)**"},
                    status="dead" if i % 3 == 0 else "pending",
                    attempts=3,
                    reason="blocked" if i % 3 == 0 else "throttled",
                    reason_ref="F-ABC123",
                    created_at=now - timedelta(hours=5),
                    first_failed_at=now - timedelta(hours=4),
                    last_failed_at=now - timedelta(minutes=60 - i),
                    dead_at=now if i % 3 == 0 else None,
                    next_attempt_at=now + timedelta(days=1),
                )
            )
        session.add(
            OutboxItem(kind="x.unknown", idempotency_key="t:wait", payload={}, next_attempt_at=now + timedelta(days=1))
        )
    [card] = await bot.say("status utsending", user=INGRID)
    shown = texts_of(card)
    assert "1 venter, 20 feiler og prøves igjen automatisk, 10 er stoppet." in shown
    assert "Viser 25 av 31" in shown
    titles = [b["items"][0]["text"] for b in card["body"] if b.get("type") == "Container"]
    assert len(titles) == 25
    # The newest problem first; a payload's markdown shows as the text it is.
    assert shown_text(titles[0]) == "Registrene i SharePoint: annen utsending – **[x](https://evil)**"
    assert titles[1] == "Behovsmelding til innkjøpskanalen – BM-2026-0028"
    assert titles[2] == "Registrene i SharePoint: annen utsending – BM-2026-0027"
    assert "BM-2026-0004" not in shown and "BM-2026-0005" in shown  # the 25 newest problems
    assert "mottakeren har blokkert appen" in shown and "tjenesten ba oss vente" in shown
    assert len(_retry_data(card)) == 25

    # Only in a personal chat: in a channel she is sent there, and nothing is listed.
    status, _ = await bot.post(_channel_message(bot, "status utsending"))
    assert status in (200, 201, 202)
    [reply] = bot.stub.cards(FOLLOWUP)
    assert "Fortsett i personlig chat" in texts_of(reply) and "BM-2026" not in texts_of(reply)


def _channel_message(bot: Bot, text: str) -> dict[str, Any]:
    return activity(
        bot.stub.url,
        text=text,
        textFormat="plain",
        user=INGRID,
        conversation=FOLLOWUP,
        conversation_type="channel",
    )


async def test_a_retry_of_an_unknown_job_shows_the_status_again(bot: Bot) -> None:
    card = await bot.invoke("outbox.retry", {"id": 424242}, user=INGRID)
    assert "Fant ikke den jobben" in texts_of(card) and "Status for utsending" in texts_of(card)
    card = await bot.invoke("outbox.retry", {"id": "'; drop table outbox; --"}, user=INGRID)
    assert "Fant ikke den jobben" in texts_of(card)
    card = await bot.invoke("outbox.retry", {"id": ["1"] * 10_000}, user=INGRID)
    assert "Fant ikke den jobben" in texts_of(card)
    assert await bot.rows(AuditEntry, AuditEntry.action == "outbox.retried") == []
