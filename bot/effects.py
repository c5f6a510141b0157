"""Outbox handlers: the side effects of domain changes, performed after commit.

One handler per effect type (`handlers()`, given to the `OutboxWorker` at construction).
Each post checks its stored message id first (the intake post on the report, the
submitter's notice on its outbox row) and records it right after the post, so a retry
never posts twice, except when the process dies between Teams accepting a post and our
recording its id.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from dialogs import needs_report as nr_dialog
from dialogs import reminders as reminders_dialog
from dialogs.services import Services
from procurement.contracts.service import ContractView
from procurement.errors import EscalationReason, IntegrationError, PermanentError, TransientError, Unreachable
from procurement.needs.effects import AskSubmitter, NotifySubmitter, PostIntake, RefreshIntake
from procurement.needs.record import NeedsReport
from procurement.store.outbox import Handlers, SentMessages

from .proactive import ProactiveSender

log = logging.getLogger(__name__)


class Effects:
    def __init__(self, services: Services, sender: ProactiveSender, *, intake_channel_id: str) -> None:
        self.s = services
        self.sender = sender
        self.intake_channel_id = intake_channel_id
        self.sent = SentMessages(services.store)

    def handlers(self) -> Handlers:
        return {
            PostIntake: self.post_intake,
            RefreshIntake: self.refresh_intake,
            NotifySubmitter: self.notify_submitter,
            AskSubmitter: self.ask_submitter,
        }

    async def _intake_card(self, report: NeedsReport) -> dict[str, Any]:
        refresh_ids = await self.s.people.teams_user_ids(self.s.procurement_user_ids)
        return nr_dialog.intake_card(report, self.s.default_language, refresh_user_ids=refresh_ids)

    async def post_intake(self, effect: PostIntake) -> None:
        report = await self.s.needs.load(effect.ref)
        if report is None or report.intake_activity_id:
            return  # gone, or posted already (its message id is stored on the report)
        if not self.intake_channel_id:
            log.error("INTAKE_CHANNEL_ID is not set: needs report %s waits for it", report.ref)
            raise TransientError("no intake channel configured", retry_after=600)
        card = await self._intake_card(report)
        try:
            activity_id = await self.sender.send_card(self.intake_channel_id, card, channel=True)
        except (Unreachable, PermanentError) as err:
            # The section's own channel must get every report (someone may fix the channel or
            # the bot's credentials meanwhile): keep trying, loudly.
            log.error("intake channel refused %s (%s): %s", report.ref, err.why, err.reason)
            raise TransientError(f"intake channel refused the post: {err.why}", retry_after=300) from err
        await self.s.needs.set_intake_message(report.ref, self.intake_channel_id, activity_id)

    async def refresh_intake(self, effect: RefreshIntake) -> None:
        report = await self.s.needs.load(effect.ref)
        if report is None or not (report.intake_activity_id and report.intake_conversation_id):
            return
        card = await self._intake_card(report)
        await self.sender.update_card(report.intake_conversation_id, report.intake_activity_id, card)

    async def notify_submitter(self, effect: NotifySubmitter) -> None:
        if await self.sent.get(effect):
            return  # this notice was sent; a retry must not send it again
        report = await self.s.needs.load(effect.ref)
        if report is None:
            return
        lang = await self.s.people.language_of(report.submitter_aad_id) or self.s.default_language
        _, activity_id = await self.sender.send_to_user(
            report.submitter_aad_id, nr_dialog.decision_notice_card(report, lang)
        )
        await self.sent.record(effect, activity_id)

    async def ask_submitter(self, effect: AskSubmitter) -> None:
        if await self.sent.get(effect):
            return  # this question was delivered; a retry must not send it again
        report = await self.s.needs.load(effect.ref)
        exchange = report.exchange(effect.exchange_id) if report is not None else None
        if report is None or exchange is None:
            return
        lang = await self.s.people.language_of(report.submitter_aad_id) or self.s.default_language
        _, activity_id = await self.sender.send_to_user(
            report.submitter_aad_id, nr_dialog.question_card(report, exchange, lang)
        )
        await self.sent.record(effect, activity_id)


class ReminderCardSource:
    """Builds reminder and escalation cards for the reminder worker (one card per contract)."""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def reminder_card(self, reminder_ids: Sequence[int]) -> tuple[dict[str, Any], str] | None:
        found = await self.s.reminders.get_group(reminder_ids)
        if found is None:
            return None
        reminders, contract = found
        lang = self.s.default_language
        recipient = reminders[0].recipient_aad_id
        if recipient:
            lang = await self.s.people.language_of(recipient) or lang
        return reminders_dialog.reminder_card(lang, reminders, contract, self.s.today(), asking=True), lang

    async def escalation_card(self, reasons: dict[int, EscalationReason]) -> dict[str, Any] | None:
        found = await self.s.reminders.get_group(list(reasons))
        if found is None:
            return None
        reminders, contract = found
        # The reason each reminder escalates for, as the worker read it (a code, never a message).
        reminders = [
            dataclasses.replace(r, escalation_reason=reasons[r.id].encode()) if r.id in reasons else r
            for r in reminders
        ]
        if not contract.manager_name and (contract.manager_aad_id or contract.manager_email):
            contract = dataclasses.replace(contract, manager_name=await self._name_of(contract))
        return reminders_dialog.escalation_card(
            self.s.default_language,
            reminders,
            contract,
            self.s.today(),
            people_picker=self.s.people_picker,
            posting=True,
        )

    async def _name_of(self, contract: ContractView) -> str:
        """The avtaleforvalter's name from the directory when they never talked to the bot."""
        try:
            person = await self.s.directory.resolve(contract.manager_aad_id or contract.manager_email)
        except IntegrationError:
            return ""
        return person.name if person is not None else ""

    async def delivered(self, reminder_ids: Sequence[int]) -> None:
        return None
