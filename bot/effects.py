"""Outbox handlers: the side effects of domain changes, performed after commit.

Each is idempotent by what it checks first (a stored message id), so a retry after a
crash does not post twice except in the short window between Teams accepting a post
and our recording its id.
"""

from __future__ import annotations

import logging
from typing import Any

from dialogs import contracts as contracts_dialog
from dialogs import needs_report as nr_dialog
from dialogs.services import Services
from procurement.store.outbox import Effect, Handler, RetryLater

from .proactive import ProactiveSender, Unreachable

log = logging.getLogger(__name__)


class Effects:
    def __init__(self, services: Services, sender: ProactiveSender, *, intake_channel_id: str) -> None:
        self.s = services
        self.sender = sender
        self.intake_channel_id = intake_channel_id

    def handlers(self) -> dict[str, Handler]:
        return {
            "needs_report.post_intake": self.post_intake,
            "needs_report.refresh_intake": self.refresh_intake,
            "needs_report.notify_submitter": self.notify_submitter,
        }

    async def post_intake(self, effect: Effect) -> None:
        report = await self.s.needs.load(effect.payload["ref"])
        if report is None or report.intake_activity_id:
            return
        if not self.intake_channel_id:
            log.error("INTAKE_CHANNEL_ID is not set: needs report %s waits for it", report.ref)
            raise RetryLater(600, "no intake channel configured")
        card = nr_dialog.intake_card(report, self.s.default_language, refresh_user_ids=await self.s.people.teams_user_ids(self.s.procurement_user_ids))
        try:
            activity_id = await self.sender.send_card(self.intake_channel_id, card, channel=True)
        except Unreachable as err:
            # The section's own channel must get every report: keep trying, loudly.
            log.error("intake channel unreachable for %s: %s", report.ref, err)
            raise RetryLater(300, str(err)) from err
        await self.s.needs.set_intake_message(report.ref, self.intake_channel_id, activity_id)

    async def refresh_intake(self, effect: Effect) -> None:
        report = await self.s.needs.load(effect.payload["ref"])
        if report is None or not (report.intake_activity_id and report.intake_conversation_id):
            return
        card = nr_dialog.intake_card(report, self.s.default_language, refresh_user_ids=await self.s.people.teams_user_ids(self.s.procurement_user_ids))
        await self.sender.update_card(report.intake_conversation_id, report.intake_activity_id, card)

    async def notify_submitter(self, effect: Effect) -> None:
        report = await self.s.needs.load(effect.payload["ref"])
        if report is None:
            return
        lang = await self.s.people.language_of(report.submitter_aad_id) or self.s.default_language
        await self.sender.send_to_user(report.submitter_aad_id, nr_dialog.decision_notice_card(report, lang))


class ReminderCardSource:
    """Builds reminder and escalation cards for the reminder worker."""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def reminder_card(self, reminder_id: int) -> tuple[dict[str, Any], str] | None:
        found = await self.s.reminders.get(reminder_id)
        if found is None:
            return None
        reminder, contract = found
        lang = self.s.default_language
        if reminder.recipient_aad_id:
            lang = await self.s.people.language_of(reminder.recipient_aad_id) or lang
        return contracts_dialog.reminder_card(lang, reminder, contract, asking=True), lang

    async def escalation_card(self, reminder_id: int, reason: str) -> dict[str, Any] | None:
        found = await self.s.reminders.get(reminder_id)
        if found is None:
            return None
        reminder, contract = found
        return contracts_dialog.escalation_card(self.s.default_language, reminder, contract, reason)

    async def delivered(self, reminder_id: int) -> None:
        return None
