"""reminders: index for finding unanswered delivered reminders

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_reminders_delivered", "reminders", ["status", "delivered_at"])


def downgrade() -> None:
    op.drop_index("ix_reminders_delivered", table_name="reminders")
