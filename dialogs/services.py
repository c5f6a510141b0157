"""The domain services a dialog may call, passed in by the composition root (app.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from bot.conversations import People
from procurement.contracts.service import Contracts
from procurement.needs.service import NeedsReports
from procurement.ports import Directory
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

    def today(self) -> date:
        """Today in Norway: dates on forms and deadlines are Norwegian calendar dates."""
        return self.clock().astimezone(OSLO).date()
