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
from procurement.competitions.effects import RefreshRoomStatus
from procurement.competitions.service import queue_room
from procurement.needs.access import POLICY
from procurement.needs.agreements import Agreement, match_agreements
from procurement.needs.assessment import FrameworkAgreementHit, NeedsReportFacts, assess
from procurement.needs.effects import AskSubmitter, NotifySubmitter, PostIntake, RefreshIntake
from procurement.needs.fields import NEEDS_REPORT_FIELDS, echo_limit
from procurement.needs.model import NeedsReportInput, validate_needs_report
from procurement.needs.record import (
    ANSWER_LIMIT,
    DECISIONS,
    QUESTION_LIMIT,
    AnswerStep,
    Exchange,
    Messages,
    NeedsReport,
    answer_step,
    can_decide,
    can_edit,
    can_withdraw,
    check_message,
    repeats_open_question,
    status_after_answer,
)
from procurement.needs.rules import RuleSet
from procurement.shared.jsonable import jsonable
from procurement.shared.records import from_attributes
from procurement.shared.text import clean_text
from procurement.store.database import Store
from procurement.store.tables import Competition, Contract, Draft, SubmitRecord, utcnow
from procurement.store.tables import NeedsReport as NeedsReportRow
from procurement.store.tables import NeedsReportExchange as ExchangeRow
from procurement.store.unit_of_work import UnitOfWork

FORM = "needs_report"
SUBMIT_VERB = "needs_report.submit"
UPDATE_VERB = "needs_report.update"


@dataclass(frozen=True)
class SubmitOutcome:
    errors: dict[str, dict[str, str]]
    report: NeedsReport | None = None
    repeated: bool = False


@dataclass(frozen=True)
class DecisionOutcome:
    report: NeedsReport
    changed: bool
    # A refused request (the question missing): messages by input id; nothing changed.
    errors: dict[str, Messages] = dataclasses.field(default_factory=dict)
    # The same question again while it is unanswered (a double press): nothing changed.
    repeated: bool = False


@dataclass(frozen=True)
class AnswerOutcome:
    report: NeedsReport
    exchange: Exchange
    step: AnswerStep | None  # None when the answer was refused (`errors`)
    errors: dict[str, Messages] = dataclasses.field(default_factory=dict)

    @property
    def recorded(self) -> bool:
        return self.step == "record"


@dataclass(frozen=True)
class UpdateOutcome:
    report: NeedsReport
    errors: dict[str, Messages] = dataclasses.field(default_factory=dict)
    changed: tuple[str, ...] = ()  # the fields the update changed
    repeated: bool = False  # the same card sent again
    closed: bool = False  # decided meanwhile: nothing changed


def to_record(row: NeedsReportRow, exchanges: tuple[Exchange, ...] = ()) -> NeedsReport:
    return from_attributes(
        NeedsReport,
        row,
        data=dict(row.data or {}),
        assessment=dict(row.assessment or {}),
        edited_fields=tuple(row.edited_fields or ()),
        exchanges=exchanges,
    )


async def _exchanges(session: AsyncSession, report_id: int) -> tuple[Exchange, ...]:
    rows = await session.scalars(
        sa.select(ExchangeRow)
        .where(ExchangeRow.needs_report_id == report_id)
        .order_by(ExchangeRow.id)
        .execution_options(populate_existing=True)  # answers are set by compare-and-set UPDATEs
    )
    return tuple(from_attributes(Exchange, r) for r in rows)


async def _full_record(session: AsyncSession, row: NeedsReportRow) -> NeedsReport:
    return to_record(row, await _exchanges(session, row.id))


async def _row(session: AsyncSession, ref: str, *, lock: bool = False) -> NeedsReportRow | None:
    query = sa.select(NeedsReportRow).where(NeedsReportRow.ref == ref)
    return await session.scalar(query.with_for_update() if lock else query)


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


