"""Reminder delivery bookkeeping: claim what is due, record the outcome, escalate.

A reminder's life: pending → delivered → (answered | escalated after 7 days without an
answer); pending → escalate → escalated when the avtaleforvalter can't be reached;
pending → cancelled when the contract changed. Snooze puts a delivered reminder back
to pending seven days on. Claims are leases (`claimed_by`, `claimed_until`); on
PostgreSQL `FOR UPDATE SKIP LOCKED` lets several instances share the work, and a
killed instance's lease simply expires.

A card carries one contract's reminders that went out together (claimed in one round, or
due within `MERGE_WINDOW`); they are recorded together (one message id), answered together
(`answer` takes the card's ids and checks each), and escalate as one card per contract, whose
follow-up (`mark_handled`, `assign_manager`) is for innkjøpere (`follow_up` in the policy).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from procurement.access import Actor, NotFound, Relation
from procurement.contracts.model import is_aad_object_id
from procurement.contracts.service import Contracts, ContractView, contract_view, manager_names, send_after_for
from procurement.errors import IntegrationError
from procurement.ports import Person
from procurement.reminders.access import POLICY
from procurement.reminders.schedule import ESCALATE_AFTER, SNOOZE
from procurement.shared.calendar import OSLO
from procurement.shared.records import from_attributes
from procurement.store.database import Store
from procurement.store.tables import Contract, Reminder, User, utcnow

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
    contract_id: int
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
    escalated_at: datetime | None


def reminder_view(row: Reminder) -> ReminderView:
    return from_attributes(ReminderView, row)


def is_open(r: ReminderView | Reminder) -> bool:
    """Still waiting for the avtaleforvalter's answer (a snooze counts as asked again)."""
    return r.status != "cancelled" and (r.answer is None or r.answer == "snooze")


def open_option(reminders: Iterable[ReminderView | Reminder]) -> int | None:
    """The option a group of reminders asks about: the lowest-numbered one among them."""
    numbers = [r.option_number for r in reminders if r.kind.startswith("option") and r.option_number]
    return min(numbers) if numbers else None


@dataclass(frozen=True)
class AnswerOutcome:
    """The group of reminders one card shows, after an answer (or a refusal to take it)."""

    reminders: list[ReminderView]
    contract: ContractView
    changed: bool
    reason: str = ""  # already_answered, no_longer_current, needs_reason

    @property
    def reminder(self) -> ReminderView:
        return self.reminders[0]


@dataclass(frozen=True)
class FollowUp:
    """An escalation card's reminders and contract, after an innkjøper's action."""

    reminders: list[ReminderView]
    contract: ContractView
    changed: bool
    reason: str = ""  # unknown_person, same_manager, closed
    assigned: Person | None = None


MAX_GROUP = 20
"""The most reminders one card (and so one answer) carries."""
MERGE_WINDOW = timedelta(days=7)
"""A contract's reminders due within this long of one that goes out now go with it, on the
same card: one card per contract with each fact and one set of buttons, instead of one
today and another with other advice a few days later. (Reminders claimed in the same round
for the same contract and recipient are merged anyway.)"""


def parse_reminder_ids(raw: Iterable[object]) -> list[int]:
    ids: list[int] = []
    for value in raw:
        if isinstance(value, bool):
            continue
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            number = int(value)
            if number not in ids:
                ids.append(number)
    return ids[:MAX_GROUP]


