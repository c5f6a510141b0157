"""One transaction per user action (the cosmicpython unit of work).

    async with store.unit_of_work(actor) as uow:
        row = await uow.session.get(...)
        ...change it...
        uow.audit("needs_report.submitted", "needs_report", ref, details)
        uow.emit(PostIntake(ref))

Everything commits together at the end of the block, or nothing does: the change, its
audit entry (who, when, from which activity) and the outbox rows of its side effects.

Every audit entry is also shown to the store's audit hooks (`Store.audit_hooks`), which
may answer with effects of their own: the records workflow mirrors a changed record to its
SharePoint list and archives a finished document that way, without the workflow that made
the change knowing about either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from procurement.access import Actor
from procurement.store.effects import Effect
from procurement.store.tables import AuditEntry, OutboxItem, utcnow

if TYPE_CHECKING:
    from procurement.store.database import Store


@dataclass(frozen=True)
class Audited:
    """One audit entry, as the audit hooks see it."""

    action: str
    entity: str
    entity_id: str
    details: dict[str, Any]


AuditHook = Callable[[Audited], Iterable[Effect]]


class UnitOfWork:
    def __init__(self, store: Store, actor: Actor) -> None:
        self.store = store
        self.actor = actor
        self._session: AsyncSession | None = None
        self._hooked: dict[str, Effect] = {}

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("unit of work used outside its `async with` block")
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        self._session = self.store.new_session()
        self._hooked = {}
        await self._session.begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session = self.session
        try:
            if exc_type is None:
                await self._queue_hooked(session)
                await session.commit()
            else:
                await session.rollback()
        finally:
            await session.close()
            self._session = None

    def audit(self, action: str, entity: str, entity_id: str, details: dict[str, Any] | None = None) -> None:
        """Append-only record of the change, attributed to this unit's actor."""
        self.session.add(
            AuditEntry(
                actor_aad_id=self.actor.aad_id,
                actor_name=self.actor.name[:200],
                action=action,
                entity=entity,
                entity_id=entity_id,
                activity_id=self.actor.activity_id[:200],
                details=details or {},
            )
        )
        entry = Audited(action, entity, entity_id, details or {})
        for hook in self.store.audit_hooks:
            for effect in hook(entry):
                self._hooked.setdefault(effect.idempotency_key[:300], effect)

    async def _queue_hooked(self, session: AsyncSession) -> None:
        """The hooks' effects, each at most once: an effect already queued by an earlier unit
        (the same document after a retried step, say) is already on its way, not a conflict."""
        if not self._hooked:
            return
        insert = sqlite_insert if self.store.is_sqlite else pg_insert
        now = utcnow()
        rows = [
            {
                "kind": e.kind,
                "idempotency_key": key,
                "payload": e.payload(),
                "next_attempt_at": now,
                "created_at": now,
                "status": "pending",
                "attempts": 0,
            }
            for key, e in self._hooked.items()
        ]
        statement = insert(OutboxItem).values(rows).on_conflict_do_nothing(index_elements=["idempotency_key"])
        await session.execute(statement)
        self._hooked = {}

    def emit(self, effect: Effect, *, not_before: datetime | None = None) -> None:
        """Queue a side effect; the outbox performs it after commit. Its idempotency key is the
        row's unique key: the same key twice fails the transaction, which finds a workflow's
        mistakes. (Audit hooks' effects are queued at commit instead, each once.)"""
        self.session.add(
            OutboxItem(
                kind=effect.kind,
                idempotency_key=effect.idempotency_key[:300],
                payload=effect.payload(),
                next_attempt_at=not_before or utcnow(),
            )
        )

    async def next_reference(self, prefix: str, year: int) -> str:
        """Next reference such as BM-2026-0001, allocated inside this transaction."""
        name = f"{prefix}-{year}"
        # One statement, so concurrent first numbers of a year neither collide nor skip
        # (SQLite ≥ 3.35 and PostgreSQL both speak it). The row lock is held to commit: a
        # failed action gives its number back.
        value = (
            await self.session.execute(
                sa.text(
                    "INSERT INTO counters (name, value) VALUES (:name, 1) "
                    "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 "
                    "RETURNING value"
                ),
                {"name": name},
            )
        ).scalar_one()
        return f"{name}-{value:04d}"
