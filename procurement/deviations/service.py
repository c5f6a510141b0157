"""Deviation reports: the draft in steps, photos and files, sending, follow-up to closure,
the reporter's list and the supplier summary.

Each user action is one unit of work (the change, its audit entry and its outbox effects
commit together) and checks `access.POLICY` itself, from the `Actor` the bot resolved. A
report an actor may not see raises `NotFound`, the same as a reference that does not exist.

The draft is one row in `drafts` (form "deviation") per person: {draft_id, step, values,
source}. `draft_id` is on every card of the form, so an old card (of a report sent since)
is recognised; photos and files received while the draft is open are kept under it
(`deviation_attachments`, their bytes in the row until the outbox has stored them under the
report's reference).
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from procurement.access import SYSTEM, Actor, NotFound
from procurement.deviations import summary as summaries
from procurement.deviations.access import POLICY, authorize, supplier_relations
from procurement.deviations.effects import (
    AlertCritical,
    AnswerSupplierExport,
    EscalateRemedyDeadline,
    MakeSupplierNotice,
    NotifyReporter,
    RefreshCards,
    RemindRemedyDeadline,
    RouteToManager,
    SendReceipt,
    SendSupplierExport,
    StoreAttachments,
)
from procurement.deviations.fields import (
    CONTRACT_NOT_LISTED,
    STEP_DETAILS,
    STEP_FILES,
    STEP_WHAT,
    STEPS,
)
from procurement.deviations.model import (
    CONTRACT_UNKNOWN,
    AcceptedFile,
    Messages,
    OfferedFile,
    ReceivedFile,
    RefusedFile,
    Screening,
    initial_values,
    screen_offered,
    screen_received,
    step_values,
    validate_report,
    validate_step,
)
from procurement.deviations.notice import notice_id
from procurement.deviations.record import (
    DeviationReport,
    HistoryEntry,
    SourceMessage,
    StoredAttachment,
    apply_transition,
    parse_ref,
    plan_transition,
)
from procurement.shared.calendar import OSLO
from procurement.shared.text import clean_text
from procurement.store.database import Store
from procurement.store.tables import (
    Competition,
    Contract,
    DeviationAttachment,
    DeviationCard,
    DeviationStatusChange,
    Draft,
    OutboxItem,
    SubmitRecord,
    utcnow,
)
from procurement.store.tables import DeviationReport as ReportRow
from procurement.store.unit_of_work import UnitOfWork

FORM = "deviation"
SUBMIT_VERB = "deviation.submit"
ENTITY = "deviation"
# The archive's access code for a closed report (procurement/records/rules_data/exemptions.json):
# a deviation report holds the supplier's business conditions and the reporter's identity.
ARCHIVE_EXEMPTION = "business_secret"
MAX_SOURCE_TEXT = 2000  # of a message the report is started from
REMINDER_HOUR = 8  # Oslo time, the day after a remedy deadline
ESCALATION_DAYS = 7


def _draft_token(draft_id: str) -> str:
    return f"deviation-draft:{draft_id}"


# -- what the dialogs get -------------------------------------------------------------------


@dataclass(frozen=True)
class DraftView:
    draft_id: str
    step: int
    values: dict[str, str]
    attachments: tuple[StoredAttachment, ...] = ()
    source: SourceMessage | None = None
    contract_title: str | None = None  # the chosen contract as the picker shows it


@dataclass(frozen=True)
class OpenOutcome:
    draft: DraftView
    resumed: bool  # an unsent report was there already and is shown where it stopped


@dataclass(frozen=True)
class StepOutcome:
    draft: DraftView | None
    errors: dict[str, Messages] = dataclasses.field(default_factory=dict)
    # The card was of a report sent meanwhile (`sent`), or of another draft (`stale`).
    sent: DeviationReport | None = None
    stale: bool = False


@dataclass(frozen=True)
class SubmitOutcome:
    report: DeviationReport | None = None
    draft: DraftView | None = None  # shown again when sending was refused
    errors: dict[str, Messages] = dataclasses.field(default_factory=dict)
    repeated: bool = False
    stale: bool = False


@dataclass(frozen=True)
class AttachOutcome:
    draft: DraftView
    accepted: tuple[AcceptedFile, ...]
    refused: tuple[RefusedFile, ...]


@dataclass(frozen=True)
class StatusOutcome:
    report: DeviationReport
    changed: bool
    errors: dict[str, Messages] = dataclasses.field(default_factory=dict)
    repeated: bool = False


@dataclass(frozen=True)
class CardPlace:
    audience: str
    conversation_id: str
    activity_id: str


@dataclass(frozen=True)
class PendingFile:
    id: int
    stored_name: str
    content_type: str
    content: bytes


# -- rows → records -------------------------------------------------------------------------


def _source(data: Any) -> SourceMessage | None:
    if not isinstance(data, dict) or not (data.get("author_name") or data.get("link")):
        return None
    sent_at = None
    if isinstance(data.get("sent_at"), str):
        try:
            sent_at = datetime.fromisoformat(data["sent_at"])
        except ValueError:
            sent_at = None
    return SourceMessage(str(data.get("author_name") or "")[:200], str(data.get("link") or "")[:1000], sent_at)


def _source_data(source: SourceMessage | None) -> dict[str, str] | None:
    if source is None:
        return None
    return {
        "author_name": source.author_name,
        "link": source.link,
        "sent_at": source.sent_at.isoformat() if source.sent_at else "",
    }


def _attachment(row: DeviationAttachment) -> StoredAttachment:
    return StoredAttachment(row.stored_name, row.original_name, row.kind, row.content_type, row.size)


async def _report(session: AsyncSession, row: ReportRow) -> DeviationReport:
    history = await session.scalars(
        sa.select(DeviationStatusChange)
        .where(DeviationStatusChange.report_id == row.id)
        .order_by(DeviationStatusChange.id)
    )
    files = await session.scalars(
        sa.select(DeviationAttachment).where(DeviationAttachment.report_id == row.id).order_by(DeviationAttachment.id)
    )
    return DeviationReport(
        ref=row.ref,
        status=row.status,
        reporter_aad_id=row.reporter_aad_id,
        reporter_name=row.reporter_name,
        category=row.category,
        severity=row.severity,
        description=row.description,
        occurred_on=row.occurred_on,
        created_at=row.created_at,
        supplier_name=row.supplier_name,
        contract_ref=row.contract_ref,
        contract_title=row.contract_title,
        manager_aad_ids=tuple(row.manager_aad_ids or ()),
        reporting_unit=row.reporting_unit,
        location=row.location,
        financial_impact=row.financial_impact,
        breached_clause=row.breached_clause,
        attachments=tuple(_attachment(f) for f in files),
        source=_source(row.source),
        remedy_deadline=row.remedy_deadline,
        supplier_notice=row.supplier_notice,
        assessment=row.assessment,
        closed_at=row.closed_at,
        closing_justification=row.closing_justification,
        history=tuple(
            HistoryEntry(
                at=h.at,
                actor_aad_id=h.actor_aad_id,
                actor_name=h.actor_name,
                from_status=h.from_status,
                to_status=h.to_status,
                note=h.note,
                remedy_deadline=h.remedy_deadline,
                supplier_notice=h.supplier_notice,
            )
            for h in history
        ),
        notice_id=row.notice_id,
        updated_at=row.updated_at,
    )


async def _row(session: AsyncSession, ref: str, *, lock: bool = False) -> ReportRow | None:
    query = sa.select(ReportRow).where(ReportRow.ref == ref)
    return await session.scalar(query.with_for_update() if lock else query)


def _clean_values(raw: Any) -> dict[str, str]:
    """A stored draft's values, re-cleaned (a draft written by an older version stays showable)."""
    if not isinstance(raw, dict):
        return {}
    out: dict[str, str] = {}
    for step in (STEP_WHAT, STEP_DETAILS):
        out.update({k: v for k, v in step_values(step, raw).items() if v})
    return out


