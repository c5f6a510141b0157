"""Outbox handlers of the archive workflow: archive one document, post an "arkiver" picker, and
update that card in place into the receipt as the documents are archived.

The picker is posted by the outbox (listing the room goes through Graph: slow work after the
answer) so its message id is known: the submit's invoke answer replaces it with the receipt for
the presser, and `RefreshArchiveReceipt` edits the same message for everyone when a document is
done. The picker post checks its stored message id first and records it right after the post.
"""

from __future__ import annotations

import logging

from dialogs import records as records_dialog
from procurement.records.archive import ArchiveDocument, OfferRoomFiles, RefreshArchiveReceipt
from procurement.records.archive_service import Archive
from procurement.store.outbox import Handlers

from .proactive import ProactiveSender

log = logging.getLogger(__name__)


class ArchiveEffects:
    def __init__(self, archive: Archive, sender: ProactiveSender) -> None:
        self.archive = archive
        self.sender = sender

    def handlers(self) -> Handlers:
        return {
            ArchiveDocument: self.archive_document,
            OfferRoomFiles: self.offer_room_files,
            RefreshArchiveReceipt: self.refresh_receipt,
        }

    async def archive_document(self, effect: ArchiveDocument) -> None:
        await self.archive.perform(effect)

    async def offer_room_files(self, effect: OfferRoomFiles) -> None:
        view = await self.archive.offer(effect.request_id)
        if view is None or view.activity_id:
            return  # gone, or posted already (its message id is stored on the request)
        card = records_dialog.card_for(view)
        channel = view.conversation_id.startswith("19:")
        activity_id = await self.sender.send_card(view.conversation_id, card, channel=channel)
        await self.archive.set_message(view.id, activity_id)

    async def refresh_receipt(self, effect: RefreshArchiveReceipt) -> None:
        view = await self.archive.request(effect.request_id)
        if view is None or not view.activity_id or view.status != "submitted":
            return
        await self.sender.update_card(view.conversation_id, view.activity_id, records_dialog.receipt_card(view))
