"""The domain services a dialog may call, passed in by the composition root (app.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from bot.conversations import People
from procurement.competitions.service import Competitions
from procurement.contracts.service import Contracts
from procurement.delivery.service import Delivery
from procurement.deviations.ports import AttachmentDownloader
from procurement.deviations.service import Deviations
from procurement.needs.service import NeedsReports
from procurement.ports import Directory
from procurement.records.archive_service import Archive
from procurement.reminders.service import Reminders
from procurement.shared.calendar import OSLO
from procurement.store.database import Store


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    store: Store
    people: People
    needs: NeedsReports
    contracts: Contracts
    reminders: Reminders
    directory: Directory
    default_language: str = "nb"
    # Teams' people picker needs a tenant; local mode types names instead.
    people_picker: bool = False
    # Innkjøpere by configured id: viewers whose intake cards Teams refreshes automatically.
    procurement_user_ids: tuple[str, ...] = ()
    clock: Callable[[], datetime] = field(default=_now)
    # The archive (issue 12): "arkiver" in a competition room; None when no archive is configured.
    archive: Archive | None = None
    # Delivery status (issue 12): the outbox for innkjøpere; None builds one on the store.
    delivery: Delivery | None = None

    # Competition rooms (issue 10); None builds the service on the store (`competitions`).
    competition_rooms: Competitions | None = None

    # Deviation reports (issue 11); None builds the service on the store (`deviations`).
    deviation_reports: Deviations | None = None
    # Fetches the photos and files sent in a chat (integrations/attachments.py); None: files
    # cannot be fetched, and the user is told so for each one.
    attachment_downloader: AttachmentDownloader | None = None

    @property
    def deviations(self) -> Deviations:
        if self.deviation_reports is None:
            self.deviation_reports = Deviations(self.store, self.clock)
        return self.deviation_reports

    @property
    def competitions(self) -> Competitions:
        if self.competition_rooms is None:
            self.competition_rooms = Competitions(self.store)
        return self.competition_rooms

    def today(self) -> date:
        """Today in Norway: dates on forms and deadlines are Norwegian calendar dates."""
        return self.clock().astimezone(OSLO).date()
