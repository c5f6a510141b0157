"""Delivery status: queries over the outbox, and a person's retry of a failed job.

A job is what one outbox row is for: its kind, the record its payload names, and its state:

- waiting: pending and never failed (queued, or due later);
- failing: pending after a failure (it will be tried again by itself);
- dead: given up (`OutboxWorker` marks it; nothing retries it but a person);
- done.

Only innkjøpere see any of it (`POLICY`); for anyone else every command raises `NotAllowed`
before reading, so they learn nothing. A retry is one unit of work: the row back to pending
with its attempts reset, and the audit entry `outbox.retried` (entity "outbox").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from procurement.access import Actor, NotFound
from procurement.delivery.access import POLICY
from procurement.store.database import Store
from procurement.store.outbox import REASONS
from procurement.store.tables import OutboxItem, utcnow

JobState = Literal["waiting", "failing", "dead", "done"]
# How many jobs the status card lists (the counts cover all).
LIMIT = 25
# Payload fields that name the record a job is for, in order of preference.
_REF_FIELDS = ("ref", "record_ref", "competition_ref", "contract_ref", "report_ref")


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    ref: str  # the record the payload names ("" when none)
    state: JobState
    attempts: int
    reason: str | None  # a code (`procurement.store.outbox.REASONS`), None when it never failed
    reason_ref: str  # the log's reference for the failure ("" when none)
    created_at: datetime
    first_failed_at: datetime | None
    last_failed_at: datetime | None
    dead_at: datetime | None
    next_attempt_at: datetime
    running: bool  # a worker holds it right now

    @property
    def retryable(self) -> bool:
        return self.state in ("failing", "dead") and not self.running


@dataclass(frozen=True)
class Overview:
    jobs: tuple[Job, ...]  # problems newest first, then waiting jobs oldest first; at most LIMIT
    waiting: int
    failing: int
    dead: int
    at: datetime

    @property
    def total(self) -> int:
        return self.waiting + self.failing + self.dead


@dataclass(frozen=True)
class RetryOutcome:
    job: Job
    changed: bool  # False: nothing to retry (done, waiting, or being tried right now)


def record_ref(payload: Any) -> str:
    """The record an effect is for, from its payload (only short plain text is taken)."""
    if not isinstance(payload, dict):
        return ""
    for name in _REF_FIELDS:
        value = payload.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()[:64]
    return ""


def to_job(row: OutboxItem, now: datetime) -> Job:
    state: JobState
    if row.status == "dead":
        state = "dead"
    elif row.status == "done":
        state = "done"
    elif row.reason:
        state = "failing"
    else:
        state = "waiting"
    reason = row.reason if row.reason in REASONS else ("failed" if row.reason else None)
    return Job(
        id=row.id,
        kind=row.kind,
        ref=record_ref(row.payload),
        state=state,
        attempts=row.attempts,
        reason=reason,
        reason_ref=row.reason_ref or "",
        created_at=row.created_at,
        first_failed_at=row.first_failed_at,
        last_failed_at=row.last_failed_at,
        dead_at=row.dead_at,
        next_attempt_at=row.next_attempt_at,
        running=row.claimed_until is not None and row.claimed_until > now,
    )


def parse_job_id(raw: object) -> int | None:
    """A job id from card data: a whole number in range, else None (only a selector)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and raw.strip().isdigit() and len(raw.strip()) <= 18:
        value = int(raw.strip())
    else:
        return None
    return value if 0 < value < 2**63 else None


_FAILING = sa.and_(OutboxItem.status == "pending", OutboxItem.reason.is_not(None))
_WAITING = sa.and_(OutboxItem.status == "pending", OutboxItem.reason.is_(None))
_DEAD = OutboxItem.status == "dead"


