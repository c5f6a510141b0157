"""Outbox handlers of the deviation workflow (`procurement/deviations/effects.py`).

Every post checks first whether it was made (the card table for the routed cards, the
outbox row's message id for notices: `SentMessages`) and records it right after, so a retry
never posts twice except when the process dies between Teams accepting a post and the record.
Routing: each avtaleforvalter of the contract in her personal chat; Innkjøpsseksjonen's
follow-up channel when there is none, when the supplier was typed, or when no avtaleforvalter
can be reached. Files go to the attachment store under the report's reference. The supplier CSV
goes under `DATA_DIR/exports/` in local mode and as a Teams file (consent card, upload, file card:
`bot/deviation_files.py`) in the tenant.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx

from cards.strings import text
from dialogs import deviation_report as dialog
from dialogs.services import Services
from procurement.access import SYSTEM
from procurement.deviations.effects import (
    AlertCritical,
    AnswerSupplierExport,
    EscalateRemedyDeadline,
    MakeSupplierNotice,
    NotifyReporter,
    RefreshCards,
    RemindRemedyDeadline,
    RouteToManager,
    SendReceipt,
    SendSupplierExport,
    StoreAttachments,
)
from procurement.deviations.notice import notice_file_name, notice_pdf
from procurement.deviations.ports import AttachmentStore
from procurement.deviations.record import DeviationReport
from procurement.deviations.summary import export_csv, export_file_name
from procurement.errors import PermanentError, TransientError, Unreachable
from procurement.store.effects import Effect
from procurement.store.outbox import Handlers, SentMessages
from procurement.store.tables import utcnow

from .deviation_files import (
    PendingExport,
    PendingExports,
    consent_attachment,
    export_id,
    file_info_attachment,
    upload,
    upload_allowed,
)
from .proactive import ProactiveSender

log = logging.getLogger(__name__)


class DeviationEffects:
    def __init__(
        self,
        services: Services,
        sender: ProactiveSender,
        *,
        follow_up_channel_id: str,
        attachment_store: AttachmentStore,
        export_dir: Path,
        teams_files: bool = False,
        allow_http_upload: bool = False,
    ) -> None:
        self.s = services
        self.sender = sender
        self.channel = follow_up_channel_id
        self.files = attachment_store
        self.export_dir = export_dir
        # The tenant sends the CSV as a Teams file; local mode (no OneDrive) writes it to disk.
        self.teams_files = teams_files
        self.allow_http_upload = allow_http_upload
        self.pending = PendingExports(export_dir / "pending")
        self.sent = SentMessages(services.store)

    def handlers(self) -> Handlers:
        return {
            SendReceipt: self.send_receipt,
            RouteToManager: self.route,
            AlertCritical: self.alert_critical,
            RefreshCards: self.refresh_cards,
            NotifyReporter: self.notify_reporter,
            MakeSupplierNotice: self.supplier_notice,
            StoreAttachments: self.store_attachments,
            RemindRemedyDeadline: self.remind_deadline,
            EscalateRemedyDeadline: self.escalate_deadline,
            SendSupplierExport: self.send_export,
            AnswerSupplierExport: self.answer_export,
        }

    # -- helpers --------------------------------------------------------------------------

    @property
    def lang(self) -> str:
        return self.s.default_language

    async def _report(self, ref: str) -> DeviationReport | None:
        report = await self.s.deviations.load(ref)
        if report is None:
            log.warning("deviation %s is gone: effect skipped", ref)
        return report

    async def _report_card(self, report: DeviationReport) -> dict[str, Any]:
        ids = await self.s.people.teams_user_ids(tuple(report.manager_aad_ids) + self.s.procurement_user_ids)
        files = await self.s.deviations.stored_files(report.ref)
        return dialog.report_card(report, self.lang, refresh_user_ids=ids, stored_files=files)

    async def _receipt(self, report: DeviationReport, lang: str) -> dict[str, Any]:
        ids = await self.s.people.teams_user_ids((report.reporter_aad_id,))
        return dialog.receipt_card(report, lang, refresh_user_ids=ids)

    async def _to_channel(self, card: dict[str, Any], what: str) -> str:
        if not self.channel:
            log.error("FOLLOWUP_CHANNEL_ID is not set: %s waits for it", what)
            raise TransientError("no follow-up channel configured", retry_after=600)
        try:
            return await self.sender.send_card(self.channel, card, channel=True)
        except (Unreachable, PermanentError) as err:
            # Innkjøpsseksjonen's own channel must get it: keep trying, loudly.
            log.error("follow-up channel refused %s (%s): %s", what, err.why, err.reason)
            raise TransientError(f"follow-up channel refused the post: {err.why}", retry_after=300) from err

    async def _once(self, effect: Effect, send: Any) -> None:
        """Post once per effect: skip when its message id is recorded, record it right after."""
        if await self.sent.get(effect):
            return
        activity_id = await send()
        await self.sent.record(effect, str(activity_id or ""))

    async def _managers_or_channel(self, report: DeviationReport, card: dict[str, Any], what: str) -> str:
        """To each avtaleforvalter; to the channel when there is none or none can be reached."""
        delivered = ""
        for manager in report.manager_aad_ids:
            try:
                _, delivered = await self.sender.send_to_user(manager, card)
            except Unreachable as gone:
                log.warning("%s: avtaleforvalter unreachable (%s)", what, gone.why)
        if delivered:
            return delivered
        return await self._to_channel(card, what)

    # -- handlers -------------------------------------------------------------------------

    async def send_receipt(self, effect: SendReceipt) -> None:
        report = await self._report(effect.ref)
        if report is None:
            return
        lang = await self.s.people.language_of(report.reporter_aad_id) or self.lang
        card = await self._receipt(report, lang)

        async def send() -> str:
            conversation, activity = await self.sender.send_to_user(report.reporter_aad_id, card)
            await self.s.deviations.record_card(report.ref, "reporter", conversation, activity)
            return activity

        await self._once(effect, send)

    async def route(self, effect: RouteToManager) -> None:
        report = await self._report(effect.ref)
        if report is None:
            return
        done = {(c.audience, c.conversation_id) for c in await self.s.deviations.cards(report.ref)}
        card = await self._report_card(report)
        reached = any(audience in ("manager", "channel") for audience, _ in done)
        for manager in report.manager_aad_ids:
            try:
                conversation = await self.sender.personal_conversation(manager)
                if ("manager", conversation) in done:
                    reached = True
                    continue
                conversation, activity = await self.sender.send_to_user(manager, card)
            except Unreachable as gone:
                log.warning(
                    "deviation %s: avtaleforvalter unreachable (%s), routed to the channel", report.ref, gone.why
                )
                continue
            await self.s.deviations.record_card(report.ref, "manager", conversation, activity)
            reached = True
        if not reached:
            activity = await self._to_channel(card, f"deviation {report.ref}")
            await self.s.deviations.record_card(report.ref, "channel", self.channel, activity)

    async def alert_critical(self, effect: AlertCritical) -> None:
        report = await self._report(effect.ref)
        if report is None:
            return
        card = dialog.alert_card(report, self.lang)
        await self._once(effect, lambda: self._to_channel(card, f"critical deviation {report.ref}"))

    async def refresh_cards(self, effect: RefreshCards) -> None:
        report = await self._report(effect.ref)
        if report is None:
            return
        shared = await self._report_card(report)
        for place in await self.s.deviations.cards(report.ref):
            if place.audience == "reporter":
                lang = await self.s.people.language_of(report.reporter_aad_id) or self.lang
                card = await self._receipt(report, lang)
            else:
                card = shared
            try:
                await self.sender.update_card(place.conversation_id, place.activity_id, card)
            except Unreachable as gone:  # that copy is out of reach; the others are updated
                log.warning("deviation %s: card in %s not updated (%s)", report.ref, place.audience, gone.why)

    async def notify_reporter(self, effect: NotifyReporter) -> None:
        report = await self._report(effect.ref)
        if report is None:
            return
        lang = await self.s.people.language_of(report.reporter_aad_id) or self.lang
        card = dialog.reporter_notice_card(report, lang, effect.status)

        async def send() -> str:
            _, activity = await self.sender.send_to_user(report.reporter_aad_id, card)
            return activity

        await self._once(effect, send)

    async def supplier_notice(self, effect: MakeSupplierNotice) -> None:
        report = await self._report(effect.ref)
        if report is None or report.remedy_deadline is None:
            return
        made = next((h for h in reversed(report.history) if h.to_status == "in_progress"), None)
        sender = made.actor_name if made is not None and made.actor_name else "Innkjøpsseksjonen"
        sent_at = made.at if made is not None else utcnow()
        # Deterministic for the same report: a retry stores the same bytes under the same name.
        content = await asyncio.to_thread(notice_pdf, report, sent_at=sent_at, sender=sender)
        location = await self.files.store(report.ref, notice_file_name(report.ref), content, "application/pdf")
        await self.s.deviations.notice_made(report.ref, SYSTEM)
        card = dialog.notice_ready_card(report, self.lang, location)
        await self._once(effect, lambda: self._managers_or_channel(report, card, f"notice {report.ref}"))

    async def store_attachments(self, effect: StoreAttachments) -> None:
        for pending in await self.s.deviations.pending_files(effect.ref):
            location = await self.files.store(effect.ref, pending.stored_name, pending.content, pending.content_type)
            await self.s.deviations.file_stored(pending.id, location)

    def _deadline_current(self, report: DeviationReport, deadline: str) -> bool:
        return (
            report.status == "in_progress"
            and report.remedy_deadline is not None
            and report.remedy_deadline.isoformat() == deadline
        )

    async def remind_deadline(self, effect: RemindRemedyDeadline) -> None:
        report = await self._report(effect.ref)
        if report is None or not self._deadline_current(report, effect.deadline):
            return  # moved on, or the deadline was moved (a new reminder is queued for that one)
        card = dialog.remedy_card(report, self.lang, escalation=False)
        await self._once(effect, lambda: self._managers_or_channel(report, card, f"remedy deadline {report.ref}"))

    async def escalate_deadline(self, effect: EscalateRemedyDeadline) -> None:
        report = await self._report(effect.ref)
        if report is None or not self._deadline_current(report, effect.deadline):
            return
        card = dialog.remedy_card(report, self.lang, escalation=True)
        await self._once(effect, lambda: self._to_channel(card, f"remedy escalation {report.ref}"))

    async def send_export(self, effect: SendSupplierExport) -> None:
        reports = await self.s.deviations.supplier_reports(effect.supplier)
        lang = effect.lang if effect.lang in ("nb", "en") else self.lang
        content = export_csv(reports, lambda key: text(lang, key))
        name = export_file_name(effect.supplier, utcnow())
        if self.teams_files:
            await self._offer_export(effect, lang, name, content, len(reports))
            return
        path = self.export_dir / name
        await asyncio.to_thread(_write, path, content)
        card = dialog.export_card(lang, effect.supplier, len(reports), str(path))

        async def send() -> str:
            _, activity = await self.sender.send_to_user(effect.requester_aad_id, card)
            return activity

        await self._once(effect, send)

    async def _offer_export(self, effect: SendSupplierExport, lang: str, name: str, content: bytes, count: int) -> None:
        """The consent card; the bytes wait on the server for the answer."""
        if await self.sent.get(effect):
            return
        export = export_id(effect.requester_aad_id, effect.supplier, effect.requested_at)
        pending = PendingExport(effect.requester_aad_id, name, lang, content)
        await asyncio.to_thread(self.pending.put, export, pending)
        description = text(lang, "dv_export_consent", supplier=effect.supplier, count=count)
        attachment = consent_attachment(name, description, len(content), export)

        async def send() -> str:
            _, activity = await self.sender.send_attachment_to_user(effect.requester_aad_id, attachment)
            return activity

        await self._once(effect, send)

    async def answer_export(self, effect: AnswerSupplierExport) -> None:
        if await self.sent.get(effect):
            return
        pending = await asyncio.to_thread(self.pending.get, effect.export_id, effect.invoker_aad_id)
        if pending is None:  # not this user's, answered already, or never made: nothing to give
            log.info("file consent answer for unknown export %s ignored", effect.export_id[:32])
            return
        if effect.accepted:
            if not upload_allowed(effect.upload_url, allow_http=self.allow_http_upload):
                log.warning("file consent for export %s had no usable upload URL", effect.export_id)
                return
            async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)) as http:
                await upload(http, effect.upload_url, pending.content)
            attachment = file_info_attachment(
                effect.name or pending.name, effect.content_url, effect.unique_id, effect.file_type
            )

            async def send() -> str:
                _, activity = await self.sender.send_attachment_to_user(pending.owner_aad_id, attachment)
                return activity

        else:
            card = dialog.export_declined_card(pending.lang, pending.name)

            async def send() -> str:
                _, activity = await self.sender.send_to_user(pending.owner_aad_id, card)
                return activity

        await self._once(effect, send)
        await asyncio.to_thread(self.pending.drop, effect.export_id)


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(content)
    tmp.replace(path)
