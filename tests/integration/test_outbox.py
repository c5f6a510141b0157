"""The outbox: typed effects performed by the handler of their type, each by one of several
workers; failures sorted by the one error vocabulary into retry later or a dead letter, each
with a reason code; a dead letter audited and alerted once (never for a dead alert, never again
after a retry); a dead worker's claim taken over after its lease; a post recorded once is never
repeated; rows that failed before dead letters existed become dead letters."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from procurement.access import SYSTEM
from procurement.delivery.effects import AlertDeadLetter
from procurement.errors import PermanentError, TransientError, Unreachable
from procurement.needs.effects import NotifySubmitter
from procurement.store.database import MIGRATIONS_DIR, Store
from procurement.store.effects import Effect
from procurement.store.outbox import OutboxWorker, SentMessages
from procurement.store.tables import AuditEntry, OutboxItem, utcnow
from tests.integration.bot_harness import KARI_CHAT, Bot


@dataclass(frozen=True)
class Post(Effect):
    kind: ClassVar[str] = "test.post"
    n: int


@dataclass(frozen=True)
class Other(Effect):
    kind: ClassVar[str] = "test.other"
    name: str


async def _emit(store: Store, *effects: Effect) -> None:
    async with store.unit_of_work(SYSTEM) as uow:
        for effect in effects:
            uow.emit(effect)


async def _rows(store: Store) -> list[OutboxItem]:
    async with store.session() as session:
        return list(await session.scalars(sa.select(OutboxItem).order_by(OutboxItem.id)))


async def test_two_workers_do_each_effect_once_with_its_typed_handler(store: Store) -> None:
    await _emit(store, *(Post(i) for i in range(60)), Other("x"))
    done: Counter[int] = Counter()
    others: list[str] = []

    async def post(effect: Post) -> None:
        await asyncio.sleep(0.005)
        done[effect.n] += 1

    async def other(effect: Other) -> None:
        others.append(effect.name)

    workers = [OutboxWorker(store, {Post: post, Other: other}, batch=7) for _ in range(2)]

    async def drain(worker: OutboxWorker) -> int:
        handled = 0
        while n := await worker.run_once():
            handled += n
        return handled

    handled = await asyncio.gather(*(drain(w) for w in workers))
    assert done == Counter(dict.fromkeys(range(60), 1)), "each once"
    assert others == ["x"]
    assert sum(handled) == 61
    assert {r.status for r in await _rows(store)} == {"done"}


async def test_two_effect_types_with_one_kind_are_refused(store: Store) -> None:
    @dataclass(frozen=True)
    class Impostor(Effect):
        kind: ClassVar[str] = "test.post"

    async def nothing(effect: Effect) -> None:
        return None

    with pytest.raises(ValueError, match=r"test\.post"):
        OutboxWorker(store, {Post: nothing, Impostor: nothing})


async def test_failures_are_sorted(store: Store) -> None:
    async def handle(effect: Other) -> None:
        match effect.name:
            case "throttled":
                raise TransientError("Graph answered 429", retry_after=30, status=429)
            case "refused":
                raise PermanentError("Graph answered 403: no permission", status=403, code="Forbidden")
            case "gone":
                raise Unreachable("the user blocked the app", why="blocked", status=403)
            case "later":
                raise TransientError("connector unreachable")
            case _:
                raise ValueError("a bug")

    names = ["throttled", "refused", "gone", "later", "broken"]
    await _emit(store, *(Other(n) for n in names))
    worker = OutboxWorker(store, {Other: handle}, max_attempts=2, base_backoff=0.0)
    before = utcnow()
    assert await worker.run_once() == 5
    rows = {r.payload["name"]: r for r in await _rows(store)}

    # A throttle with Retry-After: back in 30 s, not counted as a failed attempt.
    t = rows["throttled"]
    assert t.status == "pending" and t.attempts == 0 and "429" in (t.last_error or "")
    assert before + timedelta(seconds=29) <= t.next_attempt_at <= utcnow() + timedelta(seconds=30)
    assert t.reason == "throttled" and t.first_failed_at is not None
    # Retrying can't fix a missing permission: dead at once, with the code, not the message.
    refused = rows["refused"]
    assert refused.status == "dead" and refused.last_error == "permission_missing: PermanentError 403 Forbidden"
    assert refused.reason == "permission_missing" and (refused.reason_ref or "").startswith("F-")
    assert refused.dead_at is not None
    gone = rows["gone"]
    assert gone.status == "dead" and gone.reason == "blocked" and (gone.last_error or "").startswith("blocked")
    assert rows["later"].status == "pending" and rows["later"].attempts == 1 and rows["later"].reason == "unavailable"
    assert rows["broken"].status == "pending" and rows["broken"].attempts == 1 and rows["broken"].reason == "failed"

    # Backoff 0 here: the next round retries; the bug and the passing failure give up after
    # max_attempts, the bug's message kept out of the row (it is in the log).
    await worker.run_once()
    rows = {r.payload["name"]: r for r in await _rows(store)}
    broken = rows["broken"]
    assert broken.status == "dead" and broken.reason == "failed" and broken.attempts == 2
    assert "ValueError" in (broken.last_error or "") and "a bug" not in (broken.last_error or "")
    assert rows["later"].status == "dead" and rows["later"].reason == "unavailable"
    assert rows["throttled"].status == "pending"  # still waiting for its Retry-After


async def test_a_kind_without_a_handler_is_recorded_as_failed(store: Store) -> None:
    await _emit(store, Post(1), Other("nobody handles me"))
    async with store.session() as session:  # a row whose fields don't fit its type
        session.add(OutboxItem(kind=Post.kind, idempotency_key="test.post:odd", payload={"m": 1}))
    posted: list[int] = []

    async def post(effect: Post) -> None:
        posted.append(effect.n)

    worker = OutboxWorker(store, {Post: post})
    assert await worker.run_once() == 3
    rows = {r.idempotency_key: r for r in await _rows(store)}
    assert posted == [1]
    unknown = rows[Other("nobody handles me").idempotency_key]
    assert unknown.status == "dead" and unknown.reason == "no_handler"
    assert "no handler for outbox kind test.other" in (unknown.last_error or "")
    odd = rows["test.post:odd"]
    assert odd.status == "dead" and odd.reason == "bad_payload" and "TypeError" in (odd.last_error or "")
    assert await worker.run_once() == 0, "not retried"


async def test_a_recorded_post_is_not_repeated_by_a_retry(store: Store) -> None:
    """The handler checks the stored message id first: a failure after the post was
    recorded (here a bug right after it) retries the row, and the retry posts nothing."""
    await _emit(store, Post(7))
    sent = SentMessages(store)
    posts: list[int] = []

    async def post(effect: Post) -> None:
        if await sent.get(effect):
            return
        posts.append(effect.n)
        await sent.record(effect, f"msg-{effect.n}")
        if len(posts) == 1:
            raise ValueError("failed after the post")

    worker = OutboxWorker(store, {Post: post}, base_backoff=0.0)
    await worker.run_once()
    [row] = await _rows(store)
    assert row.status == "pending" and row.message_id == "msg-7"
    await worker.run_once()
    [row] = await _rows(store)
    assert row.status == "done" and posts == [7]


async def test_a_dead_workers_claim_is_taken_over_after_its_lease(store: Store) -> None:
    await _emit(store, *(Post(i) for i in range(3)))
    done: list[int] = []

    async def post(effect: Post) -> None:
        done.append(effect.n)

    dead = OutboxWorker(store, {Post: post}, lease=timedelta(seconds=60))
    assert len(await dead.claim()) == 3  # claimed, then the process died
    other = OutboxWorker(store, {Post: post})
    assert await other.run_once() == 0, "an unexpired lease is respected"
    async with store.session() as session:
        await session.execute(sa.update(OutboxItem).values(claimed_until=utcnow() - timedelta(seconds=1)))
    assert await other.run_once() == 3
    assert sorted(done) == [0, 1, 2]
    # The dead worker's late finish can't overwrite the new owner's result.
    assert {r.claimed_by for r in await _rows(store)} <= {other.worker_id, None}


async def test_the_submitters_notice_is_not_sent_again_after_it_was_recorded(bot: Bot) -> None:
    """The process died after Teams took the notice and we recorded its id, before the row
    was marked done: the row comes back (its lease ran out), and the retry sends nothing."""
    ref = await bot.submit_valid()
    await bot.drain()
    # Rejected: the notice is then the only card for her chat (an approval also opens a room).
    await bot.decide("needs_report.reject", ref, note="Dekkes av en eksisterende rammeavtale.")
    before = len(bot.stub.cards(KARI_CHAT))
    assert await bot.drain() >= 1
    assert len(bot.stub.cards(KARI_CHAT)) == before + 1
    [notice] = [r for r in await bot.outbox() if r.kind == NotifySubmitter.kind]
    assert notice.status == "done" and notice.message_id

    async with bot.runtime.store.session() as session:  # as the dead process left it
        await session.execute(
            sa.update(OutboxItem).where(OutboxItem.id == notice.id).values(status="pending", claimed_until=None)
        )
    assert await bot.runtime.outbox.run_once() == 1
    assert len(bot.stub.cards(KARI_CHAT)) == before + 1, "no second notice"
    [notice] = [r for r in await bot.outbox() if r.kind == NotifySubmitter.kind]
    assert notice.status == "done"


# -- dead letters ------------------------------------------------------------------------------


async def _audit(store: Store, action: str) -> list[AuditEntry]:
    async with store.session() as session:
        return list(await session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)))


async def test_a_dead_letter_is_audited_and_alerted_once_and_a_dead_alert_alerts_nobody(store: Store) -> None:
    await _emit(store, Post(1), Post(2))
    alerts: list[int] = []

    async def post(effect: Post) -> None:
        if effect.n == 1:
            raise Unreachable("the user blocked the app", why="blocked", status=403)

    async def alert(effect: AlertDeadLetter) -> None:
        alerts.append(effect.outbox_id)
        raise PermanentError("the channel refused the post", status=403)  # the alert dies too

    worker = OutboxWorker(store, {Post: post, AlertDeadLetter: alert}, dead_letter_alert=AlertDeadLetter)
    assert await worker.run_once() == 2
    rows = await _rows(store)
    dead = next(r for r in rows if r.payload.get("n") == 1)
    assert dead.status == "dead" and dead.alerted_at is not None
    [queued] = [r for r in rows if r.kind == AlertDeadLetter.kind]
    assert queued.idempotency_key == AlertDeadLetter(dead.id).idempotency_key and queued.status == "pending"
    [entry] = await _audit(store, "outbox.dead")
    assert entry.entity == "outbox" and entry.entity_id == str(dead.id) and entry.details["reason"] == "blocked"

    assert await worker.run_once() == 1  # the alert: it dies, and no alert about the alert
    assert alerts == [dead.id]
    rows = await _rows(store)
    assert [r.status for r in rows if r.kind == AlertDeadLetter.kind] == ["dead"]
    assert len(rows) == 3 and await worker.run_once() == 0
    assert len(await _audit(store, "outbox.dead")) == 2


async def test_a_retried_row_that_dies_again_is_not_alerted_again(store: Store) -> None:
    await _emit(store, Post(1))

    async def post(effect: Post) -> None:
        raise PermanentError("refused", status=403)

    async def alert(effect: AlertDeadLetter) -> None:
        return None

    worker = OutboxWorker(store, {Post: post, AlertDeadLetter: alert}, dead_letter_alert=AlertDeadLetter)
    await worker.run_once()
    await worker.run_once()
    [row] = [r for r in await _rows(store) if r.kind == Post.kind]
    assert row.status == "dead"
    async with store.session() as session:  # as a person's retry leaves it (alerted_at kept)
        await session.execute(
            sa.update(OutboxItem).where(OutboxItem.id == row.id).values(status="pending", attempts=0, reason=None)
        )
    assert await worker.run_once() == 1
    rows = await _rows(store)
    assert [r.status for r in rows] == ["dead", "done"]
    assert len([r for r in rows if r.kind == AlertDeadLetter.kind]) == 1


async def test_a_passing_failure_gives_up_after_the_configured_attempts(store: Store) -> None:
    await _emit(store, Other("flaky"), Other("refused-by-channel"))

    async def handle(effect: Other) -> None:
        if effect.name == "flaky":
            raise TransientError("connector unreachable")
        # A handler that keeps trying a refused post, loudly: the reason is the refusal.
        try:
            raise Unreachable("blocked", why="blocked", status=403)
        except Unreachable as err:
            raise TransientError("intake refused", retry_after=300) from err

    worker = OutboxWorker(store, {Other: handle}, max_attempts=3, base_backoff=0.001, max_backoff=0.001)
    for _ in range(6):
        await worker.run_once()
        await asyncio.sleep(0.01)
    rows = {r.payload["name"]: r for r in await _rows(store)}
    flaky = rows["flaky"]
    assert flaky.status == "dead" and flaky.attempts == 3 and flaky.reason == "unavailable"
    assert flaky.first_failed_at is not None and flaky.last_failed_at is not None
    assert flaky.first_failed_at < flaky.last_failed_at
    paced = rows["refused-by-channel"]
    assert paced.status == "pending" and paced.attempts == 0 and paced.reason == "blocked"


async def _alembic(store: Store, target: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))

    def upgrade(conn: sa.Connection) -> None:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)

    async with store.engine.begin() as conn:
        await conn.run_sync(upgrade)


async def test_rows_that_failed_before_dead_letters_become_dead_letters(db_url: str) -> None:
    store = Store(db_url)
    try:
        await _alembic(store, "0010")
        old = [
            ("failed", "permission_missing: PermanentError 403 Forbidden"),
            ("unreachable", "blocked: Unreachable 403"),
            ("failed", "ValueError: something a person typed"),
            ("failed", "LookupError: no handler for outbox kind x.y"),
            ("done", None),
        ]
        async with store.engine.begin() as conn:
            for i, (status, error) in enumerate(old):
                await conn.execute(
                    sa.text(
                        "INSERT INTO outbox (kind, idempotency_key, payload, status, attempts, next_attempt_at,"
                        " last_error, created_at, done_at) VALUES (:kind, :key, :payload, :status, 1, :at, :error,"
                        " :at, :at)"
                    ),
                    {
                        "kind": "test.old",
                        "key": f"old:{i}",
                        "payload": "{}",
                        "status": status,
                        "error": error,
                        "at": datetime(2026, 1, 5, 10, 0),
                    },
                )
        await store.migrate()
        rows = {r.idempotency_key: r for r in await _rows(store)}
        assert [(rows[f"old:{i}"].status, rows[f"old:{i}"].reason) for i in range(5)] == [
            ("dead", "permission_missing"),
            ("dead", "blocked"),
            ("dead", "failed"),
            ("dead", "no_handler"),
            ("done", None),
        ]
        assert rows["old:0"].dead_at is not None and rows["old:0"].alerted_at is None
    finally:
        await store.close()
