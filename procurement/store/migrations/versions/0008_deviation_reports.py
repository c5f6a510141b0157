"""deviation reports, their steps, attachments and status history

Revision ID: 0008
Revises: 0007

The draft steps live in `drafts` (form "deviation"), like the needs report's draft.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deviation_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ref", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("reporter_aad_id", sa.String(length=64), nullable=False),
        sa.Column("reporter_name", sa.String(length=200), nullable=False),
        sa.Column("reporting_unit", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=24), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("location", sa.String(length=200), nullable=False),
        sa.Column("financial_impact", sa.BigInteger(), nullable=True),
        sa.Column("breached_clause", sa.Text(), nullable=True),
        sa.Column("supplier_name", sa.String(length=200), nullable=False),
        sa.Column("contract_ref", sa.String(length=64), nullable=True),
        sa.Column("contract_title", sa.String(length=300), nullable=True),
        sa.Column("manager_aad_ids", sa.JSON(), nullable=False),
        sa.Column("source", sa.JSON(), nullable=True),
        sa.Column("remedy_deadline", sa.Date(), nullable=True),
        sa.Column("supplier_notice", sa.String(length=24), nullable=True),
        sa.Column("notice_id", sa.String(length=64), nullable=True),
        sa.Column("assessment", sa.Text(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closing_justification", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ref"),
    )
    with op.batch_alter_table("deviation_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deviation_reports_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_deviation_reports_reporter_aad_id"), ["reporter_aad_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deviation_reports_supplier_name"), ["supplier_name"], unique=False)
        batch_op.create_index(batch_op.f("ix_deviation_reports_contract_ref"), ["contract_ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_deviation_reports_created_at"), ["created_at"], unique=False)

    op.create_table(
        "deviation_status_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_aad_id", sa.String(length=64), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("from_status", sa.String(length=24), nullable=False),
        sa.Column("to_status", sa.String(length=24), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("remedy_deadline", sa.Date(), nullable=True),
        sa.Column("supplier_notice", sa.String(length=24), nullable=True),
        sa.ForeignKeyConstraint(["report_id"], ["deviation_reports.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deviation_status_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deviation_status_history_report_id"), ["report_id"], unique=False)

    op.create_table(
        "deviation_attachments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("draft_id", sa.String(length=40), nullable=False),
        sa.Column("owner_aad_id", sa.String(length=64), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("stored_name", sa.String(length=160), nullable=False),
        sa.Column("original_name", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("location", sa.String(length=1000), nullable=True),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["deviation_reports.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("draft_id", "stored_name", name="uq_deviation_attachments_name"),
    )
    with op.batch_alter_table("deviation_attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deviation_attachments_draft_id"), ["draft_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deviation_attachments_owner_aad_id"), ["owner_aad_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deviation_attachments_report_id"), ["report_id"], unique=False)

    op.create_table(
        "deviation_cards",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("conversation_id", sa.String(length=400), nullable=False),
        sa.Column("activity_id", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["deviation_reports.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("report_id", "conversation_id", "audience", name="uq_deviation_cards_where"),
    )
    with op.batch_alter_table("deviation_cards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deviation_cards_report_id"), ["report_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deviation_cards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deviation_cards_report_id"))
    op.drop_table("deviation_cards")
    with op.batch_alter_table("deviation_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deviation_attachments_report_id"))
        batch_op.drop_index(batch_op.f("ix_deviation_attachments_owner_aad_id"))
        batch_op.drop_index(batch_op.f("ix_deviation_attachments_draft_id"))
    op.drop_table("deviation_attachments")
    with op.batch_alter_table("deviation_status_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deviation_status_history_report_id"))
    op.drop_table("deviation_status_history")
    with op.batch_alter_table("deviation_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deviation_reports_created_at"))
        batch_op.drop_index(batch_op.f("ix_deviation_reports_contract_ref"))
        batch_op.drop_index(batch_op.f("ix_deviation_reports_supplier_name"))
        batch_op.drop_index(batch_op.f("ix_deviation_reports_reporter_aad_id"))
        batch_op.drop_index(batch_op.f("ix_deviation_reports_status"))
    op.drop_table("deviation_reports")
