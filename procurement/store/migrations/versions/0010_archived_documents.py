"""records: archived documents (Noark 5 journal posts) and their cases

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_ref", sa.String(length=32), nullable=False),
        sa.Column("requested_by_aad_id", sa.String(length=64), nullable=False),
        sa.Column("requested_by_name", sa.String(length=200), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("conversation_id", sa.String(length=400), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("offered", sa.JSON(), nullable=False),
        sa.Column("problem", sa.String(length=32), nullable=True),
        sa.Column("activity_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("archive_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_archive_requests_case_ref"), ["case_ref"], unique=False)
    op.create_table(
        "archived_documents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("doc_key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("record_ref", sa.String(length=64), nullable=False),
        sa.Column("case_ref", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("journal_key", sa.String(length=300), nullable=False),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("item_id", sa.String(length=200), nullable=True),
        sa.Column("url", sa.String(length=1000), nullable=True),
        sa.Column("sidecar_url", sa.String(length=1000), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["archive_requests.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("doc_key"),
    )
    with op.batch_alter_table("archived_documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_archived_documents_case_ref"), ["case_ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_archived_documents_request_id"), ["request_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("archived_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_archived_documents_request_id"))
        batch_op.drop_index(batch_op.f("ix_archived_documents_case_ref"))
    op.drop_table("archived_documents")
    with op.batch_alter_table("archive_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_archive_requests_case_ref"))
    op.drop_table("archive_requests")
