"""Send due reminders now: for trying reminders out on a development machine (`./dev reminders`).

A reminder is planned with a `send_after` in working hours on or after its due date (and a
failed delivery is retried after a backoff). Here every pending reminder whose due date has
come (today or earlier, Oslo time) gets `send_after = now`, so the running bot's reminder
worker sends it in its next round. Nothing else changes: reminders still go through the same
claim, delivery and escalation; future reminders stay planned. The command refuses to run
outside local mode (the caller checks): in production, working hours are the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from procurement.shared.dates import oslo_today
from procurement.store.database import Store
from procurement.store.tables import Reminder


@dataclass(frozen=True)
class DueNow:
    released: int  # made due now by this call
    ready: int  # pending and due now (including those that already were)
    next_due: date | None  # the next pending reminder after today, if any


async def release_due_reminders(store: Store, now: datetime) -> DueNow:
    today = oslo_today(now)
    pending = Reminder.status == "pending"
    # A reminder a worker holds right now (an unexpired lease) is left to that worker.
    unclaimed = sa.or_(Reminder.claimed_until.is_(None), Reminder.claimed_until < now)
    async with store.session() as session:
        result = await session.execute(
            sa.update(Reminder)
            .where(pending, unclaimed, Reminder.due_date <= today, Reminder.send_after > now)
            .values(send_after=now)
            .execution_options(synchronize_session=False)
        )
        released = int(getattr(result, "rowcount", 0) or 0)
        ready = await session.scalar(
            sa.select(sa.func.count()).select_from(Reminder).where(pending, Reminder.send_after <= now)
        )
        next_due = await session.scalar(
            sa.select(sa.func.min(Reminder.due_date)).where(pending, Reminder.due_date > today)
        )
    return DueNow(released=released, ready=int(ready or 0), next_due=next_due)
