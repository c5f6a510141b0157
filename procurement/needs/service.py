"""Needs reports: drafts, submit (validated, assessed, idempotent), decisions, listing.

Each user action is one transaction: the report, its audit entry and the side effects
(post to intake, tell the submitter) commit together; the outbox performs the effects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from procurement.needs.model import NeedsReportInput, validate_needs_report
from procurement.needs.rules import FrameworkAgreementHit, RuleSet, assess
from procurement.shared.text import clean_text
from procurement.store.database import Store, audit, enqueue, next_number
from procurement.store.tables import Competition, Contract, Draft, NeedsReport, SubmitRecord, utcnow

FORM = "needs_report"
OPEN_STATUSES = ("submitted", "info_requested")
DECISIONS = {"approve": "approved", "reject": "rejected", "request_info": "info_requested"}


@dataclass(frozen=True)
class Who:
    aad_id: str
    name: str
    activity_id: str = ""


@dataclass
class SubmitOutcome:
    errors: dict[str, dict[str, str]]
    report: NeedsReport | None = None
    repeated: bool = False


@dataclass
class DecisionOutcome:
    report: NeedsReport | None
    changed: bool
    reason: str = ""  # "not_found", "already_decided", "" when changed


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _clean_draft(raw: dict[str, Any]) -> dict[str, str]:
    """Keep only text values of known fields, capped, so a draft can always be re-shown."""
    from procurement.needs.model import NEEDS_REPORT_FIELDS, echo_limit

    out: dict[str, str] = {}
    for key in NEEDS_REPORT_FIELDS:
        value = raw.get(key)
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            out[key] = clean_text(str(value))[:echo_limit(key)]
    return out


class NeedsReports:
    def __init__(self, store: Store, rules: RuleSet) -> None:
        self.store = store
        self.rules = rules

    # -- drafts ------------------------------------------------------------------------

    async def save_draft(self, aad_id: str, raw: dict[str, Any]) -> dict[str, str]:
        async with self.store.session() as session:
            return await self._save_draft(session, aad_id, raw)

    @staticmethod
    async def _save_draft(session: AsyncSession, aad_id: str, raw: dict[str, Any]) -> dict[str, str]:
        data = _clean_draft(raw)
        draft = await session.get(Draft, (aad_id, FORM))
        if draft is None:
            session.add(Draft(user_aad_id=aad_id, form=FORM, data=data))
        else:
            draft.data = data
            draft.updated_at = utcnow()
        return data

    async def draft(self, aad_id: str) -> dict[str, str] | None:
        async with self.store.session() as session:
            draft = await session.get(Draft, (aad_id, FORM))
            return dict(draft.data) if draft else None

    # -- submit --------------------------------------------------------------------------

    async def previous_submit(self, token: str) -> NeedsReport | None:
        async with self.store.session() as session:
            return await self._previous_submit(session, token)

    @staticmethod
    async def _previous_submit(session: AsyncSession, token: str) -> NeedsReport | None:
        if not token:
            return None
        record = await session.get(SubmitRecord, token)
        if record is None or record.verb != "needs_report.submit":
            return None
        return await session.scalar(sa.select(NeedsReport).where(NeedsReport.ref == record.result.get("ref")))

    async def framework_hits(self, category: str, on: date) -> list[FrameworkAgreementHit]:
        async with self.store.session() as session:
            return await self._framework_hits(session, category, on)

    @staticmethod
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

    async def submit(self, who: Who, token: str, raw: dict[str, Any], today: date) -> SubmitOutcome:
        # Validation is CPU only; everything else is one unit of work (a retried submit, the
        # framework agreements, the new report), so a submit is one transaction.
        result = validate_needs_report(raw, today)
        try:
            async with self.store.session() as session:
                previous = await self._previous_submit(session, token)
                if previous is not None:
                    return SubmitOutcome(errors={}, report=previous, repeated=True)
                if result.errors or result.value is None:
                    await self._save_draft(session, who.aad_id, raw)
                    return SubmitOutcome(errors=result.errors)
                value: NeedsReportInput = result.value
                facts = result.facts()
                assert facts is not None
                hits = await self._framework_hits(session, value.category, today)
                assessment = assess(facts, today, hits, rules=self.rules)
                ref = await next_number(session, "BM", today.year)
                report = NeedsReport(
                    ref=ref,
                    status="submitted",
                    submitter_aad_id=who.aad_id,
                    submitter_name=who.name,
                    title=value.title,
                    service_area=value.service_area,
                    category=value.category,
                    estimated_value=value.estimated_value,
                    data=_jsonable(dataclasses.asdict(value)),
                    assessment=_jsonable(assessment.to_dict()),
                )
                session.add(report)
                if token:
                    session.add(
                        SubmitRecord(token=token, actor_aad_id=who.aad_id, verb="needs_report.submit",
                                     result={"ref": ref})
                    )
                await session.execute(
                    sa.delete(Draft).where(Draft.user_aad_id == who.aad_id, Draft.form == FORM)
                )
                audit(session, actor_aad_id=who.aad_id, actor_name=who.name, action="needs_report.submitted",
                      entity="needs_report", entity_id=ref, activity_id=who.activity_id,
                      details={"value": value.estimated_value, "category": value.category,
                               "consequences": [c["code"] for c in assessment.to_dict()["consequences"]]})
                enqueue(session, "needs_report.post_intake", f"needs_report.post_intake:{ref}", {"ref": ref})
        except IntegrityError:
            # A concurrent double-tap with the same token won the race: return its result.
            again = await self.previous_submit(token)
            if again is None:
                raise
            return SubmitOutcome(errors={}, report=again, repeated=True)
        return SubmitOutcome(errors={}, report=report)

    # -- reading -------------------------------------------------------------------------

    async def get(self, ref: str) -> NeedsReport | None:
        async with self.store.session() as session:
            return await session.scalar(sa.select(NeedsReport).where(NeedsReport.ref == ref))

    async def mine(self, aad_id: str, limit: int = 20) -> list[NeedsReport]:
        async with self.store.session() as session:
            rows = await session.scalars(
                sa.select(NeedsReport)
                .where(NeedsReport.submitter_aad_id == aad_id)
                .order_by(NeedsReport.created_at.desc(), NeedsReport.id.desc())
                .limit(limit)
            )
            return list(rows)

    async def set_intake_message(self, ref: str, conversation_id: str, activity_id: str) -> None:
        async with self.store.session() as session:
            await session.execute(
                sa.update(NeedsReport)
                .where(NeedsReport.ref == ref)
                .values(intake_conversation_id=conversation_id, intake_activity_id=activity_id)
            )

    # -- withdraw and decide -----------------------------------------------------------

    async def withdraw(self, who: Who, ref: str) -> DecisionOutcome:
        async with self.store.session() as session:
            report = await session.scalar(sa.select(NeedsReport).where(NeedsReport.ref == ref).with_for_update())
            if report is None or report.submitter_aad_id != who.aad_id:
                return DecisionOutcome(None, False, "not_found")
            if report.status not in OPEN_STATUSES or not await _claim(session, report, "withdrawn"):
                return DecisionOutcome(report, False, "already_decided")
            report.updated_at = utcnow()
            audit(session, actor_aad_id=who.aad_id, actor_name=who.name, action="needs_report.withdrawn",
                  entity="needs_report", entity_id=ref, activity_id=who.activity_id)
            enqueue(session, "needs_report.refresh_intake", f"needs_report.refresh_intake:{ref}:withdrawn",
                    {"ref": ref})
            return DecisionOutcome(report, True)

    async def decide(self, who: Who, ref: str, decision: str, note: str, today: date) -> DecisionOutcome:
        """Approve, reject or ask for more information. The caller has checked the role."""
        status = DECISIONS[decision]
        async with self.store.session() as session:
            report = await session.scalar(sa.select(NeedsReport).where(NeedsReport.ref == ref).with_for_update())
            if report is None:
                return DecisionOutcome(None, False, "not_found")
            if report.status not in OPEN_STATUSES or (status == "info_requested" and report.status == status):
                return DecisionOutcome(report, False, "already_decided")
            if not await _claim(session, report, status):
                return DecisionOutcome(report, False, "already_decided")
            report.decided_by_aad_id = who.aad_id
            report.decided_by_name = who.name
            report.decided_at = utcnow()
            report.decision_note = note or None
            report.updated_at = utcnow()
            details: dict[str, Any] = {"note": note} if note else {}
            if status == "approved":
                competition_ref = await next_number(session, "K", today.year)
                session.add(Competition(ref=competition_ref, needs_report_id=report.id, title=report.title))
                report.competition_ref = competition_ref
                details["competition"] = competition_ref
                audit(session, actor_aad_id=who.aad_id, actor_name=who.name, action="competition.created",
                      entity="competition", entity_id=competition_ref, activity_id=who.activity_id,
                      details={"needs_report": ref})
            audit(session, actor_aad_id=who.aad_id, actor_name=who.name, action=f"needs_report.{status}",
                  entity="needs_report", entity_id=ref, activity_id=who.activity_id, details=details)
            stamp = report.decided_at.isoformat()
            enqueue(session, "needs_report.notify_submitter",
                    f"needs_report.notify_submitter:{ref}:{status}:{stamp}",
                    {"ref": ref, "status": status})
            # Everyone's copy of the intake card, even when the in-turn edit was throttled.
            enqueue(session, "needs_report.refresh_intake", f"needs_report.refresh_intake:{ref}:{status}:{stamp}",
                    {"ref": ref})
            return DecisionOutcome(report, True)


async def _claim(session: AsyncSession, report: NeedsReport, status: str) -> bool:
    """Move the report from the status we read to `status`, or learn someone was first.

    A compare-and-set, because SQLite ignores FOR UPDATE: two innkjøpere pressing at the
    same moment both read "submitted", and only one UPDATE may match.
    """
    result = await session.execute(
        sa.update(NeedsReport)
        .where(NeedsReport.id == report.id, NeedsReport.status == report.status)
        .values(status=status)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await session.refresh(report)
        return False
    report.status = status
    return True
