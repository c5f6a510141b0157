"""The outbox: each side effect done once by one of several workers, failures sorted into
retry later / give up / unreachable, and a dead worker's claim taken over after its lease."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import sqlalchemy as sa

from procurement.ports import IntegrationError, TransientIntegrationError, UnreachableUser
from procurement.store.database import Store, enqueue
from procurement.store.outbox import Effect, Handler, OutboxWorker, RetryLater
from procurement.store.tables import OutboxItem, utcnow


async def _enqueue(store: Store, kind: str, count: int) -> None:
    async with store.session() as session:
        for i in range(count):
            enqueue(session, kind, f"{kind}:{i}", {"n": i})


async def _rows(store: Store) -> list[OutboxItem]:
    async with store.session() as session:
        return list(await session.scalars(sa.select(OutboxItem).order_by(OutboxItem.id)))


async def test_two_workers_do_each_effect_once(store: Store) -> None:
    await _enqueue(store, "post", 60)
    done: Counter[int] = Counter()

    async def post(effect: Effect) -> None:
        await asyncio.sleep(0.005)
        done[effect.payload["n"]] += 1

    workers = [OutboxWorker(store, {"post": post}, batch=7) for _ in range(2)]

    async def drain(worker: OutboxWorker) -> int:
        handled = 0
        while n := await worker.run_once():
            handled += n
        return handled

    handled = await asyncio.gather(*(drain(w) for w in workers))
    assert done == Counter(dict.fromkeys(range(60), 1)), "each once"
    assert sum(handled) == 60
    assert {r.status for r in await _rows(store)} == {"done"}


async def test_failures_are_sorted(store: Store) -> None:
    async def throttled(effect: Effect) -> None:
        raise TransientIntegrationError("Graph answered 429", retry_after=30)

    async def refused(effect: Effect) -> None:
        raise IntegrationError("Graph answered 403: no permission", status=403)

    async def gone(effect: Effect) -> None:
        raise UnreachableUser("the user blocked the app")

    async def later(effect: Effect) -> None:
        raise RetryLater(None, "connector unreachable")

    async def broken(effect: Effect) -> None:
        raise ValueError("a bug")

    handlers: dict[str, Handler] = {"throttled": throttled, "refused": refused, "gone": gone, "later": later,
                                    "broken": broken}
    for kind in handlers:
        await _enqueue(store, kind, 1)
    worker = OutboxWorker(store, handlers, max_attempts=2, base_backoff=0.0)
    before = utcnow()
    assert await worker.run_once() == 5
    rows = {r.kind: r for r in await _rows(store)}

    # A throttle with Retry-After: back in 30 s, not counted as a failed attempt.
    t = rows["throttled"]
    assert t.status == "pending" and t.attempts == 0 and "429" in (t.last_error or "")
    assert before + timedelta(seconds=29) <= t.next_attempt_at <= utcnow() + timedelta(seconds=30)
    # Retrying can't fix a missing permission: failed at once, with the reason.
    assert rows["refused"].status == "failed" and "403" in (rows["refused"].last_error or "")
    assert rows["gone"].status == "unreachable"
    assert rows["later"].status == "pending" and rows["later"].attempts == 1
    assert rows["broken"].status == "pending" and rows["broken"].attempts == 1

    # Backoff 0 here: the next round retries; the bug gives up after max_attempts.
    await worker.run_once()
    rows = {r.kind: r for r in await _rows(store)}
    assert rows["broken"].status == "failed" and "ValueError" in (rows["broken"].last_error or "")
    assert rows["throttled"].status == "pending"  # still waiting for its Retry-After


async def test_a_dead_workers_claim_is_taken_over_after_its_lease(store: Store) -> None:
    await _enqueue(store, "post", 3)
    done: list[int] = []

    async def post(effect: Effect) -> None:
        done.append(effect.payload["n"])

    dead = OutboxWorker(store, {"post": post}, lease=timedelta(seconds=60))
    assert len(await dead.claim()) == 3  # claimed, then the process died
    other = OutboxWorker(store, {"post": post})
    assert await other.run_once() == 0, "an unexpired lease is respected"
    async with store.session() as session:
        await session.execute(sa.update(OutboxItem).values(claimed_until=utcnow() - timedelta(seconds=1)))
    assert await other.run_once() == 3
    assert sorted(done) == [0, 1, 2]
    # The dead worker's late finish can't overwrite the new owner's result.
    assert {r.claimed_by for r in await _rows(store)} <= {other.worker_id, None}
