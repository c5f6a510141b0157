"""contracts: what an agreement covers (CPV codes and a short scope text)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Server defaults so existing rows get an empty list / empty text; batch mode for SQLite.
    with op.batch_alter_table("contracts") as batch:
        batch.add_column(sa.Column("cpv_codes", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch.add_column(sa.Column("scope", sa.Text(), nullable=False, server_default=sa.text("''")))


def downgrade() -> None:
    with op.batch_alter_table("contracts") as batch:
        batch.drop_column("scope")
        batch.drop_column("cpv_codes")
