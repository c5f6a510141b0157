"""Database tables (SQLAlchemy 2 declarative). Migrations in `procurement/migrations/`.

Timestamps are stored as UTC; SQLite keeps no zone, so `UtcDateTime` re-attaches it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


JsonDict = dict[str, Any]


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime(), JsonDict: sa.JSON()}


class User(Base):
    """A person who has talked to the bot, with their language choice."""

    __tablename__ = "users"
    aad_object_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    teams_user_id: Mapped[str] = mapped_column(sa.String(200), default="")
    tenant_id: Mapped[str] = mapped_column(sa.String(64), default="")
    language: Mapped[str | None] = mapped_column(sa.String(8), nullable=True)
    personal_conversation_id: Mapped[str | None] = mapped_column(sa.String(400), nullable=True)
    unreachable_reason: Mapped[str | None] = mapped_column(sa.String(400), nullable=True)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)


class ConversationRef(Base):
    """Enough of a conversation to message it proactively later."""

    __tablename__ = "conversation_refs"
    conversation_id: Mapped[str] = mapped_column(sa.String(400), primary_key=True)
    conversation_type: Mapped[str] = mapped_column(sa.String(32), default="personal")
    service_url: Mapped[str] = mapped_column(sa.String(400))
    channel_id: Mapped[str] = mapped_column(sa.String(32), default="msteams")
    tenant_id: Mapped[str] = mapped_column(sa.String(64), default="")
    team_id: Mapped[str | None] = mapped_column(sa.String(400), nullable=True)
    user_aad_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, index=True)
    reference: Mapped[JsonDict] = mapped_column()
    installed: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Installation(Base):
    """Append-only record of the app being added to or removed from a conversation."""

    __tablename__ = "installations"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(sa.String(400), index=True)
    action: Mapped[str] = mapped_column(sa.String(16))
    actor_aad_id: Mapped[str] = mapped_column(sa.String(64), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class BotState(Base):
    """Agents SDK turn/conversation state (the `Storage` implementation)."""

    __tablename__ = "bot_state"
    key: Mapped[str] = mapped_column(sa.String(512), primary_key=True)
    data: Mapped[JsonDict] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Append-only: who did what, when, from which activity (etterprøvbarhet)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_aad_id: Mapped[str] = mapped_column(sa.String(64), default="")
    actor_name: Mapped[str] = mapped_column(sa.String(200), default="")
    action: Mapped[str] = mapped_column(sa.String(64))
    entity: Mapped[str] = mapped_column(sa.String(32))
    entity_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    activity_id: Mapped[str] = mapped_column(sa.String(200), default="")
    details: Mapped[JsonDict] = mapped_column(default=dict)


class OutboxItem(Base):
    """A side effect to perform after the transaction that caused it has committed."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(64))
    idempotency_key: Mapped[str] = mapped_column(sa.String(300), unique=True)
    payload: Mapped[JsonDict] = mapped_column()
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(sa.String(1000), nullable=True)
    # The id of the message the effect posted, recorded right after the post: a retry of
    # the row checks it first and never posts again (`outbox.SentMessages`).
    message_id: Mapped[str | None] = mapped_column(sa.String(400), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(nullable=True)


class SubmitRecord(Base):
    """First result of a card submit, keyed by the card instance token (idempotency)."""

    __tablename__ = "submits"
    token: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    actor_aad_id: Mapped[str] = mapped_column(sa.String(64))
    verb: Mapped[str] = mapped_column(sa.String(64))
    result: Mapped[JsonDict] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Counter(Base):
    """Yearly sequences for human references (BM-2026-0001, K-2026-0001)."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


class Draft(Base):
    """A started but unsent form, per user and form."""

    __tablename__ = "drafts"
    user_aad_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    form: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    data: Mapped[JsonDict] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class NeedsReport(Base):
    __tablename__ = "needs_reports"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(sa.String(32), unique=True)
    status: Mapped[str] = mapped_column(sa.String(24), default="submitted", index=True)
    submitter_aad_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    submitter_name: Mapped[str] = mapped_column(sa.String(200), default="")
    title: Mapped[str] = mapped_column(sa.String(200))
    service_area: Mapped[str] = mapped_column(sa.String(64))
    category: Mapped[str] = mapped_column(sa.String(16))
    estimated_value: Mapped[int] = mapped_column(sa.BigInteger)
    data: Mapped[JsonDict] = mapped_column()
    assessment: Mapped[JsonDict] = mapped_column(default=dict)
    intake_conversation_id: Mapped[str | None] = mapped_column(sa.String(400), nullable=True)
    intake_activity_id: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    decided_by_aad_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    decided_by_name: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decision_note: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    competition_ref: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The submitter's last correction of an open report (which fields; the audit log has all).
    edited_at: Mapped[datetime | None] = mapped_column(nullable=True)
    edited_fields: Mapped[list[str]] = mapped_column(sa.JSON, default=list, server_default=sa.text("'[]'"))


class NeedsReportExchange(Base):
    """A question from Innkjøpsseksjonen about a needs report, and the submitter's answer."""

    __tablename__ = "needs_report_exchanges"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    needs_report_id: Mapped[int] = mapped_column(sa.ForeignKey("needs_reports.id"), index=True)
    question: Mapped[str] = mapped_column(sa.Text)
    asked_by_aad_id: Mapped[str] = mapped_column(sa.String(64))
    asked_by_name: Mapped[str] = mapped_column(sa.String(200), default="")
    asked_at: Mapped[datetime] = mapped_column(default=utcnow)
    answer: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    answered_by_name: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Competition(Base):
    __tablename__ = "competitions"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(sa.String(32), unique=True)
    needs_report_id: Mapped[int] = mapped_column(sa.ForeignKey("needs_reports.id"), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(24), default="planned")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the competition's contract is signed and entered in the register.
    contract_ref: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    signed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Contract(Base):
    __tablename__ = "contracts"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    external_ref: Mapped[str] = mapped_column(sa.String(64), unique=True)
    supplier_name: Mapped[str] = mapped_column(sa.String(200), index=True)
    supplier_org_no: Mapped[str] = mapped_column(sa.String(16), default="")
    title: Mapped[str] = mapped_column(sa.String(300))
    category: Mapped[str] = mapped_column(sa.String(16), index=True)
    start_date: Mapped[date] = mapped_column(sa.Date)
    end_date: Mapped[date] = mapped_column(sa.Date, index=True)
    value_nok: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    agreement_type: Mapped[str] = mapped_column(sa.String(16), default="single")
    manager_aad_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, index=True)
    manager_email: Mapped[str] = mapped_column(sa.String(200), default="")
    risk_level: Mapped[str] = mapped_column(sa.String(16), default="medium")
    archive_case_no: Mapped[str] = mapped_column(sa.String(32), default="")
    internal_notes: Mapped[str] = mapped_column(sa.Text, default="")
    options: Mapped[list[Any]] = mapped_column(sa.JSON, default=list)
    controls: Mapped[list[Any]] = mapped_column(sa.JSON, default=list)
    # What the agreement covers: matched against needs reports (procurement/needs/agreements.py).
    cpv_codes: Mapped[list[str]] = mapped_column(sa.JSON, default=list, server_default=sa.text("'[]'"))
    scope: Mapped[str] = mapped_column(sa.Text, default="", server_default=sa.text("''"))
    reminder_overrides: Mapped[JsonDict] = mapped_column(default=dict)
    fingerprint: Mapped[str] = mapped_column(sa.String(64), default="")
    source: Mapped[str] = mapped_column(sa.String(32), default="card")
    competition_ref: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reminder(Base):
    """One planned reminder; ends delivered/answered, escalated or cancelled."""

    __tablename__ = "reminders"
    __table_args__ = (
        sa.Index("ix_reminders_due", "status", "send_after"),
        # Unanswered delivered reminders, oldest first, for escalation.
        sa.Index("ix_reminders_delivered", "status", "delivered_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    contract_id: Mapped[int] = mapped_column(sa.ForeignKey("contracts.id"), index=True)
    subject_key: Mapped[str] = mapped_column(sa.String(300), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    due_date: Mapped[date] = mapped_column(sa.Date)
    target_date: Mapped[date] = mapped_column(sa.Date)
    option_number: Mapped[int | None] = mapped_column(nullable=True)
    control_index: Mapped[int | None] = mapped_column(nullable=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    send_after: Mapped[datetime] = mapped_column()
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(nullable=True)
    recipient_aad_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    conversation_id: Mapped[str | None] = mapped_column(sa.String(400), nullable=True)
    activity_id: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    answer: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    answer_reason: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    answered_by: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    escalation_reason: Mapped[str | None] = mapped_column(sa.String(400), nullable=True)
    last_error: Mapped[str | None] = mapped_column(sa.String(1000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- Competition rooms (issue 10; migration 0007) ---


# --- Deviation reports (issue 11; migration 0008) ---


# --- Records: SharePoint list items (issue 12; migration 0009) ---


# --- Records: archived documents (issue 12; migration 0010) ---


# --- Outbox dead letters (issue 12; migration 0011): columns on OutboxItem above ---
