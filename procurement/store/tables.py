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
    # Why the last attempt failed, as a code the UI words (`ds_why_<reason>`; the details are
    # in the log under `reason_ref`), and when the failing started and last happened.
    reason: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    reason_ref: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    first_failed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_failed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # A dead letter (status "dead"): kept, shown in "status utsending", retried by a person.
    dead_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # When Innkjøpsseksjonen's alert about this row was queued: once per row, kept on retry.
    alerted_at: Mapped[datetime | None] = mapped_column(nullable=True)


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


class CompetitionRoom(Base):
    """A competition's collaboration room and its provisioning job: the state of every step
    (channel → members → folders → strategy → tab → welcome) and what each made, so a retry or
    a restart resumes after the last completed step (`procurement/competitions/record.py`)."""

    __tablename__ = "competition_rooms"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    competition_id: Mapped[int] = mapped_column(sa.ForeignKey("competitions.id"), unique=True)
    ref: Mapped[str] = mapped_column(sa.String(32), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    membership_type: Mapped[str] = mapped_column(sa.String(16), default="private")
    team_id: Mapped[str] = mapped_column(sa.String(200), default="")
    channel_name: Mapped[str] = mapped_column(sa.String(100), default="")
    owner_aad_id: Mapped[str] = mapped_column(sa.String(64), default="")
    lang: Mapped[str] = mapped_column(sa.String(8), default="nb")
    steps: Mapped[JsonDict] = mapped_column(default=dict)
    results: Mapped[JsonDict] = mapped_column(default=dict)
    failed_step: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    failure: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    attempt: Mapped[int] = mapped_column(default=1)
    # The files folder may answer 404 for minutes: polled across reschedules until this moment.
    files_deadline: Mapped[datetime | None] = mapped_column(nullable=True)
    # One runner at a time (a lease, as the outbox's), even when an outbox lease expired.
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    # The approver's card (the intake message), updated in place as the steps complete.
    status_conversation_id: Mapped[str | None] = mapped_column(sa.String(400), nullable=True)
    status_activity_id: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    version: Mapped[int] = mapped_column(default=0)
    requested_by_aad_id: Mapped[str] = mapped_column(sa.String(64), default="")
    evaluation_requested_at: Mapped[datetime | None] = mapped_column(nullable=True)
    evaluation_summarised_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    ready_at: Mapped[datetime | None] = mapped_column(nullable=True)


class CompetitionRoomMember(Base):
    """Someone who belongs in a room: resolved (an AAD id) or not (the typed name, listed on the
    status card), and what happened when they were added; their welcome and evaluation cards."""

    __tablename__ = "competition_room_members"
    __table_args__ = (sa.UniqueConstraint("room_id", "key", name="uq_competition_room_members_key"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    room_id: Mapped[int] = mapped_column(sa.ForeignKey("competition_rooms.id"), index=True)
    key: Mapped[str] = mapped_column(sa.String(200))
    aad_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, index=True)
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    source: Mapped[str] = mapped_column(sa.String(16))
    role: Mapped[str] = mapped_column(sa.String(8), default="member")
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    why: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    welcome_conversation_id: Mapped[str | None] = mapped_column(sa.String(400), nullable=True)
    welcome_activity_id: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    evaluation_activity_id: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)


class CompetitionEvaluation(Base):
    """One room member's evaluation of a finished competition (for learning across competitions)."""

    __tablename__ = "competition_evaluations"
    __table_args__ = (sa.UniqueConstraint("competition_id", "aad_id", name="uq_competition_evaluations_member"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    competition_id: Mapped[int] = mapped_column(sa.ForeignKey("competitions.id"), index=True)
    aad_id: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    answers: Mapped[JsonDict] = mapped_column(default=dict)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- Deviation reports (issue 11; migration 0008) ---


class DeviationReport(Base):
    """A sent deviation report (avviksmelding); its draft lives in `drafts` (form "deviation")."""

    __tablename__ = "deviation_reports"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(sa.String(32), unique=True)
    status: Mapped[str] = mapped_column(sa.String(24), default="reported", index=True)
    reporter_aad_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    reporter_name: Mapped[str] = mapped_column(sa.String(200), default="")
    reporting_unit: Mapped[str] = mapped_column(sa.String(200), default="")
    category: Mapped[str] = mapped_column(sa.String(24))
    severity: Mapped[str] = mapped_column(sa.String(16))
    description: Mapped[str] = mapped_column(sa.Text)
    occurred_on: Mapped[date] = mapped_column(sa.Date)
    location: Mapped[str] = mapped_column(sa.String(200), default="")
    financial_impact: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    breached_clause: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    supplier_name: Mapped[str] = mapped_column(sa.String(200), index=True)
    contract_ref: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, index=True)
    contract_title: Mapped[str | None] = mapped_column(sa.String(300), nullable=True)
    # The contract's avtaleforvalter(s) when sent: who may follow it up (a later change of
    # manager in the register does not take a report away from the one who has it).
    manager_aad_ids: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    source: Mapped[JsonDict | None] = mapped_column(sa.JSON, nullable=True)  # the message it came from
    remedy_deadline: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    supplier_notice: Mapped[str | None] = mapped_column(sa.String(24), nullable=True)
    notice_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    assessment: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    closing_justification: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeviationStatusChange(Base):
    """Append-only history of a deviation report's status (who, when, from, to, note)."""

    __tablename__ = "deviation_status_history"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(sa.ForeignKey("deviation_reports.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_aad_id: Mapped[str] = mapped_column(sa.String(64), default="")
    actor_name: Mapped[str] = mapped_column(sa.String(200), default="")
    from_status: Mapped[str] = mapped_column(sa.String(24))
    to_status: Mapped[str] = mapped_column(sa.String(24))
    note: Mapped[str] = mapped_column(sa.Text, default="")
    remedy_deadline: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    supplier_notice: Mapped[str | None] = mapped_column(sa.String(24), nullable=True)


class DeviationAttachment(Base):
    """A photo or file of a deviation report. Received while the report is a draft (`draft_id`),
    its bytes wait in `content` until the outbox has stored them (locally or in SharePoint,
    `location`) under the report's reference; then `content` is emptied."""

    __tablename__ = "deviation_attachments"
    __table_args__ = (sa.UniqueConstraint("draft_id", "stored_name", name="uq_deviation_attachments_name"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    draft_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    owner_aad_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    report_id: Mapped[int | None] = mapped_column(sa.ForeignKey("deviation_reports.id"), nullable=True, index=True)
    stored_name: Mapped[str] = mapped_column(sa.String(160))
    original_name: Mapped[str] = mapped_column(sa.String(160))
    kind: Mapped[str] = mapped_column(sa.String(8))
    content_type: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    content: Mapped[bytes | None] = mapped_column(sa.LargeBinary, nullable=True)
    location: Mapped[str | None] = mapped_column(sa.String(1000), nullable=True)
    stored_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeviationCard(Base):
    """A card about a report posted somewhere (the avtaleforvalter's chat, the follow-up channel,
    the reporter's chat): redrawn in place after each change."""

    __tablename__ = "deviation_cards"
    __table_args__ = (sa.UniqueConstraint("report_id", "conversation_id", "audience", name="uq_deviation_cards_where"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(sa.ForeignKey("deviation_reports.id"), index=True)
    audience: Mapped[str] = mapped_column(sa.String(16))  # manager | channel | reporter
    conversation_id: Mapped[str] = mapped_column(sa.String(400))
    activity_id: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- Records: SharePoint list items (issue 12; migration 0009) ---


class ListItem(Base):
    """A record's item in one site's register list (`procurement/records/mirror.py`).

    `item_id` is SharePoint's id, kept so an update never has to search; lost (a crash between
    the create and this row), it is found again by the record's reference. The row is also the
    record's write lease: one worker at a time writes an item (`lease_owner` until
    `lease_until`), so two changes of one record never race and none makes a second item.
    `fingerprint` is a hash of the fields last written (a change that leaves them equal sends
    nothing)."""

    __tablename__ = "list_items"
    __table_args__ = (sa.UniqueConstraint("site", "entity", "ref", name="uq_list_items_record"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(sa.String(16))
    entity: Mapped[str] = mapped_column(sa.String(32))
    ref: Mapped[str] = mapped_column(sa.String(64))
    item_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(64), default="")
    lease_owner: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    synced_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- Records: archived documents (issue 12; migration 0010) ---


class ArchiveRequest(Base):
    """An innkjøper's "arkiver" in a competition room: the files offered (as listed when the
    picker was posted, so a submit is checked against them and not against card data), the
    picker message (updated in place into the receipt) and whether the choice was made."""

    __tablename__ = "archive_requests"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    case_ref: Mapped[str] = mapped_column(sa.String(32), index=True)
    requested_by_aad_id: Mapped[str] = mapped_column(sa.String(64))
    requested_by_name: Mapped[str] = mapped_column(sa.String(200), default="")
    lang: Mapped[str] = mapped_column(sa.String(8), default="nb")
    conversation_id: Mapped[str] = mapped_column(sa.String(400))
    status: Mapped[str] = mapped_column(sa.String(16), default="listing")
    offered: Mapped[list[Any]] = mapped_column(sa.JSON, default=list)
    problem: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    activity_id: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ArchivedDocument(Base):
    """One document's archive copy (a Noark 5 journal post in its case): looked up by `doc_key`
    before anything is uploaded, so a document is archived once whatever the retries."""

    __tablename__ = "archived_documents"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    doc_key: Mapped[str] = mapped_column(sa.String(300), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    record_ref: Mapped[str] = mapped_column(sa.String(64))
    case_ref: Mapped[str] = mapped_column(sa.String(64), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    title: Mapped[str] = mapped_column(sa.String(500), default="")
    filename: Mapped[str] = mapped_column(sa.String(255), default="")
    journal_key: Mapped[str] = mapped_column(sa.String(300), default="")
    source: Mapped[JsonDict] = mapped_column(default=dict)
    sha256: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    size: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    item_id: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    url: Mapped[str | None] = mapped_column(sa.String(1000), nullable=True)
    sidecar_url: Mapped[str | None] = mapped_column(sa.String(1000), nullable=True)
    reason: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    detail: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("archive_requests.id"), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(nullable=True)


# --- Outbox dead letters (issue 12; migration 0011): columns on OutboxItem above ---
