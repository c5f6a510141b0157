"""The outbox: typed effects performed by the handler of their type, each by one of several
workers; failures sorted by the one error vocabulary into retry later / give up /
unreachable; a dead worker's claim taken over after its lease; a post recorded once is
never repeated."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

import pytest
import sqlalchemy as sa

from procurement.access import SYSTEM
from procurement.errors import PermanentError, TransientError, Unreachable
from procurement.needs.effects import NotifySubmitter
from procurement.store.database import Store
from procurement.store.effects import Effect
from procurement.store.outbox import OutboxWorker, SentMessages
from procurement.store.tables import OutboxItem, utcnow
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
    # Retrying can't fix a missing permission: failed at once, with the code, not the message.
    refused = rows["refused"]
    assert refused.status == "failed" and refused.last_error == "permission_missing: PermanentError 403 Forbidden"
    assert rows["gone"].status == "unreachable" and (rows["gone"].last_error or "").startswith("blocked")
    assert rows["later"].status == "pending" and rows["later"].attempts == 1
    assert rows["broken"].status == "pending" and rows["broken"].attempts == 1

    # Backoff 0 here: the next round retries; the bug gives up after max_attempts.
    await worker.run_once()
    rows = {r.payload["name"]: r for r in await _rows(store)}
    assert rows["broken"].status == "failed" and "ValueError" in (rows["broken"].last_error or "")
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
    assert unknown.status == "failed" and "no handler for outbox kind test.other" in (unknown.last_error or "")
    assert rows["test.post:odd"].status == "failed" and "TypeError" in (rows["test.post:odd"].last_error or "")
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
    await bot.decide("needs_report.approve", ref)
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
