"""Needs reports: drafts, submit (validated, assessed, idempotent), decisions, listing.

Each user action is one unit of work: the report, its audit entry and the side effects
(post to intake, tell the submitter) commit together; the outbox performs the effects.
Every command takes the `Actor` and checks `POLICY` itself.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from procurement.access import SYSTEM, Actor, NotFound, Relation
from procurement.needs.access import POLICY
from procurement.needs.assessment import FrameworkAgreementHit, assess
from procurement.needs.effects import NotifySubmitter, PostIntake, RefreshIntake
from procurement.needs.fields import NEEDS_REPORT_FIELDS, echo_limit
from procurement.needs.model import NeedsReportInput, validate_needs_report
from procurement.needs.record import DECISIONS, NeedsReport, can_decide, can_withdraw
from procurement.needs.rules import RuleSet
from procurement.shared.jsonable import jsonable
from procurement.shared.records import from_attributes
from procurement.shared.text import clean_text
from procurement.store.database import Store
from procurement.store.tables import Competition, Contract, Draft, SubmitRecord, utcnow
from procurement.store.tables import NeedsReport as NeedsReportRow

FORM = "needs_report"
SUBMIT_VERB = "needs_report.submit"


@dataclass(frozen=True)
class SubmitOutcome:
    errors: dict[str, dict[str, str]]
    report: NeedsReport | None = None
    repeated: bool = False


@dataclass(frozen=True)
class DecisionOutcome:
    report: NeedsReport
    changed: bool


def to_record(row: NeedsReportRow) -> NeedsReport:
    return from_attributes(NeedsReport, row, data=dict(row.data or {}), assessment=dict(row.assessment or {}))


def _relations(actor: Actor, row: NeedsReportRow) -> set[Relation]:
    return {Relation.SUBMITTER} if actor.aad_id and row.submitter_aad_id == actor.aad_id else set()


def clean_draft(raw: dict[str, Any]) -> dict[str, str]:
    """Keep only text values of known fields, capped, so a draft can always be re-shown."""
    out: dict[str, str] = {}
    for key in NEEDS_REPORT_FIELDS:
        value = raw.get(key)
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            out[key] = clean_text(str(value))[: echo_limit(key)]
    return out


async def _save_draft(session: AsyncSession, aad_id: str, raw: dict[str, Any]) -> dict[str, str]:
    data = clean_draft(raw)
    draft = await session.get(Draft, (aad_id, FORM))
    if draft is None:
        session.add(Draft(user_aad_id=aad_id, form=FORM, data=data))
    else:
        draft.data = data
        draft.updated_at = utcnow()
    return data


async def _previous_submit(session: AsyncSession, token: str, actor: Actor) -> NeedsReportRow | None:
    if not token:
        return None
    record = await session.get(SubmitRecord, token)
    if record is None or record.verb != SUBMIT_VERB or record.actor_aad_id != actor.aad_id:
        return None
    return await session.scalar(sa.select(NeedsReportRow).where(NeedsReportRow.ref == record.result.get("ref")))


async def _framework_hits(session: AsyncSession, category: str, on: date) -> list[FrameworkAgreementHit]:
    rows = await session.scalars(
        sa.select(Contract)
        .where(
            Contract.agreement_type == "framework",
            Contract.category == category,
            Contract.start_date <= on,
            Contract.end_date >= on,
        )
        .order_by(Contract.end_date.desc())
        .limit(5)
    )
    return [
        FrameworkAgreementHit(
            contract_ref=c.external_ref,
            title=c.title,
            supplier=c.supplier_name,
            category=c.category,
            end_date=c.end_date,
        )
        for c in rows
    ]


async def _claim(session: AsyncSession, row: NeedsReportRow, status: str) -> bool:
    """Move the report from the status we read to `status`, or learn someone was first.

    A compare-and-set, because SQLite ignores FOR UPDATE: two innkjøpere pressing at the
    same moment both read "submitted", and only one UPDATE may match.
    """
    result = await session.execute(
        sa.update(NeedsReportRow)
        .where(NeedsReportRow.id == row.id, NeedsReportRow.status == row.status)
        .values(status=status)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await session.refresh(row)
        return False
    row.status = status
    return True


class NeedsReports:
    def __init__(self, store: Store, rules: RuleSet) -> None:
        self.store = store
        self.rules = rules

    # -- drafts --------------------------------------------------------------------------

    async def save_draft(self, actor: Actor, raw: dict[str, Any]) -> dict[str, str]:
        POLICY.check(actor, "save_draft")
        async with self.store.unit_of_work(actor) as uow:
            return await _save_draft(uow.session, actor.aad_id, raw)

    async def draft(self, actor: Actor) -> dict[str, str] | None:
        POLICY.check(actor, "open_form")
        async with self.store.session() as session:
            draft = await session.get(Draft, (actor.aad_id, FORM))
            return dict(draft.data) if draft else None

    # -- submit --------------------------------------------------------------------------

    async def submit(self, actor: Actor, token: str, raw: dict[str, Any], today: date) -> SubmitOutcome:
        POLICY.check(actor, "submit")
        # Validation is CPU only; everything else is one unit of work (a retried submit, the
        # framework agreements, the new report), so a submit is one transaction.
        result = validate_needs_report(raw, today)
        try:
            async with self.store.unit_of_work(actor) as uow:
                session = uow.session
                previous = await _previous_submit(session, token, actor)
                if previous is not None:
                    return SubmitOutcome(errors={}, report=to_record(previous), repeated=True)
                if result.errors or result.value is None:
                    await _save_draft(session, actor.aad_id, raw)
                    return SubmitOutcome(errors=result.errors)
                value: NeedsReportInput = result.value
                facts = result.facts()
                assert facts is not None
                hits = await _framework_hits(session, value.category, today)
                assessment = assess(facts, today, hits, rules=self.rules).to_dict()
                ref = await uow.next_reference("BM", today.year)
                row = NeedsReportRow(
                    ref=ref,
                    status="submitted",
                    submitter_aad_id=actor.aad_id,
                    submitter_name=actor.name[:200],
                    title=value.title,
                    service_area=value.service_area,
                    category=value.category,
                    estimated_value=value.estimated_value,
                    data=jsonable(dataclasses.asdict(value)),
                    assessment=jsonable(assessment),
                    created_at=utcnow(),
                )
                session.add(row)
                if token:
                    session.add(
                        SubmitRecord(token=token, actor_aad_id=actor.aad_id, verb=SUBMIT_VERB, result={"ref": ref})
                    )
                await session.execute(sa.delete(Draft).where(Draft.user_aad_id == actor.aad_id, Draft.form == FORM))
                uow.audit(
                    "needs_report.submitted",
                    "needs_report",
                    ref,
                    {
                        "value": value.estimated_value,
                        "category": value.category,
                        "consequences": [c["code"] for c in assessment["consequences"]],
                    },
                )
                uow.emit(PostIntake(ref))
                report = to_record(row)
        except IntegrityError:
            # A concurrent double-tap with the same token won the race: return its result.
            async with self.store.session() as session:
                again = await _previous_submit(session, token, actor)
            if again is None:
                raise
            return SubmitOutcome(errors={}, report=to_record(again), repeated=True)
        return SubmitOutcome(errors={}, report=report)

    # -- reading -------------------------------------------------------------------------

    async def view(self, actor: Actor, ref: str) -> NeedsReport:
        """The report for someone who may see it; `NotFound` for everyone else alike."""
        async with self.store.session() as session:
            row = await session.scalar(sa.select(NeedsReportRow).where(NeedsReportRow.ref == ref))
        if row is None or not POLICY.granted(actor, "view", _relations(actor, row)):
            raise NotFound(ref)
        return to_record(row)

    async def mine(self, actor: Actor, limit: int = 20) -> list[NeedsReport]:
        POLICY.check(actor, "list_own")
        async with self.store.session() as session:
            rows = await session.scalars(
                sa.select(NeedsReportRow)
                .where(NeedsReportRow.submitter_aad_id == actor.aad_id)
                .order_by(NeedsReportRow.created_at.desc(), NeedsReportRow.id.desc())
                .limit(limit)
            )
            return [to_record(r) for r in rows]

    async def load(self, ref: str) -> NeedsReport | None:
        """For the outbox (acting as the system): the report whatever the reader."""
        async with self.store.session() as session:
            row = await session.scalar(sa.select(NeedsReportRow).where(NeedsReportRow.ref == ref))
        return to_record(row) if row is not None else None

    async def set_intake_message(self, ref: str, conversation_id: str, activity_id: str) -> None:
        async with self.store.unit_of_work(SYSTEM) as uow:
            await uow.session.execute(
                sa.update(NeedsReportRow)
                .where(NeedsReportRow.ref == ref)
                .values(intake_conversation_id=conversation_id, intake_activity_id=activity_id)
            )

    # -- withdraw and decide -------------------------------------------------------------

    async def withdraw(self, actor: Actor, ref: str) -> DecisionOutcome:
        async with self.store.unit_of_work(actor) as uow:
            row = await uow.session.scalar(sa.select(NeedsReportRow).where(NeedsReportRow.ref == ref).with_for_update())
            if row is None or not POLICY.granted(actor, "withdraw", _relations(actor, row)):
                raise NotFound(ref)
            if not can_withdraw(row.status) or not await _claim(uow.session, row, "withdrawn"):
                return DecisionOutcome(to_record(row), False)
            row.updated_at = utcnow()
            uow.audit("needs_report.withdrawn", "needs_report", ref)
            uow.emit(RefreshIntake(ref, version="withdrawn"))
            return DecisionOutcome(to_record(row), True)

    async def decide(self, actor: Actor, ref: str, decision: str, note: str, today: date) -> DecisionOutcome:
        """Approve, reject or ask for more information (innkjøpere only)."""
        POLICY.check(actor, "decide")
        status = DECISIONS[decision]
        async with self.store.unit_of_work(actor) as uow:
            session = uow.session
            row = await session.scalar(sa.select(NeedsReportRow).where(NeedsReportRow.ref == ref).with_for_update())
            if row is None:
                raise NotFound(ref)
            if not can_decide(row.status, decision) or not await _claim(session, row, status):
                return DecisionOutcome(to_record(row), False)
            now = utcnow()
            row.decided_by_aad_id = actor.aad_id
            row.decided_by_name = actor.name[:200]
            row.decided_at = now
            row.decision_note = note or None
            row.updated_at = now
            details: dict[str, Any] = {"note": note} if note else {}
            if status == "approved":
                competition_ref = await uow.next_reference("K", today.year)
                session.add(Competition(ref=competition_ref, needs_report_id=row.id, title=row.title))
                row.competition_ref = competition_ref
                details["competition"] = competition_ref
                uow.audit("competition.created", "competition", competition_ref, {"needs_report": ref})
            uow.audit(f"needs_report.{status}", "needs_report", ref, details)
            version = f"{status}:{now.isoformat()}"
            uow.emit(NotifySubmitter(ref, status=status, version=version))
            # Everyone's copy of the intake card, even when the in-turn edit was throttled.
            uow.emit(RefreshIntake(ref, version=version))
            return DecisionOutcome(to_record(row), True)
