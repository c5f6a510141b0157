"""The outbox worker: performs side effects written in the same transaction as the change.

Rows are claimed with a lease (`claimed_until`); on PostgreSQL the claim uses
`FOR UPDATE SKIP LOCKED` so several app instances share the work. A handler that
succeeds marks the row done; `RetryLater` reschedules it (honouring Retry-After);
any other error backs off exponentially, and after `max_attempts` the row is marked
failed and logged — never silently dropped. A crash leaves the lease to expire, and
another worker (or this one after restart) picks the row up again; handlers are
therefore written to be idempotent (they receive the row's idempotency key).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from procurement.ports import IntegrationError, TransientIntegrationError, UnreachableUser
from procurement.store.database import Store
from procurement.store.tables import OutboxItem, utcnow

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """The effect could not be done now; try again after `retry_after` seconds (or backoff)."""

    def __init__(self, retry_after: float | None = None, reason: str = "") -> None:
        super().__init__(reason or "retry later")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Effect:
    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    attempts: int


Handler = Callable[[Effect], Awaitable[None]]


class OutboxWorker:
    def __init__(
        self,
        store: Store,
        handlers: dict[str, Handler],
        *,
        worker_id: str | None = None,
        lease: timedelta = timedelta(seconds=60),
        batch: int = 20,
        max_attempts: int = 12,
        base_backoff: float = 2.0,
        max_backoff: float = 3600.0,
    ) -> None:
        self.store = store
        self.handlers = handlers
        self.worker_id = worker_id or f"w-{uuid.uuid4().hex[:8]}"
        self.lease = lease
        self.batch = batch
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.wakeup = asyncio.Event()

    async def claim(self) -> list[Effect]:
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
                .where(OutboxItem.id.in_(ids), OutboxItem.status == "pending",
                       sa.or_(OutboxItem.claimed_until.is_(None), OutboxItem.claimed_until < now))
                .values(claimed_by=self.worker_id, claimed_until=now + self.lease)
                .returning(OutboxItem.id, OutboxItem.kind, OutboxItem.idempotency_key, OutboxItem.payload,
                           OutboxItem.attempts)
            )
            return [Effect(r.id, r.kind, r.idempotency_key, r.payload, r.attempts) for r in rows]

    async def run_once(self) -> int:
        effects = await self.claim()
        await asyncio.gather(*(self._perform(e) for e in effects))
        return len(effects)

    async def _perform(self, effect: Effect) -> None:
        handler = self.handlers.get(effect.kind)
        try:
            if handler is None:
                raise LookupError(f"no handler for outbox kind {effect.kind}")
            await handler(effect)
        except UnreachableUser as gone:
            # Retrying will not help (blocked, uninstalled); the row records why.
            log.warning("outbox %s %s: recipient unreachable: %s", effect.kind, effect.key, gone)
            await self._finish(effect, "unreachable", str(gone))
        except (RetryLater, TransientIntegrationError) as later:
            # A throttle with Retry-After is the service pacing us, not a failed attempt.
            delay = later.retry_after if later.retry_after is not None else self._backoff(effect.attempts)
            await self._reschedule(effect, delay, str(later), count_attempt=later.retry_after is None)
        except IntegrationError as err:
            # Missing permission, bad request: retrying repeats the failure; the row says why.
            log.error("outbox %s %s failed for good: %s", effect.kind, effect.key, err)
            await self._finish(effect, "failed", f"{type(err).__name__}: {err}")
        except Exception as err:
            log.warning("outbox %s %s failed (attempt %d): %s", effect.kind, effect.key, effect.attempts + 1,
                        type(err).__name__, exc_info=True)
            if effect.attempts + 1 >= self.max_attempts:
                await self._finish(effect, "failed", f"{type(err).__name__}: {err}")
                log.error("outbox %s %s gave up after %d attempts", effect.kind, effect.key, effect.attempts + 1)
            else:
                await self._reschedule(effect, self._backoff(effect.attempts), f"{type(err).__name__}: {err}")
        else:
            await self._finish(effect, "done", None)

    def _backoff(self, attempts: int) -> float:
        return random.uniform(0.5, 1.0) * min(self.max_backoff, self.base_backoff * 2**attempts)

    async def _reschedule(self, effect: Effect, delay: float, error: str, count_attempt: bool = True) -> None:
        async with self.store.session() as session:
            await session.execute(
                sa.update(OutboxItem)
                .where(OutboxItem.id == effect.id, OutboxItem.claimed_by == self.worker_id)
                .values(
                    attempts=OutboxItem.attempts + (1 if count_attempt else 0),
                    next_attempt_at=utcnow() + timedelta(seconds=delay),
                    claimed_by=None,
                    claimed_until=None,
                    last_error=error[:1000],
                )
            )

    async def _finish(self, effect: Effect, status: str, error: str | None) -> None:
        async with self.store.session() as session:
            await session.execute(
                sa.update(OutboxItem)
                .where(OutboxItem.id == effect.id, OutboxItem.claimed_by == self.worker_id)
                .values(status=status, done_at=utcnow(), claimed_until=None, attempts=OutboxItem.attempts + 1,
                        last_error=error[:1000] if error else None)
            )

    async def run_forever(self, poll_seconds: float = 2.0) -> None:
        while True:
            try:
                handled = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox worker %s: claim failed", self.worker_id)
                handled = 0
            if handled == 0:
                self.wakeup.clear()
                try:
                    await asyncio.wait_for(self.wakeup.wait(), timeout=poll_seconds)
                except TimeoutError:
                    pass
