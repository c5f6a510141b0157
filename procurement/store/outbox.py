"""The outbox worker: performs side effects written in the same transaction as the change.

The worker is given one handler per effect type at construction; a row is decoded into
its typed effect by kind (`procurement.store.effects.decode`). Rows are claimed with a
lease (`claimed_until`); on PostgreSQL the claim uses `FOR UPDATE SKIP LOCKED` so several
app instances share the work, on SQLite the claim is a conditional update.

Outcomes, in the one error vocabulary of `procurement.errors`:

- success → done;
- `TransientError` → rescheduled: after its Retry-After (not counted as an attempt: the
  service is pacing us), else after backoff (counted; dead after `max_attempts`);
- `PermanentError` → dead at once (retrying repeats the failure);
- `Unreachable` → dead at once (the recipient can't be reached; a human follows up);
- a kind with no handler, or a row that does not decode → dead at once, logged;
- anything else (a bug) → backoff, dead after `max_attempts`.

Every failure leaves a reason CODE on the row (`reason`: a `why` of `procurement.errors`, or
one of `OWN_REASONS`), which "status utsending" words in Norwegian; the details go to the log
only, under a short reference (`reason_ref`, F-XXXXXX) that the card shows. A dead row
(`status` "dead") is never removed: it stays until a person retries it. Becoming dead is
audited (`outbox.dead`) and, with `dead_letter_alert` given, queues ONE alert effect for the
row in the same transaction (`alerted_at` is set with it and kept when the row is retried); a
dead alert raises no alert of its own.

A crash leaves the lease to expire and another worker (or this one after restart) takes the
row again, so delivery is at least once (docs/delivery.md); a handler that posts a message
checks `SentMessages` first and records the message id right after the post, so a retry
repeats a post only when the process died between Teams accepting it and that record.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, get_args

import sqlalchemy as sa

from procurement.access import SYSTEM
from procurement.errors import (
    IntegrationError,
    PermanentError,
    PermanentWhy,
    TransientError,
    Unreachable,
    UnreachableWhy,
    new_reference,
)
from procurement.shared.backoff import backoff
from procurement.store.database import Store
from procurement.store.effects import Effect, decode, kinds
from procurement.store.rounds import run_rounds
from procurement.store.tables import OutboxItem, utcnow

log = logging.getLogger(__name__)

# A handler per effect type; each takes its own type (`Callable[[PostIntake], …]`).
Handlers = Mapping[type[Effect], Callable[[Any], Awaitable[None]]]
# The alert effect for a dead row, by the row's id (e.g. the delivery workflow's `AlertDeadLetter`).
DeadLetterAlert = Callable[[int], Effect]

# Reasons of the outbox's own, besides the `why` codes of `procurement.errors`.
OWN_REASONS: Final = (
    "throttled",  # the service asked us to wait (Retry-After): not a failed attempt
    "unavailable",  # a passing failure: 5xx, network, still being provisioned
    "no_handler",  # no handler for the row's kind in this process
    "bad_payload",  # the row's fields don't fit its effect type
)
REASONS: Final[frozenset[str]] = frozenset((*get_args(UnreachableWhy), *get_args(PermanentWhy), *OWN_REASONS))
# Reasons whose wording asks the reader to contact IT with the reference.
WITH_REFERENCE: Final = frozenset(
    {
        "permission_missing",
        "sign_in_failed",
        "failed",
        "no_handler",
        "bad_payload",
        "not_allowed_by_policy",
        "not_in_catalog",
    }
)


def reason_of(err: BaseException) -> str:
    """The reason code for a failure: the error's `why`, or for a passing failure the `why` of
    what caused it (a handler that keeps retrying a refused post says so), else throttled or
    unavailable."""
    if isinstance(err, TransientError):
        cause = err.__cause__
        if isinstance(cause, Unreachable | PermanentError) and cause.why in REASONS:
            return cause.why
        return "throttled" if err.retry_after is not None or err.status == 429 else "unavailable"
    if isinstance(err, IntegrationError) and err.why in REASONS:
        return err.why
    return "failed"


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
        dead_letter_alert: DeadLetterAlert | None = None,
    ) -> None:
        self.store = store
        self.handlers: dict[type[Effect], Callable[[Any], Awaitable[None]]] = dict(handlers)
        self.types = kinds(self.handlers)  # also refuses two types with one kind
        self.worker_id = worker_id or f"w-{uuid.uuid4().hex[:8]}"
        self.lease = lease
        self.batch = batch
        self.max_attempts = max(1, max_attempts)
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.dead_letter_alert = dead_letter_alert
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
            reason = "no_handler" if isinstance(err, LookupError) else "bad_payload"
            ref = new_reference()
            log.error("outbox %s %s [%s]: %s", row.kind, row.key, ref, err)
            await self._die(row, reason, ref, f"{type(err).__name__}: {err}")
            return
        try:
            await self.handlers[type(effect)](effect)
        except Unreachable as gone:
            ref = new_reference()
            log.warning(
                "outbox %s %s [%s]: recipient unreachable (%s): %s",
                row.kind,
                row.key,
                ref,
                gone.why,
                gone.reason,
            )
            await self._die(row, reason_of(gone), ref, f"{gone.why}: {gone.summary()}")
        except TransientError as later:
            # A throttle with Retry-After is the service pacing us, not a failed attempt.
            paced = later.retry_after is not None
            reason = reason_of(later)
            ref = new_reference()
            if not paced and row.attempts + 1 >= self.max_attempts:
                log.error(
                    "outbox %s %s [%s] gave up after %d attempts: %s",
                    row.kind,
                    row.key,
                    ref,
                    row.attempts + 1,
                    later.reason,
                )
                await self._die(row, reason, ref, later.summary())
                return
            delay = later.retry_after if later.retry_after is not None else self._backoff(row.attempts)
            log.info("outbox %s %s [%s]: %s, again in %.1f s", row.kind, row.key, ref, later.reason, delay)
            await self._reschedule(row, delay, reason, ref, later.summary(), count_attempt=not paced)
        except PermanentError as err:
            ref = new_reference()
            log.error("outbox %s %s [%s] failed for good (%s): %s", row.kind, row.key, ref, err.why, err.reason)
            await self._die(row, reason_of(err), ref, f"{err.why}: {err.summary()}")
        except Exception as err:
            ref = new_reference()
            # The class only on the row: an exception's text may quote a person's data (the log has it).
            error = err.summary() if isinstance(err, IntegrationError) else f"{type(err).__name__} [{ref}]"
            log.warning(
                "outbox %s %s [%s] failed (attempt %d)",
                row.kind,
                row.key,
                ref,
                row.attempts + 1,
                exc_info=True,
            )
            if row.attempts + 1 >= self.max_attempts:
                log.error("outbox %s %s [%s] gave up after %d attempts", row.kind, row.key, ref, row.attempts + 1)
                await self._die(row, reason_of(err), ref, error)
            else:
                await self._reschedule(row, self._backoff(row.attempts), reason_of(err), ref, error)
        else:
            await self._done(row)

    def _backoff(self, attempts: int) -> float:
        return backoff(attempts, base=self.base_backoff, cap=self.max_backoff)

    def _mine(self, row: Claimed) -> Any:
        # A worker whose lease ran out may finish late: the row is then the new owner's.
        return sa.update(OutboxItem).where(OutboxItem.id == row.id, OutboxItem.claimed_by == self.worker_id)

    async def _reschedule(
        self, row: Claimed, delay: float, reason: str, ref: str, error: str, count_attempt: bool = True
    ) -> None:
        now = utcnow()
        async with self.store.session() as session:
            await session.execute(
                self._mine(row).values(
                    attempts=OutboxItem.attempts + (1 if count_attempt else 0),
                    next_attempt_at=now + timedelta(seconds=delay),
                    claimed_by=None,
                    claimed_until=None,
                    last_error=error[:1000],
                    reason=reason,
                    reason_ref=ref,
                    first_failed_at=sa.func.coalesce(OutboxItem.first_failed_at, now),
                    last_failed_at=now,
                )
            )

    async def _done(self, row: Claimed) -> None:
        async with self.store.session() as session:
            await session.execute(
                self._mine(row).values(
                    status="done",
                    done_at=utcnow(),
                    claimed_until=None,
                    attempts=OutboxItem.attempts + 1,
                )
            )

    async def _die(self, row: Claimed, reason: str, ref: str, error: str) -> None:
        """The row becomes a dead letter, audited, and its one alert is queued with it."""
        now = utcnow()
        async with self.store.unit_of_work(SYSTEM) as uow:
            found = (
                await uow.session.execute(
                    self._mine(row)
                    .values(
                        status="dead",
                        dead_at=now,
                        claimed_until=None,
                        attempts=OutboxItem.attempts + 1,
                        last_error=error[:1000],
                        reason=reason,
                        reason_ref=ref,
                        first_failed_at=sa.func.coalesce(OutboxItem.first_failed_at, now),
                        last_failed_at=now,
                    )
                    .returning(OutboxItem.alerted_at)
                )
            ).first()
            if found is None:
                return  # the lease was lost meanwhile: the new owner decides
            uow.audit(
                "outbox.dead",
                "outbox",
                str(row.id),
                {"kind": row.kind, "reason": reason, "reason_ref": ref, "attempts": row.attempts + 1},
            )
            if self.dead_letter_alert is None or found.alerted_at is not None:
                return  # alerted once already (before a retry): not again
            alert = self.dead_letter_alert(row.id)
            if alert.kind == row.kind:
                log.error("outbox: the dead-letter alert %s died itself; no alert about it", row.key)
                return
            uow.emit(alert)
            await uow.session.execute(sa.update(OutboxItem).where(OutboxItem.id == row.id).values(alerted_at=now))

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
