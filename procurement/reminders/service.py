"""Reminder delivery bookkeeping: claim what is due, record the outcome, escalate.

A reminder's life: pending → delivered → (answered | escalated after 7 days without an
answer); pending → escalate → escalated when the avtaleforvalter can't be reached;
pending → cancelled when the contract changed. Snooze puts a delivered reminder back
to pending seven days on. Claims are leases (`claimed_by`, `claimed_until`); on
PostgreSQL `FOR UPDATE SKIP LOCKED` lets several instances share the work, and a
killed instance's lease simply expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa

from procurement.access import Actor, NotFound, Relation
from procurement.contracts.service import Contracts, ContractView, contract_view, send_after_for
from procurement.reminders.access import POLICY
from procurement.reminders.schedule import ESCALATE_AFTER, SNOOZE
from procurement.shared.calendar import OSLO
from procurement.shared.records import from_attributes
from procurement.store.database import Store
from procurement.store.tables import Contract, Reminder, utcnow

# The worker's entries in the audit log.
REMINDER_WORKER = Actor(aad_id="", name="påminnelser")

Answer = Literal["extend_option", "new_needs_report", "not_relevant", "snooze"]
ANSWERS: tuple[str, ...] = ("extend_option", "new_needs_report", "not_relevant", "snooze")


@dataclass(frozen=True)
class DueReminder:
    id: int
    kind: str
    due_date: object
    target_date: object
    option_number: int | None
    control_index: int | None
    recipient_aad_id: str | None
    contract_id: int
    contract_ref: str
    status: str
    escalation_reason: str | None
    # Claims since the last delivery (this one included): bounds retries of a permanent error.
    attempts: int = 1


@dataclass(frozen=True)
class ReminderView:
    """A reminder as its cards show it."""

    id: int
    kind: str
    due_date: date
    target_date: date
    option_number: int | None
    control_index: int | None
    status: str
    answer: str | None
    answer_reason: str | None
    answered_by: str | None
    answered_at: datetime | None
    recipient_aad_id: str | None
    escalation_reason: str | None


def reminder_view(row: Reminder) -> ReminderView:
    return from_attributes(ReminderView, row)


@dataclass(frozen=True)
class AnswerOutcome:
    reminder: ReminderView
    contract: ContractView
    changed: bool
    reason: str = ""  # already_answered, needs_reason


class Reminders:
    def __init__(self, store: Store, contracts: Contracts | None = None, *, working_hours: bool = True) -> None:
        self.store = store
        # Answers change contracts (an exercised option); delivery bookkeeping does not.
        self.contracts = contracts or Contracts(store, working_hours=working_hours)
        self.working_hours = working_hours

    async def _claim(
        self, where: sa.ColumnElement[bool], worker_id: str, limit: int, lease: timedelta, order: Any
    ) -> list[DueReminder]:
        now = utcnow()
        async with self.store.session() as session:
            stmt = (
                sa.select(Reminder.id)
                .where(where, sa.or_(Reminder.claimed_until.is_(None), Reminder.claimed_until < now))
                .order_by(order, Reminder.id)
                .limit(limit)
            )
            if not self.store.is_sqlite:
                stmt = stmt.with_for_update(skip_locked=True)
            ids = list((await session.scalars(stmt)).all())
            if not ids:
                return []
            # Conditional, for SQLite (no SKIP LOCKED): a row another worker claimed between
            # our SELECT and this UPDATE stays theirs.
            await session.execute(
                sa.update(Reminder)
                .where(Reminder.id.in_(ids), sa.or_(Reminder.claimed_until.is_(None), Reminder.claimed_until < now))
                .values(claimed_by=worker_id, claimed_until=now + lease, attempts=Reminder.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            rows = await session.execute(
                sa.select(Reminder, Contract.external_ref)
                .join(Contract, Contract.id == Reminder.contract_id)
                .where(Reminder.id.in_(ids), Reminder.claimed_by == worker_id)
            )
            return [
                DueReminder(
                    id=r.id,
                    kind=r.kind,
                    due_date=r.due_date,
                    target_date=r.target_date,
                    option_number=r.option_number,
                    control_index=r.control_index,
                    recipient_aad_id=r.recipient_aad_id,
                    contract_id=r.contract_id,
                    contract_ref=ref,
                    status=r.status,
                    escalation_reason=r.escalation_reason,
                    attempts=r.attempts,
                )
                for r, ref in rows
            ]

    async def claim_due(
        self, worker_id: str, limit: int = 50, lease: timedelta = timedelta(minutes=2), now: datetime | None = None
    ) -> list[DueReminder]:
        now = now or utcnow()
        return await self._claim(
            sa.and_(Reminder.status == "pending", Reminder.send_after <= now),
            worker_id,
            limit,
            lease,
            Reminder.send_after,
        )

    async def claim_escalations(
        self, worker_id: str, limit: int = 50, lease: timedelta = timedelta(minutes=2), now: datetime | None = None
    ) -> list[DueReminder]:
        now = now or utcnow()
        # Two claims, each served by an index (an OR of both made the databases scan the table).
        marked = await self._claim(Reminder.status == "escalate", worker_id, limit, lease, Reminder.send_after)
        if len(marked) >= limit:
            return marked
        overdue = sa.and_(
            Reminder.status == "delivered",
            Reminder.delivered_at <= now - ESCALATE_AFTER,
            Reminder.answer.is_(None),
        )
        return marked + await self._claim(overdue, worker_id, limit - len(marked), lease, Reminder.delivered_at)

    async def count_due(self, now: datetime | None = None) -> int:
        now = now or utcnow()
        async with self.store.session() as session:
            return int(
                await session.scalar(
                    sa.select(sa.func.count())
                    .select_from(Reminder)
                    .where(Reminder.status == "pending", Reminder.send_after <= now)
                )
                or 0
            )

    async def _owned_update(self, reminder_id: int, worker_id: str, **values: object) -> bool:
        async with self.store.session() as session:
            result = await session.execute(
                sa.update(Reminder)
                .where(Reminder.id == reminder_id, Reminder.claimed_by == worker_id)
                .values(**{"claimed_by": None, "claimed_until": None, **values})
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def mark_delivered(self, reminder_id: int, worker_id: str, conversation_id: str, activity_id: str) -> bool:
        return await self._owned_update(
            reminder_id,
            worker_id,
            status="delivered",
            delivered_at=utcnow(),
            conversation_id=conversation_id,
            activity_id=activity_id,
            last_error=None,
            attempts=0,
            answer=None,
            answer_reason=None,  # a snoozed reminder asks afresh (the audit log keeps the snooze)
        )

    async def release(self, reminder_id: int, worker_id: str, retry_at: datetime, error: str) -> bool:
        return await self._owned_update(reminder_id, worker_id, send_after=retry_at, last_error=error[:1000])

    async def release_escalation(
        self, reminder_id: int, worker_id: str, error: str, retry_at: datetime | None = None
    ) -> bool:
        """Keep the escalation for a later round; until `retry_at` no worker claims it."""
        return await self._owned_update(reminder_id, worker_id, last_error=error[:1000], claimed_until=retry_at)

    async def mark_unreachable(self, reminder_id: int, worker_id: str, reason: str) -> bool:
        """The avtaleforvalter can't be reached: the section's channel must get it instead."""
        return await self._owned_update(reminder_id, worker_id, status="escalate", escalation_reason=reason[:400])

    async def mark_escalated(self, reminder_id: int, worker_id: str, reason: str) -> bool:
        async with self.store.unit_of_work(REMINDER_WORKER) as uow:
            result = await uow.session.execute(
                sa.update(Reminder)
                .where(Reminder.id == reminder_id, Reminder.claimed_by == worker_id)
                .values(
                    status="escalated",
                    escalated_at=utcnow(),
                    escalation_reason=reason[:400],
                    claimed_by=None,
                    claimed_until=None,
                )
            )
            if result.rowcount:  # type: ignore[attr-defined]
                uow.audit("reminder.escalated", "reminder", str(reminder_id), {"reason": reason[:400]})
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def get(self, reminder_id: int) -> tuple[ReminderView, ContractView] | None:
        """For the reminder worker (the system): the reminder and its whole contract."""
        async with self.store.session() as session:
            row = (
                await session.execute(
                    sa.select(Reminder, Contract)
                    .join(Contract, Contract.id == Reminder.contract_id)
                    .where(Reminder.id == reminder_id)
                )
            ).first()
        if row is None:
            return None
        return reminder_view(row[0]), contract_view(row[1], self.contracts.today(), entitled=True)

    async def answer(self, actor: Actor, reminder_id: int, answer: str, reason: str) -> AnswerOutcome:
        """The avtaleforvalter's (or an innkjøper's) answer, in one unit of work with what it
        causes: "extend option" records the answer and moves the contract's end together."""
        async with self.store.unit_of_work(actor) as uow:
            session = uow.session
            found = (
                await session.execute(
                    sa.select(Reminder, Contract)
                    .join(Contract, Contract.id == Reminder.contract_id)
                    .where(Reminder.id == reminder_id)
                    .with_for_update()
                )
            ).first()
            if found is None or answer not in ANSWERS:
                raise NotFound(str(reminder_id))
            reminder, contract = found
            relations = set()
            if actor.aad_id and actor.aad_id == contract.manager_aad_id:
                relations.add(Relation.MANAGER)
            if actor.aad_id and actor.aad_id == reminder.recipient_aad_id:
                relations.add(Relation.RECIPIENT)
            if not POLICY.granted(actor, "answer", relations):
                raise NotFound(str(reminder_id))  # others learn nothing of the contract
            entitled = actor.in_personal_chat
            if (reminder.answer is not None and reminder.answer != "snooze") or reminder.status == "cancelled":
                return AnswerOutcome(reminder_view(reminder), self._view(contract, entitled), False, "already_answered")
            if answer == "not_relevant" and not reason.strip():
                return AnswerOutcome(reminder_view(reminder), self._view(contract, entitled), False, "needs_reason")
            now = utcnow()
            reminder.answer = answer
            reminder.answer_reason = reason.strip()[:2000] or None
            reminder.answered_by = actor.name[:200] or actor.aad_id
            reminder.answered_at = now
            if answer == "snooze":
                # Comes back as a fresh reminder in seven days.
                reminder.status = "pending"
                back = now + SNOOZE
                reminder.send_after = send_after_for(back.astimezone(OSLO).date(), back) if self.working_hours else back
                reminder.delivered_at = None
            elif reminder.status in ("delivered", "escalated", "pending", "escalate"):
                reminder.status = "answered" if reminder.status != "escalated" else "escalated"
            uow.audit(
                f"reminder.{answer}",
                "reminder",
                str(reminder.id),
                {"contract": contract.external_ref, "kind": reminder.kind, "reason": reminder.answer_reason or ""},
            )
            answered = reminder_view(reminder)
            if answer == "extend_option" and reminder.option_number:
                await self.contracts.apply_option(uow, contract.external_ref, reminder.option_number)
                await session.refresh(contract)
            return AnswerOutcome(answered, self._view(contract, entitled), True)

    def _view(self, contract: Contract, entitled: bool) -> ContractView:
        return contract_view(contract, self.contracts.today(), entitled=entitled)
