"""The records read model: a register record's current values, read straight from its table.

The SharePoint mirror writes what a record *is* when the outbox gets to it, never what an
audit entry said it became, so changes may arrive in any order or twice. The values are keyed
by the `source` names of the list configuration (`rules_data/lists.json`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from procurement.store import tables

Values = dict[str, object]


def _date(value: object) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


async def _needs_report(session: AsyncSession, ref: str) -> Values | None:
    row = await session.scalar(sa.select(tables.NeedsReport).where(tables.NeedsReport.ref == ref))
    if row is None:
        return None
    data: dict[str, Any] = row.data or {}
    return {
        "ref": row.ref,
        "title": row.title,
        "status": row.status,
        "service_area": row.service_area,
        "category": row.category,
        "agreement_type": data.get("agreement_type"),
        "submitter_name": row.submitter_name,
        "created_at": row.created_at,
        "start_date": _date(data.get("start_date")),
        "duration_months": data.get("duration_months"),
        "decided_at": row.decided_at,
        "decided_by_name": row.decided_by_name,
        "competition_ref": row.competition_ref,
        "estimated_value": row.estimated_value,
        "decision_note": row.decision_note,
    }


async def _competition(session: AsyncSession, ref: str) -> Values | None:
    found = (
        await session.execute(
            sa.select(tables.Competition, tables.NeedsReport)
            .join(tables.NeedsReport, tables.NeedsReport.id == tables.Competition.needs_report_id)
            .where(tables.Competition.ref == ref)
        )
    ).first()
    if found is None:
        return None
    competition, report = found
    return {
        "ref": competition.ref,
        "title": competition.title,
        "status": competition.status,
        "needs_report_ref": report.ref,
        "service_area": report.service_area,
        "category": report.category,
        "created_at": competition.created_at,
        "contract_ref": competition.contract_ref,
        "signed_at": competition.signed_at,
        "estimated_value": report.estimated_value,
    }


async def _contract(session: AsyncSession, ref: str) -> Values | None:
    row = await session.scalar(sa.select(tables.Contract).where(tables.Contract.external_ref == ref))
    if row is None:
        return None
    return {
        "ref": row.external_ref,
        "title": row.title,
        "supplier_name": row.supplier_name,
        "supplier_org_no": row.supplier_org_no,
        "category": row.category,
        "agreement_type": row.agreement_type,
        "start_date": row.start_date,
        "end_date": row.end_date,
        "manager_email": row.manager_email,
        "risk_level": row.risk_level,
        "archive_case_no": row.archive_case_no,
        "competition_ref": row.competition_ref,
        "updated_at": row.updated_at,
        "value_nok": row.value_nok,
        "internal_notes": row.internal_notes,
    }


async def _deviation(session: AsyncSession, ref: str) -> Values | None:
    row = await session.scalar(sa.select(tables.DeviationReport).where(tables.DeviationReport.ref == ref))
    if row is None:
        return None
    about = " – ".join(p for p in (row.supplier_name, row.contract_title or "") if p)
    return {
        "ref": row.ref,
        "title": about or row.ref,
        "status": row.status,
        "category": row.category,
        "severity": row.severity,
        "contract_ref": row.contract_ref,
        "supplier_name": row.supplier_name,
        "created_at": row.created_at,
        "closed_at": row.closed_at,
        "occurred_on": row.occurred_on,
        "description": row.description,
        "location": row.location,
        "breached_clause": row.breached_clause,
        "financial_impact": row.financial_impact,
        "reporter_name": row.reporter_name,
    }


Reader = Callable[[AsyncSession, str], Awaitable[Values | None]]
READERS: dict[str, Reader] = {
    "needs_report": _needs_report,
    "competition": _competition,
    "contract": _contract,
    "deviation": _deviation,
}
_REF_COLUMNS: dict[str, Any] = {
    "needs_report": tables.NeedsReport.ref,
    "competition": tables.Competition.ref,
    "contract": tables.Contract.external_ref,
    "deviation": tables.DeviationReport.ref,
}


async def record_values(session: AsyncSession, entity: str, ref: str) -> Values | None:
    """The record's current values, or None when there is no such record (or no table for the
    entity in this version)."""
    reader = READERS.get(entity)
    return await reader(session, ref) if reader is not None else None


async def record_refs(session: AsyncSession, entity: str) -> list[str]:
    """Every record's reference, in order."""
    column = _REF_COLUMNS.get(entity)
    if column is None:
        return []
    return list(await session.scalars(sa.select(column).order_by(column)))
