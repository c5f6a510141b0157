"""Sends due reminders to the avtaleforvalter and escalates to Innkjøpsseksjonen's channel.

Each claimed reminder ends the round in one recorded state, sorted by the one error
vocabulary (`procurement.errors`):

- delivered;
- `TransientError` (429, 5xx, network): released until its Retry-After, else after backoff;
- `PermanentError` (a 403 from the app catalog, a refused secret) or an unexpected error:
  released with a growing backoff, and after `permanent_attempts` claims marked for
  escalation (an administrator may fix the cause in between; nobody waits for ever);
- `Unreachable` (blocked, not installed, unknown user, no avtaleforvalter): marked for
  escalation at once.

An escalation stores a code and, for failures, a short reference (`EscalationReason`); the
details are logged under that reference, so the channel's card says what happened in plain
words ("… kontakt IT, referanse F-7F3A2C") and never an error text. Escalations post to the
follow-up channel; one that can't be posted is kept and retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any, Protocol

from procurement.errors import (
    EscalationReason,
    IntegrationError,
    TransientError,
    Unreachable,
    new_reference,
)
from procurement.reminders.service import DueReminder, Reminders
from procurement.shared.backoff import backoff
from procurement.store.rounds import run_rounds
from procurement.store.tables import utcnow

from .proactive import ProactiveSender

log = logging.getLogger(__name__)


class ReminderCards(Protocol):
    async def reminder_card(self, reminder_id: int) -> tuple[dict[str, Any], str] | None:
        """The card for the avtaleforvalter, and their language."""

    async def escalation_card(self, reminder_id: int, reason: EscalationReason) -> dict[str, Any] | None: ...

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
        permanent_attempts: int = 6,
        permanent_backoff: float = 60.0,
        max_backoff: float = 3600.0,
    ) -> None:
        self.reminders = reminders
        self.sender = sender
        self.cards = cards
        self.followup_channel_id = followup_channel_id
        self.worker_id = worker_id or f"r-{uuid.uuid4().hex[:8]}"
        self.batch = batch
        self.lease = lease
        # A permanent failure: 6 claims 1, 2, 4, 8, 16 min apart (with jitter) → escalated
        # about half an hour after the first, unless someone fixed the cause meanwhile.
        self.permanent_attempts = permanent_attempts
        self.permanent_backoff = permanent_backoff
        self.max_backoff = max_backoff
        self.stats = {"delivered": 0, "escalated": 0, "retried": 0, "failed": 0}

    async def run_once(self) -> int:
        due = await self.reminders.claim_due(self.worker_id, self.batch, self.lease)
        await asyncio.gather(*(self._deliver(r) for r in due))
        escalations = await self.reminders.claim_escalations(self.worker_id, self.batch, self.lease)
        await asyncio.gather(*(self._escalate(r) for r in escalations))
        return len(due) + len(escalations)

    async def run_forever(self, poll_seconds: float = 30.0) -> None:
        await run_rounds(self.run_once, lambda: asyncio.sleep(poll_seconds), f"reminder worker {self.worker_id}")

    async def _deliver(self, item: DueReminder) -> None:
        try:
            built = await self.cards.reminder_card(item.id)
            if built is None:
                return
            card, _lang = built
            if not item.recipient_aad_id:
                await self.reminders.mark_unreachable(item.id, self.worker_id, EscalationReason("no_manager").encode())
                return
            conversation_id, activity_id = await self.sender.send_to_user(item.recipient_aad_id, card)
        except Unreachable as gone:
            await self._mark_for_escalation(item, gone.why, gone)
        except TransientError as later:
            self.stats["retried"] += 1
            delay = later.retry_after if later.retry_after is not None else backoff(1, base=2.0, cap=120.0)
            log.info("reminder %s: %s, again in %.1f s", item.id, later.reason, delay)
            await self.reminders.release(item.id, self.worker_id, utcnow() + timedelta(seconds=delay), later.summary())
        except Exception as err:  # PermanentError, or a bug: bounded, then a human hears of it
            self.stats["failed"] += 1
            await self._failed(item, err)
        else:
            await self.reminders.mark_delivered(item.id, self.worker_id, conversation_id, activity_id)
            self.stats["delivered"] += 1
            await self.cards.delivered(item.id)

    async def _failed(self, item: DueReminder, err: Exception) -> None:
        attempts = item.attempts
        why = err.why if isinstance(err, IntegrationError) else "failed"
        summary = err.summary() if isinstance(err, IntegrationError) else type(err).__name__
        if attempts >= self.permanent_attempts:
            await self._mark_for_escalation(item, why, err)
            return
        delay = backoff(attempts - 1, base=self.permanent_backoff, cap=self.max_backoff)
        log.warning(
            "reminder %s: delivery failed (%s, attempt %d of %d), again in %.0f s: %s",
            item.id,
            why,
            attempts,
            self.permanent_attempts,
            delay,
            err.reason if isinstance(err, IntegrationError) else type(err).__name__,
            exc_info=not isinstance(err, IntegrationError),
        )
        await self.reminders.release(item.id, self.worker_id, utcnow() + timedelta(seconds=delay), summary)

    async def _mark_for_escalation(self, item: DueReminder, why: str, err: Exception) -> None:
        reason = EscalationReason(why, new_reference())
        # The details (the outside system's answer) go to the log under the reference only.
        detail = err.reason if isinstance(err, IntegrationError) else repr(err)
        log.warning(
            "reminder %s (%s) escalated as %s, reference %s: %s",
            item.id,
            item.contract_ref,
            why,
            reason.ref,
            detail,
            exc_info=not isinstance(err, IntegrationError),
        )
        await self.reminders.mark_unreachable(item.id, self.worker_id, reason.encode())

    async def _escalate(self, item: DueReminder) -> None:
        reason = EscalationReason.parse(item.escalation_reason)
        try:
            card = await self.cards.escalation_card(item.id, reason)
            if card is None:
                return
            if not self.followup_channel_id:
                raise TransientError("FOLLOWUP_CHANNEL_ID is not set", retry_after=600)
            await self.sender.send_card(self.followup_channel_id, card, channel=True)
        except Exception as err:
            # The channel is the last stop: keep the escalation, back off like a send
            # (Retry-After when the channel gave one), so a broken channel is not hammered.
            retry_after = err.retry_after if isinstance(err, TransientError) else None
            delay = retry_after if retry_after is not None else backoff(1, base=60.0, cap=600.0) + 30.0
            summary = err.summary() if isinstance(err, IntegrationError) else type(err).__name__
            log.warning(
                "reminder %s: escalation failed (%s), again in %.0f s",
                item.id,
                summary,
                delay,
                exc_info=not isinstance(err, IntegrationError),
            )
            await self.reminders.release_escalation(
                item.id, self.worker_id, summary, retry_at=utcnow() + timedelta(seconds=delay)
            )
        else:
            await self.reminders.mark_escalated(item.id, self.worker_id, reason.encode())
            self.stats["escalated"] += 1
