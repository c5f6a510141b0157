"""competition: the contract signed from it

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite can't ALTER a table to add a column with a constraint otherwise.
    with op.batch_alter_table("competitions") as batch:
        batch.add_column(sa.Column("contract_ref", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("competitions") as batch:
        batch.drop_column("signed_at")
        batch.drop_column("contract_ref")
