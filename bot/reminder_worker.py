"""Sends due reminders to the avtaleforvalter and escalates to Innkjøpsseksjonen's channel.

Each claimed reminder ends the round in exactly one recorded state: delivered, released
for a later try (429/5xx, honouring Retry-After), or marked for escalation (unreachable:
blocked, uninstalled, unknown user). Escalations post to the follow-up channel.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any, Protocol

from procurement.ports import UnreachableUser
from procurement.reminders.service import DueReminder, Reminders
from procurement.store.outbox import RetryLater
from procurement.store.tables import utcnow

from .proactive import ProactiveSender, backoff

log = logging.getLogger(__name__)


class ReminderCards(Protocol):
    async def reminder_card(self, reminder_id: int) -> tuple[dict[str, Any], str] | None:
        """The card for the avtaleforvalter, and their language."""

    async def escalation_card(self, reminder_id: int, reason: str) -> dict[str, Any] | None: ...

    async def delivered(self, reminder_id: int) -> None:
        """Hook after delivery (e.g. audit); may be a no-op."""


class ReminderWorker:
    def __init__(
        self,
        reminders: Reminders,
        sender: ProactiveSender,
        cards: ReminderCards,
        *,
        followup_channel_id: str,
        worker_id: str | None = None,
        batch: int = 100,
        lease: timedelta = timedelta(minutes=2),
    ) -> None:
        self.reminders = reminders
        self.sender = sender
        self.cards = cards
        self.followup_channel_id = followup_channel_id
        self.worker_id = worker_id or f"r-{uuid.uuid4().hex[:8]}"
        self.batch = batch
        self.lease = lease
        self.stats = {"delivered": 0, "escalated": 0, "retried": 0, "failed": 0}

    async def run_once(self) -> int:
        due = await self.reminders.claim_due(self.worker_id, self.batch, self.lease)
        await asyncio.gather(*(self._deliver(r) for r in due))
        escalations = await self.reminders.claim_escalations(self.worker_id, self.batch, self.lease)
        await asyncio.gather(*(self._escalate(r) for r in escalations))
        return len(due) + len(escalations)

    async def run_forever(self, poll_seconds: float = 30.0) -> None:
        while True:
            try:
                handled = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reminder worker %s: round failed", self.worker_id)
                handled = 0
            if handled == 0:
                await asyncio.sleep(poll_seconds)

    async def _deliver(self, item: DueReminder) -> None:
        try:
            built = await self.cards.reminder_card(item.id)
            if built is None:
                return
            card, _lang = built
            if not item.recipient_aad_id:
                await self.reminders.mark_unreachable(item.id, self.worker_id, "ingen avtaleforvalter registrert")
                return
            conversation_id, activity_id = await self.sender.send_to_user(item.recipient_aad_id, card)
        except UnreachableUser as gone:
            log.info("reminder %s: avtaleforvalter unreachable: %s", item.id, gone)
            await self.reminders.mark_unreachable(item.id, self.worker_id, f"kunne ikke nå avtaleforvalter: {gone}")
        except RetryLater as later:
            self.stats["retried"] += 1
            delay = later.retry_after if later.retry_after is not None else backoff(1, base=2.0, cap=120.0)
            await self.reminders.release(item.id, self.worker_id, utcnow() + timedelta(seconds=delay), str(later))
        except Exception as err:
            self.stats["failed"] += 1
            log.exception("reminder %s: delivery failed", item.id)
            await self.reminders.release(
                item.id, self.worker_id, utcnow() + timedelta(seconds=backoff(2, base=5.0, cap=600.0)),
                f"{type(err).__name__}",
            )
        else:
            await self.reminders.mark_delivered(item.id, self.worker_id, conversation_id, activity_id)
            self.stats["delivered"] += 1
            await self.cards.delivered(item.id)

    async def _escalate(self, item: DueReminder) -> None:
        reason = item.escalation_reason or "ubesvart i 7 dager"
        try:
            card = await self.cards.escalation_card(item.id, reason)
            if card is None:
                return
            if not self.followup_channel_id:
                raise RetryLater(600, "FOLLOWUP_CHANNEL_ID is not set")
            await self.sender.send_card(self.followup_channel_id, card, channel=True)
        except Exception as err:
            # Back off like a send (Retry-After when the channel gave one), so a broken channel
            # is not hammered every round.
            retry_after = err.retry_after if isinstance(err, RetryLater) else None
            delay = retry_after if retry_after is not None else backoff(1, base=30.0, cap=600.0) + 30.0
            log.warning("reminder %s: escalation failed (%s), retry in %.0f s", item.id, type(err).__name__, delay)
            await self.reminders.release_escalation(
                item.id, self.worker_id, f"{type(err).__name__}: {err}", retry_at=utcnow() + timedelta(seconds=delay)
            )
        else:
            await self.reminders.mark_escalated(item.id, self.worker_id, reason)
            self.stats["escalated"] += 1
