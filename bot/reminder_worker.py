"""Sends due reminders to the avtaleforvalter and escalates to Innkjøpsseksjonen's channel.

One card per contract: the reminders claimed in a round for the same contract and recipient
(`Reminders.claim_due` pulls in the contract's reminders due within a week) go out as one
card with a line for each and one set of buttons, and are recorded together — the card's
reminders share its message id. Escalations merge the same way: one card per contract in
the follow-up channel, with each reminder's reason.

Each claimed group ends the round in one recorded state, sorted by the one error
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
from collections.abc import Sequence
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
    async def reminder_card(self, reminder_ids: Sequence[int]) -> tuple[dict[str, Any], str] | None:
        """The one card for these reminders (of one contract), and the recipient's language."""

    async def escalation_card(self, reasons: dict[int, EscalationReason]) -> dict[str, Any] | None:
        """The one escalation card for these reminders (of one contract) and their reasons."""

    async def delivered(self, reminder_ids: Sequence[int]) -> None:
        """Hook after delivery (e.g. audit); may be a no-op."""


def by_card(items: Sequence[DueReminder]) -> list[list[DueReminder]]:
    """Claimed reminders grouped as their cards show them: per contract and recipient, in
    claim order (a contract's reminders share one card)."""
    groups: dict[tuple[int, str | None], list[DueReminder]] = {}
    for item in items:
        groups.setdefault((item.contract_id, item.recipient_aad_id), []).append(item)
    return list(groups.values())


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
        """One round; returns how many reminders it handled (not cards)."""
        due = await self.reminders.claim_due(self.worker_id, self.batch, self.lease)
        await asyncio.gather(*(self._deliver(group) for group in by_card(due)))
        escalations = await self.reminders.claim_escalations(self.worker_id, self.batch, self.lease)
        # One card per contract in the channel, whoever the reminders were for.
        per_contract: dict[int, list[DueReminder]] = {}
        for item in escalations:
            per_contract.setdefault(item.contract_id, []).append(item)
        await asyncio.gather(*(self._escalate(group) for group in per_contract.values()))
        return len(due) + len(escalations)

    async def run_forever(self, poll_seconds: float = 30.0) -> None:
        await run_rounds(self.run_once, lambda: asyncio.sleep(poll_seconds), f"reminder worker {self.worker_id}")

    async def _deliver(self, group: list[DueReminder]) -> None:
        ids = [r.id for r in group]
        first = group[0]
        try:
            built = await self.cards.reminder_card(ids)
            if built is None:
                return
            card, _lang = built
            if not first.recipient_aad_id:
                await self.reminders.mark_unreachable(ids, self.worker_id, EscalationReason("no_manager").encode())
                return
            conversation_id, activity_id = await self.sender.send_to_user(first.recipient_aad_id, card)
        except Unreachable as gone:
            await self._mark_for_escalation(group, gone.why, gone)
        except TransientError as later:
            self.stats["retried"] += 1
            delay = later.retry_after if later.retry_after is not None else backoff(1, base=2.0, cap=120.0)
            log.info("reminders %s: %s, again in %.1f s", ids, later.reason, delay)
            await self.reminders.release(ids, self.worker_id, utcnow() + timedelta(seconds=delay), later.summary())
        except Exception as err:  # PermanentError, or a bug: bounded, then a human hears of it
            self.stats["failed"] += 1
            await self._failed(group, err)
        else:
            await self.reminders.mark_delivered(ids, self.worker_id, conversation_id, activity_id)
            self.stats["delivered"] += len(ids)
            await self.cards.delivered(ids)

    async def _failed(self, group: list[DueReminder], err: Exception) -> None:
        ids = [r.id for r in group]
        attempts = max(r.attempts for r in group)
        why = err.why if isinstance(err, IntegrationError) else "failed"
        summary = err.summary() if isinstance(err, IntegrationError) else type(err).__name__
        if attempts >= self.permanent_attempts:
            await self._mark_for_escalation(group, why, err)
            return
        delay = backoff(attempts - 1, base=self.permanent_backoff, cap=self.max_backoff)
        log.warning(
            "reminders %s: delivery failed (%s, attempt %d of %d), again in %.0f s: %s",
            ids,
            why,
            attempts,
            self.permanent_attempts,
            delay,
            err.reason if isinstance(err, IntegrationError) else type(err).__name__,
            exc_info=not isinstance(err, IntegrationError),
        )
        await self.reminders.release(ids, self.worker_id, utcnow() + timedelta(seconds=delay), summary)

    async def _mark_for_escalation(self, group: list[DueReminder], why: str, err: Exception) -> None:
        ids = [r.id for r in group]
        reason = EscalationReason(why, new_reference())
        # The details (the outside system's answer) go to the log under the reference only.
        detail = err.reason if isinstance(err, IntegrationError) else repr(err)
        log.warning(
            "reminders %s (%s) escalated as %s, reference %s: %s",
            ids,
            group[0].contract_ref,
            why,
            reason.ref,
            detail,
            exc_info=not isinstance(err, IntegrationError),
        )
        await self.reminders.mark_unreachable(ids, self.worker_id, reason.encode())

    async def _escalate(self, group: list[DueReminder]) -> None:
        ids = [r.id for r in group]
        reasons = {r.id: EscalationReason.parse(r.escalation_reason) for r in group}
        try:
            card = await self.cards.escalation_card(reasons)
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
                "reminders %s: escalation failed (%s), again in %.0f s",
                ids,
                summary,
                delay,
                exc_info=not isinstance(err, IntegrationError),
            )
            await self.reminders.release_escalation(
                ids, self.worker_id, summary, retry_at=utcnow() + timedelta(seconds=delay)
            )
        else:
            await self.reminders.mark_escalated({i: r.encode() for i, r in reasons.items()}, self.worker_id)
            self.stats["escalated"] += len(ids)