class Reminders:
    def __init__(self, store: Store, contracts: Contracts | None = None, *, working_hours: bool = True) -> None:
        self.store = store
        # Answers change contracts (an exercised option); delivery bookkeeping does not.
        self.contracts = contracts or Contracts(store, working_hours=working_hours)
        self.working_hours = working_hours

    # -- claims (the reminder worker) -----------------------------------------------------

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
        """Due reminders, and the same contracts' reminders due within `MERGE_WINDOW` (they
        go out together, on one card)."""
        now = now or utcnow()
        due = await self._claim(
            sa.and_(Reminder.status == "pending", Reminder.send_after <= now),
            worker_id,
            limit,
            lease,
            Reminder.send_after,
        )
        contract_ids = sorted({r.contract_id for r in due})
        if not contract_ids:
            return due
        soon = sa.and_(
            Reminder.contract_id.in_(contract_ids),
            Reminder.status == "pending",
            Reminder.send_after <= now + MERGE_WINDOW,
        )
        return due + await self._claim(soon, worker_id, MAX_GROUP * len(contract_ids), lease, Reminder.send_after)

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

    # -- delivery bookkeeping, per card (a group of reminders) -----------------------------
    # Each update touches only the rows this worker still holds (`claimed_by`): a row whose
    # lease ran out and another worker took is theirs to record.

    async def _owned_update(self, reminder_ids: Sequence[int], worker_id: str, **values: object) -> bool:
        async with self.store.session() as session:
            result = await session.execute(
                sa.update(Reminder)
                .where(Reminder.id.in_(list(reminder_ids)), Reminder.claimed_by == worker_id)
                .values(**{"claimed_by": None, "claimed_until": None, **values})
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def mark_delivered(
        self, reminder_ids: Sequence[int], worker_id: str, conversation_id: str, activity_id: str
    ) -> bool:
        """One card went out for these reminders: they share its conversation and message id."""
        return await self._owned_update(
            reminder_ids,
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

    async def release(self, reminder_ids: Sequence[int], worker_id: str, retry_at: datetime, error: str) -> bool:
        return await self._owned_update(reminder_ids, worker_id, send_after=retry_at, last_error=error[:1000])

    async def release_escalation(
        self, reminder_ids: Sequence[int], worker_id: str, error: str, retry_at: datetime | None = None
    ) -> bool:
        """Keep the escalation for a later round; until `retry_at` no worker claims it."""
        return await self._owned_update(reminder_ids, worker_id, last_error=error[:1000], claimed_until=retry_at)

    async def mark_unreachable(self, reminder_ids: Sequence[int], worker_id: str, reason: str) -> bool:
        """The avtaleforvalter can't be reached: the section's channel must get it instead."""
        return await self._owned_update(reminder_ids, worker_id, status="escalate", escalation_reason=reason[:400])

    async def mark_escalated(self, reasons: Mapping[int, str], worker_id: str) -> bool:
        """One escalation card went out for these reminders (id → its stored reason code)."""
        async with self.store.unit_of_work(REMINDER_WORKER) as uow:
            done = 0
            for reminder_id, reason in reasons.items():
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
                    done += 1
                    uow.audit("reminder.escalated", "reminder", str(reminder_id), {"reason": reason[:400]})
            return bool(done)

    async def get(self, reminder_id: int) -> tuple[ReminderView, ContractView] | None:
        """For the reminder worker (the system): one reminder and its whole contract."""
        found = await self.get_group([reminder_id])
        return (found[0][0], found[1]) if found else None

    async def get_group(self, reminder_ids: Sequence[int]) -> tuple[list[ReminderView], ContractView] | None:
        """For the reminder worker (the system): reminders of one contract and the whole
        contract (the first reminder's; others' are left out)."""
        async with self.store.session() as session:
            rows = (
                await session.execute(
                    sa.select(Reminder, Contract)
                    .join(Contract, Contract.id == Reminder.contract_id)
                    .where(Reminder.id.in_(list(reminder_ids)))
                    .order_by(Reminder.target_date, Reminder.id)
                )
            ).all()
            if not rows:
                return None
            contract = rows[0][1]
            names = await manager_names(session, [contract])
        view = contract_view(
            contract, self.contracts.today(), entitled=True, manager_name=names.get(contract.manager_aad_id or "", "")
        )
        return [reminder_view(r) for r, c in rows if c.id == contract.id], view

    # -- answers (the avtaleforvalter) -----------------------------------------------------

    async def _locked_group(
        self, session: AsyncSession, reminder_ids: Sequence[int]
    ) -> tuple[list[Reminder], Contract] | None:
        """The reminders (all of one contract) and their contract, locked; None if any id is
        unknown or they belong to different contracts (a card shows one contract)."""
        ids = parse_reminder_ids(reminder_ids)
        if not ids:
            return None
        rows = (
            await session.execute(
                sa.select(Reminder, Contract)
                .join(Contract, Contract.id == Reminder.contract_id)
                .where(Reminder.id.in_(ids))
                .order_by(Reminder.target_date, Reminder.id)
                .with_for_update()
            )
        ).all()
        if len(rows) != len(ids) or len({c.id for _, c in rows}) != 1:
            return None
        return [r for r, _ in rows], rows[0][1]

    async def answer(self, actor: Actor, reminder_ids: Sequence[int] | int, answer: str, reason: str) -> AnswerOutcome:
        """The avtaleforvalter's (or an innkjøper's) answer to one card, for every reminder on
        it, in one unit of work with what it causes:

        - "extend option": the card's option is exercised: the end date moves, reminders for
          the old end are cancelled and new ones planned;
        - "not relevant" (a reason required): the card's option is declined with the reason
          (its other reminders and later options' cancelled; the end's continue);
        - "snooze": every reminder on the card comes back, together, in seven days;
        - "new needs report": recorded (the dialog opens the form).
        """
        if isinstance(reminder_ids, int):
            reminder_ids = [reminder_ids]
        async with self.store.unit_of_work(actor) as uow:
            session = uow.session
            found = await self._locked_group(session, reminder_ids)
            if found is None or answer not in ANSWERS:
                raise NotFound(",".join(str(i) for i in reminder_ids))
            group, contract = found
            for reminder in group:
                relations = set()
                if actor.aad_id and actor.aad_id == contract.manager_aad_id:
                    relations.add(Relation.MANAGER)
                if actor.aad_id and actor.aad_id == reminder.recipient_aad_id:
                    relations.add(Relation.RECIPIENT)
                if not POLICY.granted(actor, "answer", relations):
                    raise NotFound(str(reminder.id))  # others learn nothing of the contract
            entitled = actor.in_personal_chat
            names = await manager_names(session, [contract])
            open_ = [r for r in group if is_open(r)]
            if not open_:
                why = "already_answered" if any(r.answer for r in group) else "no_longer_current"
                return AnswerOutcome(self._views(group), self._view(contract, entitled, names), False, why)
            if answer == "not_relevant" and not reason.strip():
                return AnswerOutcome(self._views(group), self._view(contract, entitled, names), False, "needs_reason")
            now = utcnow()
            cleaned = reason.strip()[:2000] or None
            for reminder in open_:
                reminder.answer = answer
                reminder.answer_reason = cleaned
                reminder.answered_by = actor.name[:200] or actor.aad_id
                reminder.answered_at = now
                if answer == "snooze":
                    # Comes back as a fresh reminder in seven days (the group together).
                    reminder.status = "pending"
                    back = now + SNOOZE
                    reminder.send_after = (
                        send_after_for(back.astimezone(OSLO).date(), back) if self.working_hours else back
                    )
                    reminder.delivered_at = None
                elif reminder.status in ("delivered", "pending", "escalate"):
                    reminder.status = "answered"  # (an escalated one stays escalated: the channel saw it)
                uow.audit(
                    f"reminder.{answer}",
                    "reminder",
                    str(reminder.id),
                    {
                        "contract": contract.external_ref,
                        "kind": reminder.kind,
                        "reason": reminder.answer_reason or "",
                        "card": [r.id for r in group],
                    },
                )
            option = open_option(open_)
            if option is not None and answer in ("extend_option", "not_relevant"):
                if answer == "extend_option":
                    await self.contracts.apply_option(uow, contract.external_ref, option, cleaned or "")
                else:
                    await self.contracts.decline_option(uow, contract.external_ref, option, cleaned or "")
                await session.refresh(contract)
                for reminder in group:
                    await session.refresh(reminder)
            return AnswerOutcome(self._views(group), self._view(contract, entitled, names), True)

    # -- escalations (Innkjøpsseksjonen) -----------------------------------------------------

    async def escalation(self, actor: Actor, reminder_ids: Sequence[int]) -> FollowUp:
        """An escalation card's reminders and contract as they stand (innkjøpere)."""
        POLICY.check(actor, "follow_up")
        async with self.store.session() as session:
            found = await self._locked_group(session, reminder_ids)
            if found is None:
                raise NotFound(",".join(str(i) for i in reminder_ids))
            group, contract = found
            names = await manager_names(session, [contract])
            return FollowUp(self._views(group), self._view(contract, False, names), False)

    async def mark_handled(self, actor: Actor, reminder_ids: Sequence[int]) -> FollowUp:
        """An innkjøper has followed the escalation up: its reminders are closed as handled
        (they ask nobody any more), recorded with who and when."""
        POLICY.check(actor, "follow_up")
        async with self.store.unit_of_work(actor) as uow:
            found = await self._locked_group(uow.session, reminder_ids)
            if found is None:
                raise NotFound(",".join(str(i) for i in reminder_ids))
            group, contract = found
            names = await manager_names(uow.session, [contract])
            waiting = [r for r in group if r.status == "escalated" and r.answer is None]
            now = utcnow()
            for reminder in waiting:
                reminder.answer = "handled"
                reminder.answered_by = actor.name[:200] or actor.aad_id
                reminder.answered_at = now
                uow.audit(
                    "reminder.escalation_handled",
                    "reminder",
                    str(reminder.id),
                    {"contract": contract.external_ref, "kind": reminder.kind},
                )
            return FollowUp(
                self._views(group), self._view(contract, False, names), bool(waiting), "" if waiting else "closed"
            )

    async def find_person(self, typed: str) -> Person | None:
        """A person from what an innkjøper typed or picked: an AAD object id (the people
        picker), an e-mail address, "Name <e-mail>", or the name of someone who has talked to
        the bot (local mode has no people picker)."""
        text = " ".join(typed.split())[:300]
        if not text:
            return None
        match = re.search(r"<([^<>\s]+@[^<>\s]+)>", text)
        key = match.group(1) if match else text
        directory = self.contracts.directory
        if directory is not None:
            try:
                person = await directory.resolve(key)
            except IntegrationError:
                person = None  # the directory is down: try the people we know
            if person is not None:
                return person
        async with self.store.session() as session:
            if is_aad_object_id(key):
                user = await session.get(User, key.lower())
                return Person(aad_id=user.aad_object_id, name=user.name) if user is not None else None
            users = list(await session.scalars(sa.select(User).where(sa.func.lower(User.name) == key.lower()).limit(2)))
        if len(users) == 1:  # a name two people share picks nobody
            return Person(aad_id=users[0].aad_object_id, name=users[0].name)
        return None

    async def assign_manager(self, actor: Actor, reminder_ids: Sequence[int], typed: str) -> FollowUp:
        """Another avtaleforvalter for an escalated contract: the contract names them, and the
        card's reminders that still wait for an answer go to them now (the worker sends them
        as one card); the audit log has both."""
        POLICY.check(actor, "follow_up")
        person = await self.find_person(typed)
        async with self.store.unit_of_work(actor) as uow:
            found = await self._locked_group(uow.session, reminder_ids)
            if found is None:
                raise NotFound(",".join(str(i) for i in reminder_ids))
            group, contract = found
            waiting = [r for r in group if r.status == "escalated" and r.answer is None]
            if person is None or not waiting:
                names = await manager_names(uow.session, [contract])
                why = "unknown_person" if person is None else "closed"
                return FollowUp(self._views(group), self._view(contract, False, names), False, why)
            await self.contracts.assign_manager(uow, contract.external_ref, person)
            now = utcnow()
            for reminder in waiting:
                reminder.status = "pending"
                reminder.recipient_aad_id = person.aad_id
                reminder.send_after = now
                reminder.delivered_at = None
                reminder.attempts = 0
                uow.audit(
                    "reminder.reassigned",
                    "reminder",
                    str(reminder.id),
                    {"contract": contract.external_ref, "to": person.aad_id},
                )
            await uow.session.flush()
            await uow.session.refresh(contract)
            names = await manager_names(uow.session, [contract])
            if person.name:
                names.setdefault(person.aad_id, person.name)
            return FollowUp(self._views(group), self._view(contract, False, names), True, assigned=person)

    # -- views ---------------------------------------------------------------------------

    @staticmethod
    def _views(group: Sequence[Reminder]) -> list[ReminderView]:
        return [reminder_view(r) for r in group]

    def _view(self, contract: Contract, entitled: bool, names: Mapping[str, str] | None = None) -> ContractView:
        name = (names or {}).get(contract.manager_aad_id or "", "")
        return contract_view(contract, self.contracts.today(), entitled=entitled, manager_name=name)