class Deviations:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime] = utcnow,
        *,
        follow_up_channel_id: str = "",
    ) -> None:
        self.store = store
        self.clock = clock
        self.follow_up_channel_id = follow_up_channel_id

    def today(self) -> date:
        return self.clock().astimezone(OSLO).date()

    # -- access ---------------------------------------------------------------------------

    @staticmethod
    def _form_verb(verb: str, via_dialog: bool) -> str:
        """The form in a message action's dialog is allowed wherever the message is (only its
        opener sees the dialog); in a chat it is the personal chat's."""
        return "message_action" if via_dialog else verb

    def _in_follow_up_channel(self, actor: Actor) -> bool:
        channel = self.follow_up_channel_id
        return bool(channel) and actor.conversation_type == "channel" and actor.conversation_id.split(";")[0] == channel

    def _view_verb(self, actor: Actor) -> str:
        return "view_in_follow_up_channel" if self._in_follow_up_channel(actor) else "view"

    # -- the draft ------------------------------------------------------------------------

    async def _draft_row(self, session: AsyncSession, actor: Actor) -> Draft | None:
        return await session.get(Draft, (actor.aad_id, FORM), with_for_update=True)

    async def _view(self, session: AsyncSession, data: dict[str, Any]) -> DraftView:
        draft_id = str(data.get("draft_id") or "")
        files = await session.scalars(
            sa.select(DeviationAttachment)
            .where(DeviationAttachment.draft_id == draft_id, DeviationAttachment.report_id.is_(None))
            .order_by(DeviationAttachment.id)
        )
        values = _clean_values(data.get("values"))
        title = None
        if values.get("contract"):
            row = await session.scalar(sa.select(Contract).where(Contract.external_ref == values["contract"]))
            title = f"{row.title} – {row.supplier_name} ({row.external_ref})" if row is not None else None
        step = data.get("step")
        return DraftView(
            draft_id=draft_id,
            step=step if isinstance(step, int) and step in STEPS else STEP_WHAT,
            values=values,
            attachments=tuple(_attachment(f) for f in files),
            source=_source(data.get("source")),
            contract_title=title,
        )

    async def _contract_for(self, session: AsyncSession, contract: str | None, competition: str | None) -> str | None:
        """The register reference to start a report with: the given contract, or the one signed
        from a competition (the competition room's welcome card), if the register has it."""
        if competition:
            found = await session.scalar(
                sa.select(Contract.external_ref).where(Contract.competition_ref == competition[:32])
            )
            if found is None:
                found = await session.scalar(
                    sa.select(Competition.contract_ref).where(Competition.ref == competition[:32])
                )
            if found:
                return str(found)
        if contract:
            found = await session.scalar(sa.select(Contract.external_ref).where(Contract.external_ref == contract[:64]))
            return str(found) if found else None
        return None

    async def open(
        self,
        actor: Actor,
        *,
        contract: str | None = None,
        competition: str | None = None,
        source: SourceMessage | None = None,
        source_text: str = "",
        via_dialog: bool = False,
    ) -> OpenOutcome:
        """The form: a new draft, or the unsent one where it stopped (never lost). A contract (or
        the competition whose contract it is) and the message the report starts from fill what
        is still empty; nothing the user entered is replaced."""
        POLICY.check(actor, self._form_verb("open_form", via_dialog))
        async with self.store.unit_of_work(actor) as uow:
            session = uow.session
            draft = await self._draft_row(session, actor)
            resumed = draft is not None
            data: dict[str, Any] = dict(draft.data) if draft is not None else {}
            if not data.get("draft_id"):
                data = {
                    "draft_id": uuid.uuid4().hex,
                    "step": STEP_WHAT,
                    "values": initial_values(self.today()),
                    "started_at": utcnow().isoformat(),
                }
                resumed = False
            values = dict(data.get("values") or {})
            chosen = await self._contract_for(session, contract, competition)
            if chosen and not values.get("contract") and not values.get("supplier_name"):
                values["contract"] = chosen
            text = clean_text(source_text).strip()[:MAX_SOURCE_TEXT]
            if text and not values.get("description"):
                values["description"] = text
            if source is not None and not data.get("source"):
                data["source"] = _source_data(source)
            data["values"] = values
            await self._save(session, actor, draft, data)
            return OpenOutcome(await self._view(session, data), resumed)

    async def _save(self, session: AsyncSession, actor: Actor, draft: Draft | None, data: dict[str, Any]) -> None:
        if draft is None:
            session.add(Draft(user_aad_id=actor.aad_id, form=FORM, data=data))
        else:
            draft.data = data
            draft.updated_at = utcnow()

    async def draft(self, actor: Actor) -> DraftView | None:
        """The unsent report, if any (for "mine avvik" and for attaching files)."""
        async with self.store.session() as session:
            draft = await session.get(Draft, (actor.aad_id, FORM))
            if draft is None or not draft.data.get("draft_id"):
                return None
            return await self._view(session, dict(draft.data))

    async def _sent_from(self, session: AsyncSession, actor: Actor, draft_id: str) -> DeviationReport | None:
        record = await session.get(SubmitRecord, _draft_token(draft_id)) if draft_id else None
        if record is None or record.actor_aad_id != actor.aad_id:
            return None
        row = await _row(session, str(record.result.get("ref") or ""))
        return await _report(session, row) if row is not None else None

    async def save_step(
        self, actor: Actor, draft_id: str, step: object, raw: dict[str, Any], *, forward: bool, via_dialog: bool = False
    ) -> StepOutcome:
        """`deviation.next` (validate the step, save it, move on when it is right) and
        `deviation.back` (save as typed, move back). Errors keep the step and the values."""
        POLICY.check(actor, self._form_verb("save_step", via_dialog))
        number = step if isinstance(step, int) and step in STEPS else None
        if number is None and isinstance(step, str) and step.strip().isdigit():
            number = int(step.strip()) if int(step.strip()) in STEPS else None
        async with self.store.unit_of_work(actor) as uow:
            session = uow.session
            draft = await self._draft_row(session, actor)
            data: dict[str, Any] = dict(draft.data) if draft is not None else {}
            if draft is None or data.get("draft_id") != draft_id or number is None:
                sent = await self._sent_from(session, actor, draft_id)
                if sent is not None:
                    return StepOutcome(None, sent=sent)
                if draft is None:
                    raise NotFound(draft_id)  # a card of a draft that is gone: the dialog opens a new one
                return StepOutcome(await self._view(session, data), stale=True)
            values = dict(data.get("values") or {})
            errors: dict[str, Messages] = {}
            if forward:
                result = validate_step(number, raw, self.today())
                values.update(result.values)
                errors = dict(result.errors)
                if not errors and number == STEP_WHAT and values.get("contract") not in ("", CONTRACT_NOT_LISTED):
                    exists = await session.scalar(
                        sa.select(Contract.id).where(Contract.external_ref == values.get("contract"))
                    )
                    if exists is None:
                        errors["contract"] = CONTRACT_UNKNOWN
                next_step = number if errors else min(number + 1, STEP_FILES)
            else:
                values.update(step_values(number, raw))
                next_step = max(number - 1, STEP_WHAT)
            if values.get("contract") == CONTRACT_NOT_LISTED:
                values["contract"] = ""
            data["values"] = values
            data["step"] = next_step
            await self._save(session, actor, draft, data)
            return StepOutcome(await self._view(session, data), errors)

    # -- photos and files -----------------------------------------------------------------

    async def screen(self, actor: Actor, files: Sequence[OfferedFile]) -> tuple[DraftView | None, Screening]:
        """Before downloading: what may be fetched for her open report (None: no report open)."""
        POLICY.check(actor, "attach")
        draft = await self.draft(actor)
        if draft is None:
            return None, Screening()
        return draft, screen_offered(files, len(draft.attachments))

    async def attach(self, actor: Actor, draft_id: str, received: Sequence[ReceivedFile]) -> AttachOutcome:
        """Keep the downloaded files that pass (by their bytes) with the open report."""
        POLICY.check(actor, "attach")
        async with self.store.unit_of_work(actor) as uow:
            session = uow.session
            draft = await self._draft_row(session, actor)
            if draft is None or draft.data.get("draft_id") != draft_id:
                raise NotFound(draft_id)
            existing = list(
                await session.scalars(
                    sa.select(DeviationAttachment.stored_name).where(
                        DeviationAttachment.draft_id == draft_id, DeviationAttachment.report_id.is_(None)
                    )
                )
            )
            accepted: list[AcceptedFile] = []
            refused: list[RefusedFile] = []
            # One at a time, so each accepted file's bytes are the ones it was screened by.
            for item in received:
                one = screen_received([item], existing)
                refused.extend(one.refused)
                for file in one.accepted:
                    content = item.data or b""
                    existing.append(file.stored_name)
                    accepted.append(file)
                    session.add(
                        DeviationAttachment(
                            draft_id=draft_id,
                            owner_aad_id=actor.aad_id,
                            stored_name=file.stored_name,
                            original_name=file.original_name[:160],
                            kind=file.kind,
                            content_type=file.content_type,
                            size=file.size,
                            sha256=hashlib.sha256(content).hexdigest(),
                            content=content,
                        )
                    )
            draft.updated_at = utcnow()
            await session.flush()
            view = await self._view(session, dict(draft.data))
            return AttachOutcome(view, tuple(accepted), tuple(refused))

    async def remove_attachment(self, actor: Actor, draft_id: str, stored_name: str) -> DraftView:
        POLICY.check(actor, "attach")
        async with self.store.unit_of_work(actor) as uow:
            session = uow.session
            draft = await self._draft_row(session, actor)
            if draft is None or draft.data.get("draft_id") != draft_id:
                raise NotFound(draft_id)
            await session.execute(
                sa.delete(DeviationAttachment).where(
                    DeviationAttachment.draft_id == draft_id,
                    DeviationAttachment.report_id.is_(None),
                    DeviationAttachment.owner_aad_id == actor.aad_id,
                    DeviationAttachment.stored_name == stored_name[:160],
                )
            )
            return await self._view(session, dict(draft.data))

    # -- sending --------------------------------------------------------------------------

    async def submit(self, actor: Actor, token: str, draft_id: str, *, via_dialog: bool = False) -> SubmitOutcome:
        """Send the draft: validated again as a whole, given `AV-<year>-<nnnn>`, routed. A double
        tap (the same card token, or the same draft) returns the report sent the first time."""
        POLICY.check(actor, self._form_verb("submit", via_dialog))
        try:
            async with self.store.unit_of_work(actor) as uow:
                return await self._submit(uow, token, draft_id, via_dialog)
        except IntegrityError:
            # A concurrent double tap won the race: its report stands.
            async with self.store.session() as session:
                sent = await self._sent_from(session, actor, draft_id)
            if sent is None:
                raise
            return SubmitOutcome(report=sent, repeated=True)

    async def _submit(self, uow: UnitOfWork, token: str, draft_id: str, via_dialog: bool) -> SubmitOutcome:
        session, actor = uow.session, uow.actor
        if token:
            record = await session.get(SubmitRecord, token)
            if record is not None and record.verb == SUBMIT_VERB and record.actor_aad_id == actor.aad_id:
                row = await _row(session, str(record.result.get("ref") or ""))
                if row is not None:
                    return SubmitOutcome(report=await _report(session, row), repeated=True)
        sent = await self._sent_from(session, actor, draft_id)
        if sent is not None:
            return SubmitOutcome(report=sent, repeated=True)
        draft = await self._draft_row(session, actor)
        if draft is None:
            raise NotFound(draft_id)
        data = dict(draft.data)
        if data.get("draft_id") != draft_id:
            return SubmitOutcome(draft=await self._view(session, data), stale=True)
        files = list(
            await session.scalars(
                sa.select(DeviationAttachment)
                .where(DeviationAttachment.draft_id == draft_id, DeviationAttachment.report_id.is_(None))
                .order_by(DeviationAttachment.id)
            )
        )
        accepted = [AcceptedFile(f.original_name, f.stored_name, f.kind, f.content_type, f.size) for f in files]
        values = dict(data.get("values") or {})
        result = validate_report(values, accepted, self.today())
        errors = dict(result.errors)
        contract: Contract | None = None
        if result.value is not None and result.value.what.contract:
            contract = await session.scalar(
                sa.select(Contract).where(Contract.external_ref == result.value.what.contract)
            )
            if contract is None:
                errors["contract"] = CONTRACT_UNKNOWN
        if errors or result.value is None:
            data["step"] = result.first_step_with_errors or (STEP_WHAT if "contract" in errors else STEP_FILES)
            await self._save(session, actor, draft, data)
            return SubmitOutcome(draft=await self._view(session, data), errors=errors)
        what, details = result.value.what, result.value.details
        now = utcnow()
        ref = await uow.next_reference("AV", now.astimezone(OSLO).year)
        managers = [contract.manager_aad_id] if contract is not None and contract.manager_aad_id else []
        row = ReportRow(
            ref=ref,
            status="reported",
            reporter_aad_id=actor.aad_id,
            reporter_name=actor.name[:200],
            reporting_unit="",
            category=what.category,
            severity=what.severity,
            description=details.description,
            occurred_on=details.occurred_on,
            location=details.location,
            financial_impact=details.financial_impact,
            breached_clause=details.breached_clause,
            supplier_name=(contract.supplier_name if contract is not None else what.supplier_name)[:200],
            contract_ref=contract.external_ref if contract is not None else None,
            contract_title=contract.title[:300] if contract is not None else None,
            manager_aad_ids=managers,
            source=data.get("source") or None,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        await session.flush()
        for f in files:
            f.report_id = row.id
            uow.audit(
                "deviation.attachment_added",
                ENTITY,
                ref,
                {"name": f.stored_name, "kind": f.kind, "size": f.size, "sha256": f.sha256},
            )
        if token:
            session.add(SubmitRecord(token=token, actor_aad_id=actor.aad_id, verb=SUBMIT_VERB, result={"ref": ref}))
        session.add(
            SubmitRecord(token=_draft_token(draft_id), actor_aad_id=actor.aad_id, verb=SUBMIT_VERB, result={"ref": ref})
        )
        await session.delete(draft)
        uow.audit(
            "deviation.submitted",
            ENTITY,
            ref,
            {
                "category": what.category,
                "severity": what.severity,
                "supplier": row.supplier_name,
                "contract": row.contract_ref,
                "attachments": len(files),
                "routed_to": "manager" if managers else "follow_up_channel",
                "from_message": bool(row.source),
            },
        )
        uow.emit(RouteToManager(ref))
        if files:
            uow.emit(StoreAttachments(ref))
        if what.severity == "critical":
            uow.emit(AlertCritical(ref))
        if via_dialog:
            uow.emit(SendReceipt(ref))  # the dialog closes; the receipt goes to her personal chat
        return SubmitOutcome(report=await _report(session, row))

    # -- reading --------------------------------------------------------------------------

    async def view(self, actor: Actor, ref: str) -> DeviationReport:
        """The report for someone who may see it here; `NotFound` for everyone else alike."""
        canonical = parse_ref(ref)
        if canonical is None:
            raise NotFound(str(ref)[:40])
        async with self.store.session() as session:
            row = await _row(session, canonical)
            report = await _report(session, row) if row is not None else None
        return authorize(actor, self._view_verb(actor), report)

    async def mine(self, actor: Actor, limit: int = 20) -> list[DeviationReport]:
        POLICY.check(actor, "list_own")
        async with self.store.session() as session:
            rows = await session.scalars(
                sa.select(ReportRow)
                .where(ReportRow.reporter_aad_id == actor.aad_id)
                .order_by(ReportRow.created_at.desc(), ReportRow.id.desc())
                .limit(limit)
            )
            return [await _report(session, r) for r in list(rows)]

    async def load(self, ref: str) -> DeviationReport | None:
        """For the system (the outbox, the records workflow): the report whatever the reader."""
        async with self.store.session() as session:
            row = await _row(session, ref)
            return await _report(session, row) if row is not None else None

    # -- follow-up ------------------------------------------------------------------------

    async def change_status(
        self,
        actor: Actor,
        ref: str,
        status: object,
        *,
        note: object = None,
        remedy_deadline: object = None,
        supplier_notice: object = None,
    ) -> StatusOutcome:
        """`deviation.status`: one step forward (or a new remedy deadline, or closing with a
        justification) by the contract's avtaleforvalter or an innkjøper."""
        canonical = parse_ref(ref)
        if canonical is None:
            raise NotFound(str(ref)[:40])
        async with self.store.unit_of_work(actor) as uow:
            session = uow.session
            row = await _row(session, canonical, lock=True)
            before = await _report(session, row) if row is not None else None
            report = authorize(actor, "change_status", before)
            assert row is not None
            plan = plan_transition(
                report,
                status,
                note=note,
                remedy_deadline=remedy_deadline,
                supplier_notice=supplier_notice,
                today=self.today(),
            )
            if plan.outcome == "refused":
                return StatusOutcome(report, False, errors=plan.errors)
            if plan.outcome == "repeated":
                return StatusOutcome(report, False, repeated=True)
            now = utcnow()
            after = apply_transition(report, plan, actor_aad_id=actor.aad_id, actor_name=actor.name[:200], now=now)
            # Compare-and-set (SQLite ignores FOR UPDATE): two presses at once, one change.
            claimed = await session.execute(
                sa.update(ReportRow)
                .where(
                    ReportRow.id == row.id,
                    ReportRow.status == report.status,
                    ReportRow.updated_at == row.updated_at,
                )
                .values(
                    status=after.status,
                    remedy_deadline=after.remedy_deadline,
                    supplier_notice=after.supplier_notice,
                    assessment=after.assessment,
                    closed_at=after.closed_at,
                    closing_justification=after.closing_justification,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                await session.refresh(row)
                return StatusOutcome(await _report(session, row), False, repeated=True)
            entry = after.history[-1]
            change = DeviationStatusChange(
                report_id=row.id,
                at=now,
                actor_aad_id=entry.actor_aad_id,
                actor_name=entry.actor_name,
                from_status=entry.from_status,
                to_status=entry.to_status,
                note=entry.note,
                remedy_deadline=entry.remedy_deadline,
                supplier_notice=entry.supplier_notice,
            )
            session.add(change)
            await session.flush()
            details: dict[str, Any] = {"from": report.status, "to": after.status}
            if plan.note:
                details["note"] = plan.note
            if after.status == "in_progress" and after.remedy_deadline is not None:
                details["remedy_deadline"] = after.remedy_deadline.isoformat()
                details["supplier_notice"] = after.supplier_notice
            uow.audit("deviation.status_changed", ENTITY, canonical, details)
            if after.status == "closed":
                uow.audit(
                    "deviation.closed",
                    ENTITY,
                    canonical,
                    {"justification": plan.note, "exemption": ARCHIVE_EXEMPTION},
                )
            version = f"{after.status}:{change.id}"
            uow.emit(RefreshCards(canonical, version=version))
            told = "deadline_moved" if plan.moves_deadline else after.status
            uow.emit(NotifyReporter(canonical, status=told, version=version))
            if plan.produces_supplier_notice:
                uow.emit(MakeSupplierNotice(canonical, version=version))
            if after.status == "in_progress" and after.remedy_deadline is not None:
                self._schedule_deadline(uow, canonical, after.remedy_deadline)
            await session.refresh(row)
            return StatusOutcome(await _report(session, row), True)

    @staticmethod
    def _schedule_deadline(uow: UnitOfWork, ref: str, deadline: date) -> None:
        """The reminder the morning after the deadline, and the escalation a week later; both
        do nothing when the report has moved on or the deadline was moved meanwhile."""
        morning = datetime.combine(deadline + timedelta(days=1), time(REMINDER_HOUR), tzinfo=OSLO).astimezone(UTC)
        iso = deadline.isoformat()
        uow.emit(RemindRemedyDeadline(ref, iso), not_before=morning)
        uow.emit(EscalateRemedyDeadline(ref, iso), not_before=morning + timedelta(days=ESCALATION_DAYS))

    # -- the supplier follow-up meeting -----------------------------------------------------

    async def _supplier(self, session: AsyncSession, query: str) -> tuple[str, list[ReportRow], set[str]]:
        """The supplier's name as the register writes it, her reports, and her contracts' managers."""
        contracts = [
            (name, manager)
            for name, manager in (await session.execute(sa.select(Contract.supplier_name, Contract.manager_aad_id)))
            if summaries.same_supplier(name, query)
        ]
        candidates = await session.execute(sa.select(ReportRow.id, ReportRow.supplier_name))
        ids = [i for i, name in candidates if summaries.same_supplier(name, query)]
        rows = list(await session.scalars(sa.select(ReportRow).where(ReportRow.id.in_(ids)))) if ids else []
        managers = {m for _, m in contracts if m} | {m for r in rows for m in (r.manager_aad_ids or ())}
        name = contracts[0][0] if contracts else (rows[0].supplier_name if rows else query)
        return name, rows, managers

    async def supplier_summary(self, actor: Actor, query: str) -> summaries.SupplierSummary:
        """For innkjøpere and the avtaleforvaltere of that supplier's contracts (anyone else is
        refused the same way whether the supplier has reports or not)."""
        text = clean_text(query).strip()[:200]
        async with self.store.session() as session:
            name, rows, managers = await self._supplier(session, text)
            POLICY.check(actor, "supplier_summary", supplier_relations(actor, managers))
            reports = [await _report(session, r) for r in rows]
        return summaries.supplier_summary(name, reports)

    async def request_export(self, actor: Actor, query: str) -> summaries.SupplierSummary:
        """The CSV for the meeting: checked like the summary, then sent by the outbox."""
        found = await self.supplier_summary(actor, query)
        async with self.store.unit_of_work(actor) as uow:
            uow.audit(
                "deviation.exported",
                "deviation_export",
                found.supplier[:64],
                {"reports": [r.ref for r in found.reports]},
            )
            uow.emit(SendSupplierExport(actor.aad_id, found.supplier, actor.lang, utcnow().isoformat()))
        return found

    async def answer_export(self, actor: Actor, export_id: str, accepted: bool, upload: dict[str, str]) -> None:
        """The answer on the CSV's file consent card, for the outbox; whether the export is this
        user's is checked there against the stored one (a stranger's answer does nothing). Teams
        may repeat the invoke: an answer already queued is not queued again."""
        effect = AnswerSupplierExport(
            export_id,
            actor.aad_id,
            accepted,
            upload_url=upload.get("uploadUrl", "")[:4000],
            content_url=upload.get("contentUrl", "")[:4000],
            name=upload.get("name", "")[:300],
            unique_id=upload.get("uniqueId", "")[:200],
            file_type=upload.get("fileType", "")[:20],
        )
        async with self.store.unit_of_work(actor) as uow:
            key = effect.idempotency_key[:300]
            if await uow.session.scalar(sa.select(OutboxItem.id).where(OutboxItem.idempotency_key == key)) is None:
                uow.emit(effect)

    async def supplier_reports(self, supplier: str) -> list[DeviationReport]:
        """For the export's handler (the system; the request was checked)."""
        async with self.store.session() as session:
            _, rows, _ = await self._supplier(session, supplier)
            found = [await _report(session, r) for r in rows]
        return list(summaries.supplier_summary(supplier, found).reports)

    # -- for the outbox ---------------------------------------------------------------------

    async def cards(self, ref: str) -> list[CardPlace]:
        async with self.store.session() as session:
            rows = await session.execute(
                sa.select(DeviationCard.audience, DeviationCard.conversation_id, DeviationCard.activity_id)
                .join(ReportRow, ReportRow.id == DeviationCard.report_id)
                .where(ReportRow.ref == ref)
                .order_by(DeviationCard.id)
            )
            return [CardPlace(a, c, i) for a, c, i in rows]

    async def record_card(self, ref: str, audience: str, conversation_id: str, activity_id: str) -> None:
        async with self.store.unit_of_work(SYSTEM) as uow:
            row = await _row(uow.session, ref)
            if row is None:
                return
            uow.session.add(
                DeviationCard(
                    report_id=row.id, audience=audience, conversation_id=conversation_id, activity_id=activity_id
                )
            )

    async def pending_files(self, ref: str) -> list[PendingFile]:
        async with self.store.session() as session:
            rows = await session.execute(
                sa.select(
                    DeviationAttachment.id,
                    DeviationAttachment.stored_name,
                    DeviationAttachment.content_type,
                    DeviationAttachment.content,
                )
                .join(ReportRow, ReportRow.id == DeviationAttachment.report_id)
                .where(ReportRow.ref == ref, DeviationAttachment.content.is_not(None))
                .order_by(DeviationAttachment.id)
            )
            return [PendingFile(i, n, t, bytes(c or b"")) for i, n, t, c in rows]

    async def file_stored(self, attachment_id: int, location: str) -> None:
        """Where the file is kept now; its bytes leave the database."""
        async with self.store.unit_of_work(SYSTEM) as uow:
            await uow.session.execute(
                sa.update(DeviationAttachment)
                .where(DeviationAttachment.id == attachment_id)
                .values(location=location[:1000], stored_at=utcnow(), content=None)
            )

    async def stored_files(self, ref: str) -> list[tuple[str, str]]:
        """(name, location) of the report's stored files."""
        async with self.store.session() as session:
            rows = await session.execute(
                sa.select(DeviationAttachment.stored_name, DeviationAttachment.location)
                .join(ReportRow, ReportRow.id == DeviationAttachment.report_id)
                .where(ReportRow.ref == ref, DeviationAttachment.location.is_not(None))
                .order_by(DeviationAttachment.id)
            )
            return [(n, str(loc)) for n, loc in rows]

    async def notice_made(self, ref: str, by: Actor) -> str:
        """Record the formal notice once (audited `deviation.notice_created`); its id."""
        async with self.store.unit_of_work(by) as uow:
            row = await _row(uow.session, ref, lock=True)
            if row is None:
                raise NotFound(ref)
            if row.notice_id:
                return row.notice_id
            number = notice_id(ref)
            result = await uow.session.execute(
                sa.update(ReportRow)
                .where(ReportRow.id == row.id, ReportRow.notice_id.is_(None))
                .values(notice_id=number)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                uow.audit("deviation.notice_created", ENTITY, ref, {"notice": number})
            return number