async def _framework_hits(session: AsyncSession, facts: NeedsReportFacts, on: date) -> list[FrameworkAgreementHit]:
    """The framework agreements in force that plausibly cover the report, with the reasons.

    All of them are read (a municipality has tens to a few hundred): what covers a need is
    decided by the matcher on CPV codes and words, never by the category in SQL."""
    rows = await session.execute(
        sa.select(
            Contract.external_ref,
            Contract.title,
            Contract.supplier_name,
            Contract.category,
            Contract.start_date,
            Contract.end_date,
            Contract.cpv_codes,
            Contract.scope,
        ).where(Contract.agreement_type == "framework", Contract.start_date <= on, Contract.end_date >= on)
    )
    agreements = [
        Agreement(
            contract_ref=r.external_ref,
            title=r.title,
            supplier=r.supplier_name,
            category=r.category,
            start_date=r.start_date,
            end_date=r.end_date,
            cpv_codes=tuple(r.cpv_codes or ()),
            scope=r.scope or "",
        )
        for r in rows
    ]
    return match_agreements(facts, on, agreements)


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
                hits = await _framework_hits(session, facts, today)
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
            row = await _row(session, ref)
            if row is None or not POLICY.granted(actor, "view", _relations(actor, row)):
                raise NotFound(ref)
            return await _full_record(session, row)

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
            row = await _row(session, ref)
            return await _full_record(session, row) if row is not None else None

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
            row = await _row(uow.session, ref, lock=True)
            if row is None or not POLICY.granted(actor, "withdraw", _relations(actor, row)):
                raise NotFound(ref)
            if not can_withdraw(row.status) or not await _claim(uow.session, row, "withdrawn"):
                return DecisionOutcome(await _full_record(uow.session, row), False)
            row.updated_at = utcnow()
            uow.audit("needs_report.withdrawn", "needs_report", ref)
            uow.emit(RefreshIntake(ref, version="withdrawn"))
            return DecisionOutcome(await _full_record(uow.session, row), True)

    async def decide(self, actor: Actor, ref: str, decision: str, note: str, today: date) -> DecisionOutcome:
        """Approve, reject or ask for more information (innkjøpere only).

        For `request_info` the note is the question and is required; it becomes an exchange
        the submitter answers. Asking again (a new question) is allowed while the report is
        open; the same question while it is still unanswered is a double press."""
        POLICY.check(actor, "decide")
        status = DECISIONS[decision]
        async with self.store.unit_of_work(actor) as uow:
            session = uow.session
            row = await _row(session, ref, lock=True)
            if row is None:
                raise NotFound(ref)
            if not can_decide(row.status, decision):
                return DecisionOutcome(await _full_record(session, row), False)
            if decision == "request_info":
                return await self._ask(uow, row, note)
            if not await _claim(session, row, status):
                return DecisionOutcome(await _full_record(session, row), False)
            now = utcnow()
            row.decided_by_aad_id = actor.aad_id
            row.decided_by_name = actor.name[:200]
            row.decided_at = now
            row.decision_note = note or None
            row.updated_at = now
            details: dict[str, Any] = {"note": note} if note else {}
            if status == "approved":
                competition_ref = await uow.next_reference("K", today.year)
                competition = Competition(ref=competition_ref, needs_report_id=row.id, title=row.title)
                session.add(competition)
                row.competition_ref = competition_ref
                details["competition"] = competition_ref
                uow.audit("competition.created", "competition", competition_ref, {"needs_report": ref})
                # The room is queued with the approval; its job updates the approver's card.
                await queue_room(
                    uow,
                    competition,
                    conversation_id=row.intake_conversation_id or "",
                    activity_id=row.intake_activity_id or "",
                )
            uow.audit(f"needs_report.{status}", "needs_report", ref, details)
            version = f"{status}:{now.isoformat()}"
            uow.emit(NotifySubmitter(ref, status=status, version=version))
            # Everyone's copy of the intake card, even when the in-turn edit was throttled; after an
            # approval the card carries the room's status, so the room's redraw is the one to do.
            if status == "approved":
                uow.emit(RefreshRoomStatus(competition_ref, 0))
            else:
                uow.emit(RefreshIntake(ref, version=version))
            return DecisionOutcome(await _full_record(session, row), True)

    async def _ask(self, uow: UnitOfWork, row: NeedsReportRow, question: str) -> DecisionOutcome:
        session, actor = uow.session, uow.actor
        exchanges = await _exchanges(session, row.id)
        error = check_message(question, QUESTION_LIMIT, "question")
        if error:
            return DecisionOutcome(to_record(row, exchanges), False, errors={"decision_note": error})
        if repeats_open_question(exchanges, question):
            return DecisionOutcome(to_record(row, exchanges), False, repeated=True)
        # The compare-and-set also when the status stays info_requested: it takes the row, so
        # a decision pressed at the same moment cannot slip between our read and our write.
        if not await _claim(session, row, "info_requested"):
            return DecisionOutcome(await _full_record(session, row), False)
        now = utcnow()
        exchange = ExchangeRow(
            needs_report_id=row.id,
            question=question,
            asked_by_aad_id=actor.aad_id,
            asked_by_name=actor.name[:200],
            asked_at=now,
        )
        session.add(exchange)
        await session.flush()
        row.decided_by_aad_id = actor.aad_id
        row.decided_by_name = actor.name[:200]
        row.decided_at = now
        row.decision_note = None  # the question lives in its exchange, with its answer
        row.updated_at = now
        uow.audit(
            "needs_report.info_requested", "needs_report", row.ref, {"exchange": exchange.id, "question": question}
        )
        uow.emit(AskSubmitter(row.ref, exchange_id=exchange.id))
        uow.emit(RefreshIntake(row.ref, version=f"question:{exchange.id}"))
        return DecisionOutcome(await _full_record(session, row), True)

    # -- the submitter answers or corrects ------------------------------------------------

    async def _own(self, session: AsyncSession, actor: Actor, ref: str, verb: str, *, lock: bool) -> NeedsReportRow:
        """Her report for `verb`: NotFound for everyone else (they learn nothing), and the
        personal-chat rule checked for her."""
        row = await _row(session, ref, lock=lock)
        relations = _relations(actor, row) if row is not None else set()
        if row is None or not POLICY.granted(actor, verb, relations):
            raise NotFound(ref)
        POLICY.check(actor, verb, relations)
        return row

    async def question(self, actor: Actor, ref: str, exchange_id: int | None = None) -> tuple[NeedsReport, Exchange]:
        """The question to show her: the one asked for, else the latest still open (else the latest)."""
        async with self.store.session() as session:
            row = await self._own(session, actor, ref, "answer", lock=False)
            report = await _full_record(session, row)
        found = report.exchange(exchange_id) if exchange_id is not None else None
        if found is None and exchange_id is None and report.exchanges:
            found = (report.open_exchanges or report.exchanges)[-1]
        if found is None:
            raise NotFound(ref)
        return report, found

    async def answer(self, actor: Actor, ref: str, exchange_id: int, answer: str) -> AnswerOutcome:
        """Her answer to one question; the report is back in the queue when none is left open."""
        async with self.store.unit_of_work(actor) as uow:
            session = uow.session
            row = await self._own(session, actor, ref, "answer", lock=True)
            report = await _full_record(session, row)
            exchange = report.exchange(exchange_id)
            if exchange is None:
                raise NotFound(ref)
            error = check_message(answer, ANSWER_LIMIT, "answer")
            if error:
                return AnswerOutcome(report, exchange, None, errors={"answer": error})
            step = answer_step(row.status, exchange, answer)
            # Take the row first (status unchanged) so a decision cannot land between our
            # check and the answer; then the answer itself only where none is recorded yet.
            if step == "record" and not await _claim(session, row, row.status):
                # Changed between our read and now (a decision, another question): try once more.
                step = "record" if can_edit(row.status) and await _claim(session, row, row.status) else "closed"
            if step == "record":
                now = utcnow()
                result = await session.execute(
                    sa.update(ExchangeRow)
                    .where(ExchangeRow.id == exchange_id, ExchangeRow.answer.is_(None))
                    .values(answer=answer, answered_by_name=actor.name[:200], answered_at=now)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    report = await _full_record(session, row)
                    again = report.exchange(exchange_id)
                    assert again is not None
                    return AnswerOutcome(report, again, answer_step(row.status, again, answer))
                exchanges = await _exchanges(session, row.id)
                status = status_after_answer(sum(e.is_open for e in exchanges))
                if status != row.status:
                    await _claim(session, row, status)  # the row is ours since the claim above
                row.updated_at = now
                uow.audit(
                    "needs_report.answered",
                    "needs_report",
                    ref,
                    {"exchange": exchange_id, "answer": answer, "status": row.status},
                )
                uow.emit(RefreshIntake(ref, version=f"answer:{exchange_id}"))
            report = await _full_record(session, row)
            shown = report.exchange(exchange_id)
            assert shown is not None
            return AnswerOutcome(report, shown, step)

    async def for_edit(self, actor: Actor, ref: str) -> NeedsReport:
        """Her report to prefill the form with (the dialog says so when it is decided already)."""
        async with self.store.session() as session:
            row = await self._own(session, actor, ref, "edit", lock=False)
            return await _full_record(session, row)

    async def update(self, actor: Actor, ref: str, token: str, raw: dict[str, Any], today: date) -> UpdateOutcome:
        """The edited form: the same report (same ref) with new values and a new assessment.

        Idempotent by the card token like a submit: the same card sent twice is one edit.
        A refused form changes nothing and saves no draft (a draft is for a new report)."""
        result = validate_needs_report(raw, today)
        try:
            async with self.store.unit_of_work(actor) as uow:
                session = uow.session
                row = await self._own(session, actor, ref, "edit", lock=True)
                if token and await _previous_update(session, token, actor, ref):
                    return UpdateOutcome(await _full_record(session, row), repeated=True)
                if not can_edit(row.status):
                    return UpdateOutcome(await _full_record(session, row), closed=True)
                if result.errors or result.value is None:
                    return UpdateOutcome(await _full_record(session, row), errors=result.errors)
                value: NeedsReportInput = result.value
                data = jsonable(dataclasses.asdict(value))
                old = dict(row.data or {})
                changed = tuple(key for key in NEEDS_REPORT_FIELDS if data.get(key) != old.get(key))
                if token:
                    session.add(
                        SubmitRecord(token=token, actor_aad_id=actor.aad_id, verb=UPDATE_VERB, result={"ref": ref})
                    )
                if not changed:
                    return UpdateOutcome(await _full_record(session, row))
                if not await _claim(session, row, row.status):  # decided at this very moment
                    raise _Closed
                facts = result.facts()
                assert facts is not None
                hits = await _framework_hits(session, facts, today)
                now = utcnow()
                row.title = value.title
                row.service_area = value.service_area
                row.category = value.category
                row.estimated_value = value.estimated_value
                row.data = data
                row.assessment = jsonable(assess(facts, today, hits, rules=self.rules).to_dict())
                row.edited_at = now
                row.edited_fields = list(changed)
                row.updated_at = now
                uow.audit(
                    "needs_report.edited",
                    "needs_report",
                    ref,
                    {
                        "fields": list(changed),
                        "before": {k: old.get(k) for k in changed},
                        "after": {k: data.get(k) for k in changed},
                    },
                )
                uow.emit(RefreshIntake(ref, version=f"edited:{now.isoformat()}"))
                return UpdateOutcome(await _full_record(session, row), changed=changed)
        except _Closed:
            return UpdateOutcome(await self.for_edit(actor, ref), closed=True)
        except IntegrityError:
            # A concurrent double-tap with the same token won the race: its edit stands.
            async with self.store.session() as session:
                if not (token and await _previous_update(session, token, actor, ref)):
                    raise
            return UpdateOutcome(await self.for_edit(actor, ref), repeated=True)


class _Closed(Exception):
    """Raised inside a unit of work to roll it back: the report was decided meanwhile."""


async def _previous_update(session: AsyncSession, token: str, actor: Actor, ref: str) -> bool:
    record = await session.get(SubmitRecord, token)
    return (
        record is not None
        and record.verb == UPDATE_VERB
        and record.actor_aad_id == actor.aad_id
        and record.result.get("ref") == ref
    )
