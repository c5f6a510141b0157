"""Side effects of deviation-report actions, performed by the outbox after commit.

Declared here for the session that wires the workflow; no handler is registered yet.
`version` tells two changes of one report apart (the idempotency key holds every field).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from procurement.store.effects import Effect


@dataclass(frozen=True)
class SendReceipt(Effect):
    """The reporter's receipt card: reference, what happens next, who follows it up."""

    kind: ClassVar[str] = "deviation.send_receipt"
    ref: str


@dataclass(frozen=True)
class RouteToManager(Effect):
    """The actionable card to the contract's avtaleforvalter — or to Innkjøpsseksjonen's
    follow-up channel when there is none or the supplier was typed."""

    kind: ClassVar[str] = "deviation.route"
    ref: str


@dataclass(frozen=True)
class AlertCritical(Effect):
    """A critical report: alert Innkjøpsseksjonen's channel at once (besides the routing)."""

    kind: ClassVar[str] = "deviation.alert_critical"
    ref: str


@dataclass(frozen=True)
class RefreshCards(Effect):
    """Redraw the report's cards in place for those who see them after a change."""

    kind: ClassVar[str] = "deviation.refresh_cards"
    ref: str
    version: str


@dataclass(frozen=True)
class NotifyReporter(Effect):
    """Tell the reporter of a status change in plain words (`record.reporter_message`)."""

    kind: ClassVar[str] = "deviation.notify_reporter"
    ref: str
    status: str
    version: str


@dataclass(frozen=True)
class MakeSupplierNotice(Effect):
    """Build the formal notice PDF (never naming the reporter) and give it to the avtaleforvalter."""

    kind: ClassVar[str] = "deviation.supplier_notice"
    ref: str
    version: str


@dataclass(frozen=True)
class QueueForArchive(Effect):
    """A closed report goes to the archive, exempt from public access (the archive issue sets the code)."""

    kind: ClassVar[str] = "deviation.archive"
    ref: str


EFFECTS: tuple[type[Effect], ...] = (
    SendReceipt,
    RouteToManager,
    AlertCritical,
    RefreshCards,
    NotifyReporter,
    MakeSupplierNotice,
    QueueForArchive,
)
