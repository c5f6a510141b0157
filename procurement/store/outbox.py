"""The outbox worker: performs side effects written in the same transaction as the change.

The worker is given one handler per effect type at construction; a row is decoded into
its typed effect by kind (`procurement.store.effects.decode`). Rows are claimed with a
lease (`claimed_until`); on PostgreSQL the claim uses `FOR UPDATE SKIP LOCKED` so several
app instances share the work, on SQLite the claim is a conditional update.

Outcomes, in the one error vocabulary of `procurement.errors`:

- success → done;
- `TransientError` → rescheduled: after its Retry-After (not counted as an attempt: the
  service is pacing us), else after backoff (counted);
- `PermanentError` → failed at once (retrying repeats the failure), with the reason;
- `Unreachable` → unreachable (the recipient can't be reached; a human follows up);
- a kind with no handler, or a row that does not decode → failed at once, logged;
- anything else (a bug) → backoff, failed after `max_attempts`.

Nothing is dropped silently. A crash leaves the lease to expire and another worker (or this
one after restart) takes the row again, so delivery is at least once; a handler that posts
a message checks `SentMessages` first and records the message id right after the post, so
a retry repeats a post only when the process died between Teams accepting it and that record.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from procurement.errors import IntegrationError, PermanentError, TransientError, Unreachable
from procurement.shared.backoff import backoff
from procurement.store.database import Store
from procurement.store.effects import Effect, decode, kinds
from procurement.store.rounds import run_rounds
from procurement.store.tables import OutboxItem, utcnow

log = logging.getLogger(__name__)

# A handler per effect type; each takes its own type (`Callable[[PostIntake], …]`).
Handlers = Mapping[type[Effect], Callable[[Any], Awaitable[None]]]


@dataclass(frozen=True)
class Claimed:
    """An outbox row claimed by this worker."""

    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    attempts: int


class OutboxWorker:
    def __init__(
        self,
        store: Store,
        handlers: Handlers,
        *,
        worker_id: str | None = None,
        lease: timedelta = timedelta(seconds=60),
        batch: int = 20,
        max_attempts: int = 12,
        base_backoff: float = 2.0,
        max_backoff: float = 3600.0,
    ) -> None:
        self.store = store
        self.handlers: dict[type[Effect], Callable[[Any], Awaitable[None]]] = dict(handlers)
        self.types = kinds(self.handlers)  # also refuses two types with one kind
        self.worker_id = worker_id or f"w-{uuid.uuid4().hex[:8]}"
        self.lease = lease
        self.batch = batch
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.wakeup = asyncio.Event()

    async def claim(self) -> list[Claimed]:
        now = utcnow()
        async with self.store.session() as session:
            due = (
                sa.select(OutboxItem.id)
                .where(
                    OutboxItem.status == "pending",
                    OutboxItem.next_attempt_at <= now,
                    sa.or_(OutboxItem.claimed_until.is_(None), OutboxItem.claimed_until < now),
                )
                .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
                .limit(self.batch)
            )
            if not self.store.is_sqlite:
                due = due.with_for_update(skip_locked=True)
            ids = list((await session.scalars(due)).all())
            if not ids:
                return []
            # Conditional, for SQLite (no SKIP LOCKED): a row another worker claimed between
            # our SELECT and this UPDATE stays theirs.
            rows = await session.execute(
                sa.update(OutboxItem)
                .where(
                    OutboxItem.id.in_(ids),
                    OutboxItem.status == "pending",
                    sa.or_(OutboxItem.claimed_until.is_(None), OutboxItem.claimed_until < now),
                )
                .values(claimed_by=self.worker_id, claimed_until=now + self.lease)
                .returning(
                    OutboxItem.id,
                    OutboxItem.kind,
                    OutboxItem.idempotency_key,
                    OutboxItem.payload,
                    OutboxItem.attempts,
                )
            )
            return [Claimed(r.id, r.kind, r.idempotency_key, r.payload, r.attempts) for r in rows]

    async def run_once(self) -> int:
        claimed = await self.claim()
        await asyncio.gather(*(self._perform(row) for row in claimed))
        return len(claimed)

    async def _perform(self, row: Claimed) -> None:
        try:
            effect = decode(self.types, row.kind, row.payload)
        except (LookupError, TypeError) as err:
            # No handler for the kind (or fields that don't fit it): no retry will change
            # that in this process; the row says why, for whoever deploys the handler.
            log.error("outbox %s %s: %s", row.kind, row.key, err)
            await self._finish(row, "failed", f"{type(err).__name__}: {err}")
            return
        try:
            await self.handlers[type(effect)](effect)
        except Unreachable as gone:
            log.warning(
                "outbox %s %s: recipient unreachable (%s): %s",
                row.kind,
                row.key,
                gone.why,
                gone.reason,
            )
            await self._finish(row, "unreachable", f"{gone.why}: {gone.summary()}")
        except TransientError as later:
            # A throttle with Retry-After is the service pacing us, not a failed attempt.
            paced = later.retry_after is not None
            delay = later.retry_after if later.retry_after is not None else self._backoff(row.attempts)
            log.info("outbox %s %s: %s, again in %.1f s", row.kind, row.key, later.reason, delay)
            await self._reschedule(row, delay, later.summary(), count_attempt=not paced)
        except PermanentError as err:
            log.error("outbox %s %s failed for good (%s): %s", row.kind, row.key, err.why, err.reason)
            await self._finish(row, "failed", f"{err.why}: {err.summary()}")
        except Exception as err:
            error = f"{type(err).__name__}: {err}" if not isinstance(err, IntegrationError) else err.summary()
            log.warning(
                "outbox %s %s failed (attempt %d)",
                row.kind,
                row.key,
                row.attempts + 1,
                exc_info=True,
            )
            if row.attempts + 1 >= self.max_attempts:
                await self._finish(row, "failed", error)
                log.error("outbox %s %s gave up after %d attempts", row.kind, row.key, row.attempts + 1)
            else:
                await self._reschedule(row, self._backoff(row.attempts), error)
        else:
            await self._finish(row, "done", None)

    def _backoff(self, attempts: int) -> float:
        return backoff(attempts, base=self.base_backoff, cap=self.max_backoff)

    async def _reschedule(self, row: Claimed, delay: float, error: str, count_attempt: bool = True) -> None:
        async with self.store.session() as session:
            await session.execute(
                sa.update(OutboxItem)
                .where(OutboxItem.id == row.id, OutboxItem.claimed_by == self.worker_id)
                .values(
                    attempts=OutboxItem.attempts + (1 if count_attempt else 0),
                    next_attempt_at=utcnow() + timedelta(seconds=delay),
                    claimed_by=None,
                    claimed_until=None,
                    last_error=error[:1000],
                )
            )

    async def _finish(self, row: Claimed, status: str, error: str | None) -> None:
        async with self.store.session() as session:
            await session.execute(
                sa.update(OutboxItem)
                .where(OutboxItem.id == row.id, OutboxItem.claimed_by == self.worker_id)
                .values(
                    status=status,
                    done_at=utcnow(),
                    claimed_until=None,
                    attempts=OutboxItem.attempts + 1,
                    last_error=error[:1000] if error else None,
                )
            )

    async def run_forever(self, poll_seconds: float = 2.0) -> None:
        async def idle() -> None:
            # A turn that queued an effect sets `wakeup`; otherwise poll.
            self.wakeup.clear()
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout=poll_seconds)
            except TimeoutError:
                pass

        await run_rounds(self.run_once, idle, f"outbox worker {self.worker_id}")


class SentMessages:
    """The message id an effect's post got, on its outbox row (by idempotency key).

    A handler that posts checks `get` first and calls `record` right after the post: a
    retry of the row (a later failure, a lost lease, a restart) then never posts again.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def _key(effect: Effect) -> str:
        return effect.idempotency_key[:300]  # as `UnitOfWork.emit` stores it

    async def get(self, effect: Effect) -> str | None:
        async with self.store.session() as session:
            found = await session.scalar(
                sa.select(OutboxItem.message_id).where(OutboxItem.idempotency_key == self._key(effect))
            )
        return found or None

    async def record(self, effect: Effect, message_id: str) -> None:
        async with self.store.session() as session:
            await session.execute(
                sa.update(OutboxItem)
                .where(OutboxItem.idempotency_key == self._key(effect))
                .values(message_id=(message_id or "sent")[:400])
            )
