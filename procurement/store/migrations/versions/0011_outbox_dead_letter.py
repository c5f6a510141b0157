"""outbox: dead letters and their alert

Revision ID: 0011
Revises: 0010

The reason of a failure as a code, when the failing started and last happened, the dead-letter
moment and when Innkjøpsseksjonen was alerted. Rows that ended "failed" or "unreachable"
before this revision become dead letters, their reason read from the code their `last_error`
starts with (e.g. "permission_missing: PermanentError 403 Forbidden", "blocked: Unreachable 403").
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The `why` codes rows stored before this revision (procurement/errors.py).
_KNOWN = {
    "not_installed",
    "blocked",
    "unknown_user",
    "no_manager",
    "no_reference",
    "not_allowed_by_policy",
    "not_in_catalog",
    "permission_missing",
    "sign_in_failed",
    "failed",
}
_PREFIX = re.compile(r"^([a-z_]+):")


def _reason(status: str, last_error: str | None) -> str:
    text = last_error or ""
    match = _PREFIX.match(text)
    if match and match.group(1) in _KNOWN:
        return match.group(1)
    if text.startswith("LookupError"):
        return "no_handler"
    if text.startswith("TypeError"):
        return "bad_payload"
    return "no_reference" if status == "unreachable" else "failed"


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("reason", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("reason_ref", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=True))
    outbox = sa.table(
        "outbox",
        sa.column("id", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("last_error", sa.String()),
        sa.column("done_at", sa.DateTime(timezone=True)),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("reason", sa.String()),
        sa.column("first_failed_at", sa.DateTime(timezone=True)),
        sa.column("last_failed_at", sa.DateTime(timezone=True)),
        sa.column("dead_at", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    ended = bind.execute(
        sa.select(outbox.c.id, outbox.c.status, outbox.c.last_error, outbox.c.done_at, outbox.c.created_at).where(
            outbox.c.status.in_(("failed", "unreachable"))
        )
    ).all()
    # Nothing is removed: an old failure stays visible as a dead letter that a person may retry.
    for row in ended:
        at = row.done_at or row.created_at
        bind.execute(
            sa.update(outbox)
            .where(outbox.c.id == row.id)
            .values(
                status="dead",
                reason=_reason(row.status, row.last_error),
                first_failed_at=at,
                last_failed_at=at,
                dead_at=at,
            )
        )


def downgrade() -> None:
    outbox = sa.table("outbox", sa.column("status", sa.String()), sa.column("reason", sa.String()))
    unreachable = (
        "not_installed",
        "blocked",
        "unknown_user",
        "no_manager",
        "no_reference",
        "not_allowed_by_policy",
        "not_in_catalog",
    )
    op.execute(
        sa.update(outbox)
        .where(outbox.c.status == "dead", outbox.c.reason.in_(unreachable))
        .values(status="unreachable")
    )
    op.execute(sa.update(outbox).where(outbox.c.status == "dead").values(status="failed"))
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("alerted_at")
        batch.drop_column("dead_at")
        batch.drop_column("last_failed_at")
        batch.drop_column("first_failed_at")
        batch.drop_column("reason_ref")
        batch.drop_column("reason")
