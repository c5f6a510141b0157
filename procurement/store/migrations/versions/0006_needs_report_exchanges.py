"""needs reports: questions and answers (exchanges), and the submitter's last edit

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "needs_report_exchanges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("needs_report_id", sa.Integer(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("asked_by_aad_id", sa.String(length=64), nullable=False),
        sa.Column("asked_by_name", sa.String(length=200), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_by_name", sa.String(length=200), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["needs_report_id"], ["needs_reports.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("needs_report_exchanges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_needs_report_exchanges_needs_report_id"), ["needs_report_id"], unique=False
        )
    # Server defaults so existing rows get "never edited"; batch mode for SQLite.
    with op.batch_alter_table("needs_reports") as batch:
        batch.add_column(sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("edited_fields", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table("needs_reports") as batch:
        batch.drop_column("edited_fields")
        batch.drop_column("edited_at")
    with op.batch_alter_table("needs_report_exchanges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_needs_report_exchanges_needs_report_id"))
    op.drop_table("needs_report_exchanges")