class Delivery:
    def __init__(self, store: Store, clock: Callable[[], datetime] = utcnow, *, limit: int = LIMIT) -> None:
        self.store = store
        self.clock = clock
        self.limit = limit

    async def overview(self, actor: Actor) -> Overview:
        POLICY.check(actor, "status")
        now = self.clock()
        async with self.store.session() as session:
            counts = (
                await session.execute(
                    sa.select(
                        sa.func.count().filter(_WAITING),
                        sa.func.count().filter(_FAILING),
                        sa.func.count().filter(_DEAD),
                    ).where(OutboxItem.status.in_(("pending", "dead")))
                )
            ).one()
            problems = list(
                await session.scalars(
                    sa.select(OutboxItem)
                    .where(sa.or_(_DEAD, _FAILING))
                    .order_by(
                        sa.func.coalesce(OutboxItem.last_failed_at, OutboxItem.created_at).desc(),
                        OutboxItem.id.desc(),
                    )
                    .limit(self.limit)
                )
            )
            waiting: list[OutboxItem] = []
            if len(problems) < self.limit:
                waiting = list(
                    await session.scalars(
                        sa.select(OutboxItem)
                        .where(_WAITING)
                        .order_by(OutboxItem.created_at, OutboxItem.id)
                        .limit(self.limit - len(problems))
                    )
                )
        return Overview(
            jobs=tuple(to_job(r, now) for r in [*problems, *waiting]),
            waiting=int(counts[0]),
            failing=int(counts[1]),
            dead=int(counts[2]),
            at=now,
        )

    async def job(self, actor: Actor, job_id: int | None) -> Job:
        """One job, for the alert card's view (NotFound when there is none)."""
        POLICY.check(actor, "retry")
        found = await self.job_for_alert(job_id) if job_id is not None else None
        if found is None:
            raise NotFound
        return found

    async def job_for_alert(self, job_id: int | None) -> Job | None:
        """One job as the system reads it (the alert's handler; no actor)."""
        if job_id is None:
            return None
        async with self.store.session() as session:
            row = await session.get(OutboxItem, job_id)
            return to_job(row, self.clock()) if row is not None else None

    async def retry(self, actor: Actor, job_id: int | None) -> RetryOutcome:
        """A failing or dead job back to pending with its attempts reset (its alert, if one was
        sent, is not sent again when it dies once more: `alerted_at` stays)."""
        POLICY.check(actor, "retry")
        if job_id is None:
            raise NotFound
        now = self.clock()
        async with self.store.unit_of_work(actor) as uow:
            query = sa.select(OutboxItem).where(OutboxItem.id == job_id)
            row = await uow.session.scalar(query if self.store.is_sqlite else query.with_for_update())
            if row is None:
                raise NotFound
            before = to_job(row, now)
            if not before.retryable:
                return RetryOutcome(before, changed=False)
            # Compare-and-set (SQLite ignores FOR UPDATE): a worker that claimed the row or a
            # second press in between keeps it as it is.
            changed = await uow.session.execute(
                sa.update(OutboxItem)
                .where(
                    OutboxItem.id == job_id,
                    OutboxItem.status == row.status,
                    OutboxItem.attempts == row.attempts,
                    sa.or_(OutboxItem.claimed_until.is_(None), OutboxItem.claimed_until <= now),
                )
                .values(
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    claimed_by=None,
                    claimed_until=None,
                    dead_at=None,
                    done_at=None,
                    reason=None,
                    reason_ref=None,
                    first_failed_at=None,
                    last_failed_at=None,
                    last_error=None,
                )
                .execution_options(synchronize_session=False)
            )
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                return RetryOutcome(before, changed=False)
            uow.audit(
                "outbox.retried",
                "outbox",
                str(job_id),
                {
                    "kind": before.kind,
                    "ref": before.ref,
                    "from": before.state,
                    "reason": before.reason,
                    "reason_ref": before.reason_ref,
                    "attempts": before.attempts,
                },
            )
        after = await self.job_for_alert(job_id)
        assert after is not None
        return RetryOutcome(after, changed=True)
