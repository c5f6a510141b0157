"""Outbox handler for the dead-letter alert: one card in Innkjøpsseksjonen's follow-up channel
per dead row (`AlertDeadLetter`, queued by the outbox worker when the row died).

The post checks the message id stored on the alert's own outbox row first and records it right
after the post, so a retry of the alert does not post twice. If the alert cannot be posted it
dies like any row (and the worker raises no alert about an alert): it still shows in
"status utsending".
"""

from __future__ import annotations

import logging

from dialogs import delivery_status
from dialogs.services import Services
from procurement.delivery.effects import AlertDeadLetter
from procurement.delivery.service import Delivery
from procurement.errors import PermanentError
from procurement.store.outbox import Handlers, SentMessages

from .proactive import ProactiveSender

log = logging.getLogger(__name__)


class DeliveryEffects:
    def __init__(self, services: Services, sender: ProactiveSender, *, followup_channel_id: str) -> None:
        self.s = services
        self.sender = sender
        self.followup_channel_id = followup_channel_id
        self.sent = SentMessages(services.store)
        self.delivery = services.delivery or Delivery(services.store, services.clock)

    def handlers(self) -> Handlers:
        return {AlertDeadLetter: self.alert_dead_letter}

    async def alert_dead_letter(self, effect: AlertDeadLetter) -> None:
        if await self.sent.get(effect):
            return  # posted already; a retry must not post it again
        job = await self.delivery.job_for_alert(effect.outbox_id)
        if job is None or job.state != "dead":
            # Retried (or done) before the alert went out: nothing to alert about any more.
            log.info("dead-letter alert for outbox row %s skipped: the row is no longer dead", effect.outbox_id)
            return
        if not self.followup_channel_id:
            # Configuration, not a passing failure: the alert dies at once and shows in the status.
            log.error("FOLLOWUP_CHANNEL_ID is not set: no alert about dead outbox row %s", effect.outbox_id)
            raise PermanentError("no follow-up channel configured", why="failed")
        card = delivery_status.dead_letter_card(self.s.default_language, job, self.s.clock())
        activity_id = await self.sender.send_card(self.followup_channel_id, card, channel=True)
        await self.sent.record(effect, activity_id)
