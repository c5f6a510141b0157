"""The contract register: upsert (card, import, competition), reading with access rules,
and the reminder plan that follows every change (in the same transaction)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from procurement.access import SYSTEM, Actor, NotFound, Relation
from procurement.competitions.service import request_evaluation
from procurement.contracts.access import POLICY
from procurement.contracts.model import (
    ContractData,
    ContractOption,
    OptionDecision,
    PlannedControl,
    decline_option,
    exercise_option,
    next_deadline,
)
from procurement.errors import IntegrationError
from procurement.ports import Directory, Person
from procurement.reminders.schedule import derive_schedule, plan_changes
from procurement.shared.calendar import OSLO, next_send_time
from procurement.shared.jsonable import jsonable
from procurement.shared.records import from_attributes
from procurement.store.database import Store
from procurement.store.tables import Competition, Contract, NeedsReport, Reminder, User, utcnow
from procurement.store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

PENDING = "pending"


class CompetitionTaken(Exception):
    """The competition already has another signed contract."""

    def __init__(self, ref: str, contract_ref: str | None) -> None:
        super().__init__(f"competition {ref} already has contract {contract_ref}")
        self.ref = ref
        self.contract_ref = contract_ref


@dataclass(frozen=True)
class CompetitionInfo:
    """A competition and what its needs report said, for the contract form."""

    ref: str
    title: str
    status: str
    contract_ref: str | None
    needs_report_ref: str
    category: str
    estimated_value: int
    form: dict[str, Any]


@dataclass(frozen=True)
class ContractView:
    """What a given reader may see of a contract (prices and notes only for those entitled)."""

    external_ref: str
    title: str
    supplier_name: str
    supplier_org_no: str
    category: str
    start_date: date
    end_date: date
    agreement_type: str
    manager_email: str
    manager_aad_id: str | None
    risk_level: str
    # None when the reader may not see prices and notes (or reads in a shared conversation).
    value_nok: int | None
    internal_notes: str | None
    archive_case_no: str | None
    options: list[dict[str, Any]]
    controls: list[dict[str, Any]]
    next_deadline: tuple[str, date] | None
    # What the agreement covers: public, like the title (needs reports are matched by them).
    cpv_codes: tuple[str, ...] = ()
    scope: str = ""
    # The avtaleforvalter's name as people know it (users table); "" when no name is known.
    manager_name: str = ""

    @property
    def manager_display(self) -> str:
        """The avtaleforvalter by name; the e-mail address only when no name is known."""
        return self.manager_name or self.manager_email


def send_after_for(due: date, now: datetime, *, working_hours: bool = True) -> datetime:
    """Reminders go out in working hours, Oslo time, on or after their due date.

    `working_hours=False` (REMINDER_WORKING_HOURS=always) sends as soon as the day comes,
    for demos and end-to-end tests run in the evening."""
    start = datetime.combine(due, time(8, 0), tzinfo=OSLO)
    at = max(start, now.astimezone(OSLO))
    return (next_send_time(at) if working_hours else at).astimezone(UTC)


def to_row_values(data: ContractData) -> dict[str, Any]:
    return {
        "external_ref": data.external_ref,
        "supplier_name": data.supplier_name,
        "supplier_org_no": data.supplier_org_no or "",
        "title": data.title,
        "category": data.category,
        "start_date": data.start_date,
        "end_date": data.end_date,
        "value_nok": data.value_nok or 0,
        "agreement_type": data.agreement_type,
        "manager_aad_id": (data.manager_aad_id or None),
        "manager_email": data.manager_email or "",
        "risk_level": data.risk_level,
        "archive_case_no": data.archive_case_no or "",
        "internal_notes": data.internal_notes or "",
        "options": [jsonable(dataclasses.asdict(o)) for o in data.options],
        "controls": [jsonable(dataclasses.asdict(c)) for c in data.controls],
        "reminder_overrides": dict(data.reminder_overrides or {}),
        "cpv_codes": list(data.cpv_codes),
        "scope": data.scope,
        "fingerprint": data.fingerprint(),
    }


def from_row(row: Contract) -> ContractData:
    return ContractData(
        external_ref=row.external_ref,
        supplier_name=row.supplier_name,
        supplier_org_no=row.supplier_org_no,
        title=row.title,
        category=row.category,  # type: ignore[arg-type]
        start_date=row.start_date,
        end_date=row.end_date,
        options=[
            ContractOption(
                number=int(o["number"]),
                months=int(o["months"]),
                notice_deadline=date.fromisoformat(o["notice_deadline"]),
                exercised=o.get("exercised"),
                decided_by=str(o.get("decided_by") or ""),
                decided_at=str(o.get("decided_at") or ""),
                decision_reason=str(o.get("decision_reason") or ""),
            )
            for o in row.options
        ],
        value_nok=row.value_nok,
        agreement_type=row.agreement_type,  # type: ignore[arg-type]
        manager_email=row.manager_email,
        manager_aad_id=row.manager_aad_id,
        risk_level=row.risk_level,  # type: ignore[arg-type]
        controls=[
            PlannedControl(
                kind=str(c["kind"]), due=date.fromisoformat(c["due"]), description=str(c.get("description", ""))
            )
            for c in row.controls
        ],
        archive_case_no=row.archive_case_no,
        internal_notes=row.internal_notes,
        reminder_overrides=dict(row.reminder_overrides or {}),
        cpv_codes=tuple(row.cpv_codes or ()),
        scope=row.scope or "",
    )


class Contracts:
    def __init__(
        self, store: Store, clock: Any = None, *, working_hours: bool = True, directory: Directory | None = None
    ) -> None:
        self.store = store
        self.directory = directory
        self.clock = clock or (lambda: datetime.now(UTC))
        self.working_hours = working_hours

    def today(self) -> date:
        now: datetime = self.clock()
        return now.astimezone(OSLO).date()

    # -- writing -----------------------------------------------------------------------

    async def resolve_manager(self, email: str) -> str | None:
        """The manager's AAD object id from the directory; None when unknown or the directory
        can't answer now (the contract is kept with the e-mail; a reminder without a reachable
        manager escalates to Innkjøpsseksjonen)."""
        if not email or self.directory is None:
            return None
        try:
            person = await self.directory.resolve(email)
        except IntegrationError as err:
            log.warning("directory lookup of %s failed: %s", email, err)
            return None
        return person.aad_id if person is not None else None

    async def upsert_contract(
        self,
        data: ContractData,
        *,
        actor: Actor = SYSTEM,
        source: str = "import",
        competition_ref: str | None = None,
    ) -> Literal["created", "updated", "unchanged"]:
        """Create or update by contract number and replan its reminders, in one unit of work.

        For the import and other system callers; `register` is the user command. With
        `competition_ref` the competition is marked signed with this contract in the same
        transaction (`CompetitionTaken` if it already has another)."""
        data = await self._with_manager_id(data)
        async with self.store.unit_of_work(actor) as uow:
            return await self.apply(uow, data, source=source, competition_ref=competition_ref)

    async def register(
        self, actor: Actor, data: ContractData, *, competition_ref: str | None = None
    ) -> Literal["created", "updated", "unchanged"]:
        """The contract form (innkjøpere), also for a competition's signed contract."""
        POLICY.check(actor, "register")
        source = "competition" if competition_ref else "card"
        return await self.upsert_contract(data, actor=actor, source=source, competition_ref=competition_ref)

    async def _with_manager_id(self, data: ContractData) -> ContractData:
        if not data.manager_aad_id and data.manager_email:
            aad_id = await self.resolve_manager(data.manager_email)
            if aad_id is not None:
                return dataclasses.replace(data, manager_aad_id=aad_id)
        return data

    async def apply(
        self, uow: UnitOfWork, data: ContractData, *, source: str, competition_ref: str | None = None
    ) -> Literal["created", "updated", "unchanged"]:
        """The upsert inside the caller's unit of work (a reminder answer exercising an
        option commits the answer and the new end date together)."""
        session = uow.session
        values = to_row_values(data)
        row = await session.scalar(
            sa.select(Contract).where(Contract.external_ref == data.external_ref).with_for_update()
        )
        if competition_ref:
            await self._sign_competition(uow, competition_ref, data.external_ref)
        if row is not None and row.fingerprint == values["fingerprint"]:
            return "unchanged"
        if row is None:
            row = Contract(**values, source=source)
            session.add(row)
            await session.flush()
            outcome: Literal["created", "updated", "unchanged"] = "created"
        else:
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            outcome = "updated"
        changes = await self._replan(session, row, data)
        uow.audit(f"contract.{outcome}", "contract", data.external_ref, {"source": source, **changes})
        return outcome

    async def _sign_competition(self, uow: UnitOfWork, ref: str, contract_ref: str) -> None:
        session = uow.session
        current = await session.scalar(sa.select(Competition.contract_ref).where(Competition.ref == ref))
        if current == contract_ref:
            return  # a retry of the same save
        result = await session.execute(
            sa.update(Competition)
            .where(Competition.ref == ref, Competition.contract_ref.is_(None))
            .values(status="signed", contract_ref=contract_ref, signed_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            taken = await session.scalar(sa.select(Competition.contract_ref).where(Competition.ref == ref))
            raise CompetitionTaken(ref, taken)
        uow.audit("competition.signed", "competition", ref, {"contract": contract_ref})
        # The strategy's evaluation "for læring og erfaringsoverføring": the room's members are asked.
        await request_evaluation(uow, ref)

    async def competition(self, actor: Actor, ref: str) -> CompetitionInfo:
        """A competition and its needs report, for registering its contract (innkjøpere)."""
        POLICY.check(actor, "register")
        async with self.store.session() as session:
            found = (
                await session.execute(
                    sa.select(Competition, NeedsReport)
                    .join(NeedsReport, NeedsReport.id == Competition.needs_report_id)
                    .where(Competition.ref == ref)
                )
            ).first()
        if found is None:
            raise NotFound(ref)
        competition, report = found
        return CompetitionInfo(
            ref=competition.ref,
            title=competition.title,
            status=competition.status,
            contract_ref=competition.contract_ref,
            needs_report_ref=report.ref,
            category=report.category,
            estimated_value=report.estimated_value,
            form=dict(report.data or {}),
        )

    async def _replan(self, session: AsyncSession, row: Contract, data: ContractData) -> dict[str, int]:
        """Bring the contract's pending reminders in line with its current data."""
        today = self.today()
        now = self.clock()
        # Overdue reminders for the same deadline collapse to the latest: a contract
        # registered late gets one clear reminder, not three at once.
        planned = derive_schedule(data, today, collapse_overdue=True)
        existing = list(await session.scalars(sa.select(Reminder).where(Reminder.contract_id == row.id)))
        plan = plan_changes(existing, planned)
        # A reminder already out but unanswered whose subject moved (an option exercised or
        # declined, a new end date) asks about something no longer true: cancel it too, so it
        # never escalates. One whose target simply passed is left to run its course.
        planned_keys = {p.subject_key for p in planned}
        stale = [
            r
            for r in plan.unchanged
            if r.subject_key not in planned_keys
            and r.target_date >= today
            and ((r.status == "delivered" and r.answer is None) or r.status == "escalate")
        ]
        for reminder in [*plan.to_cancel, *stale]:
            reminder.status = "cancelled"
            reminder.escalation_reason = "contract changed"
        for reminder, p in plan.to_revive + plan.to_reschedule:
            reminder.status = PENDING
            reminder.due_date = p.due_date
            reminder.target_date = p.target_date
            reminder.send_after = send_after_for(p.due_date, now, working_hours=self.working_hours)
        for p in plan.to_create:
            session.add(
                Reminder(
                    contract_id=row.id,
                    subject_key=p.subject_key,
                    kind=str(p.kind),
                    due_date=p.due_date,
                    target_date=p.target_date,
                    option_number=p.option_number,
                    control_index=p.control_index,
                    status=PENDING,
                    send_after=send_after_for(p.due_date, now, working_hours=self.working_hours),
                    recipient_aad_id=row.manager_aad_id,
                )
            )
        # A new avtaleforvalter gets the reminders that have not gone out yet.
        await session.execute(
            sa.update(Reminder)
            .where(Reminder.contract_id == row.id, Reminder.status == PENDING)
            .values(recipient_aad_id=row.manager_aad_id)
        )
        return {
            "reminders_created": len(plan.to_create),
            "reminders_cancelled": len(plan.to_cancel) + len(stale),
            "reminders_revived": len(plan.to_revive),
            "reminders_rescheduled": len(plan.to_reschedule),
        }

    async def apply_option(
        self, uow: UnitOfWork, external_ref: str, option_number: int, reason: str = ""
    ) -> Literal["created", "updated", "unchanged"] | None:
        """Record an exercised option in the caller's unit of work: the contract runs on for
        the option's months, and its reminders are replanned for the new end (those for the
        old end are cancelled, also ones delivered and not yet answered)."""
        return await self._decide_option(uow, external_ref, option_number, exercise=True, reason=reason)

    async def decline_option(
        self, uow: UnitOfWork, external_ref: str, option_number: int, reason: str
    ) -> Literal["created", "updated", "unchanged"] | None:
        """Record a declined option (with the reason) in the caller's unit of work: its
        reminders and those of later options (which lapse with it) are cancelled; the end
        date and its reminders stay."""
        return await self._decide_option(uow, external_ref, option_number, exercise=False, reason=reason)

    async def _decide_option(
        self, uow: UnitOfWork, external_ref: str, option_number: int, *, exercise: bool, reason: str
    ) -> Literal["created", "updated", "unchanged"] | None:
        row = await uow.session.scalar(
            sa.select(Contract).where(Contract.external_ref == external_ref).with_for_update()
        )
        if row is None:
            return None
        decision = OptionDecision(
            by=(uow.actor.name or uow.actor.aad_id)[:200], at=self.clock().isoformat(), reason=reason[:2000]
        )
        data = from_row(row)
        decide = exercise_option if exercise else decline_option
        updated = decide(data, option_number, decision)
        if updated is None:
            return "unchanged"  # unknown, or decided already (a double press)
        uow.audit(
            "contract.option_exercised" if exercise else "contract.option_declined",
            "contract",
            external_ref,
            {
                "option": option_number,
                "reason": decision.reason,
                "end_date": updated.end_date.isoformat(),
                "previous_end_date": data.end_date.isoformat(),
            },
        )
        return await self.apply(uow, updated, source="option")

    async def assign_manager(self, uow: UnitOfWork, external_ref: str, person: Person) -> bool:
        """Another avtaleforvalter for the contract, in the caller's unit of work: the contract
        names them, and its reminders that have not gone out yet go to them (the replan).
        False when the contract is unknown or already has this manager."""
        row = await uow.session.scalar(
            sa.select(Contract).where(Contract.external_ref == external_ref).with_for_update()
        )
        if row is None:
            return False
        if row.manager_aad_id == person.aad_id:
            return False
        previous = {"manager_aad_id": row.manager_aad_id or "", "manager_email": row.manager_email}
        data = dataclasses.replace(from_row(row), manager_aad_id=person.aad_id, manager_email=person.email)
        await self.apply(uow, data, source="manager")
        uow.audit(
            "contract.manager_assigned",
            "contract",
            external_ref,
            {"manager_aad_id": person.aad_id, "manager_email": person.email, "previous": previous},
        )
        return True

    # -- reading -------------------------------------------------------------------------

    async def get(self, external_ref: str) -> ContractData | None:
        """The whole record, for system callers (tests, the import's report)."""
        async with self.store.session() as session:
            row = await session.scalar(sa.select(Contract).where(Contract.external_ref == external_ref))
            return from_row(row) if row is not None else None

    async def view_for(self, actor: Actor, external_ref: str) -> ContractView:
        async with self.store.session() as session:
            row = await session.scalar(sa.select(Contract).where(Contract.external_ref == external_ref))
            if row is None or not POLICY.allows(actor, "search"):
                raise NotFound(external_ref)
            names = await manager_names(session, [row])
        return self.view(actor, row, names)

    async def for_manager(self, actor: Actor, limit: int = 25) -> list[ContractView]:
        POLICY.check(actor, "list_own")
        async with self.store.session() as session:
            rows = await session.scalars(
                sa.select(Contract)
                .where(Contract.manager_aad_id == actor.aad_id, Contract.end_date >= self.today())
                .order_by(Contract.end_date)
                .limit(limit)
            )
            found = list(rows)
            names = await manager_names(session, found)
            return [self.view(actor, r, names) for r in found]

    async def search(self, actor: Actor, query: str, limit: int = 15) -> list[ContractView]:
        POLICY.check(actor, "search")
        words = query.strip().strip(".,;:!?").strip().lower()
        pattern = f"%{_escape_like(words)}%"
        async with self.store.session() as session:
            stmt = sa.select(Contract).order_by(Contract.end_date.desc()).limit(limit)
            if words:
                stmt = stmt.where(
                    sa.or_(
                        sa.func.lower(Contract.title).like(pattern, escape="\\"),
                        sa.func.lower(Contract.supplier_name).like(pattern, escape="\\"),
                        sa.func.lower(Contract.external_ref).like(pattern, escape="\\"),
                        Contract.supplier_org_no.like(pattern, escape="\\"),
                    )
                )
            found = list(await session.scalars(stmt))
            names = await manager_names(session, found)
            return [self.view(actor, r, names) for r in found]

    def view(self, actor: Actor, row: Contract, names: dict[str, str] | None = None) -> ContractView:
        """Prices and internal notes only for innkjøpere and the contract's own manager,
        and only in a personal chat (never where others read along)."""
        relations = {Relation.MANAGER} if actor.aad_id and row.manager_aad_id == actor.aad_id else set()
        entitled = POLICY.allows(actor, "see_prices", relations)
        name = (names or {}).get(row.manager_aad_id or "", "")
        return contract_view(row, self.today(), entitled=entitled, manager_name=name)


def contract_view(row: Contract, today: date, *, entitled: bool, manager_name: str = "") -> ContractView:
    deadline = next_deadline(from_row(row), today)
    return from_attributes(
        ContractView,
        row,
        value_nok=row.value_nok if entitled else None,
        internal_notes=row.internal_notes if entitled else None,
        archive_case_no=row.archive_case_no if entitled else None,
        options=list(row.options) if entitled else [],
        controls=list(row.controls) if entitled else [],
        next_deadline=(str(deadline[0]), deadline[1]) if deadline else None,
        cpv_codes=tuple(row.cpv_codes or ()),
        scope=row.scope or "",
        manager_name=manager_name,
    )


async def manager_names(session: AsyncSession, rows: Iterable[Contract]) -> dict[str, str]:
    """The names people know the avtaleforvaltere by (the users table), by AAD object id."""
    ids = {r.manager_aad_id for r in rows if r.manager_aad_id}
    if not ids:
        return {}
    found = await session.execute(sa.select(User.aad_object_id, User.name).where(User.aad_object_id.in_(ids)))
    return {aad: name for aad, name in found.tuples() if name}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
