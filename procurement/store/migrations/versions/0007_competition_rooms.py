"""competition rooms: provisioning steps, members, evaluation answers

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "competition_rooms",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("competition_id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("membership_type", sa.String(length=16), nullable=False),
        sa.Column("team_id", sa.String(length=200), nullable=False),
        sa.Column("channel_name", sa.String(length=100), nullable=False),
        sa.Column("owner_aad_id", sa.String(length=64), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("failed_step", sa.String(length=16), nullable=True),
        sa.Column("failure", sa.String(length=64), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("files_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status_conversation_id", sa.String(length=400), nullable=True),
        sa.Column("status_activity_id", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("requested_by_aad_id", sa.String(length=64), nullable=False),
        sa.Column("evaluation_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluation_summarised_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["competition_id"], ["competitions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("competition_id"),
        sa.UniqueConstraint("ref"),
    )
    op.create_table(
        "competition_room_members",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("aad_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("why", sa.String(length=32), nullable=True),
        sa.Column("welcome_conversation_id", sa.String(length=400), nullable=True),
        sa.Column("welcome_activity_id", sa.String(length=200), nullable=True),
        sa.Column("evaluation_activity_id", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["room_id"], ["competition_rooms.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("room_id", "key", name="uq_competition_room_members_key"),
    )
    with op.batch_alter_table("competition_room_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_competition_room_members_room_id"), ["room_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_competition_room_members_aad_id"), ["aad_id"], unique=False)
    op.create_table(
        "competition_evaluations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("competition_id", sa.Integer(), nullable=False),
        sa.Column("aad_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["competition_id"], ["competitions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("competition_id", "aad_id", name="uq_competition_evaluations_member"),
    )
    with op.batch_alter_table("competition_evaluations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_competition_evaluations_competition_id"), ["competition_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("competition_evaluations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_competition_evaluations_competition_id"))
    op.drop_table("competition_evaluations")
    with op.batch_alter_table("competition_room_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_competition_room_members_aad_id"))
        batch_op.drop_index(batch_op.f("ix_competition_room_members_room_id"))
    op.drop_table("competition_room_members")
    op.drop_table("competition_rooms")
