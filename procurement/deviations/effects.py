"""Side effects of deviation-report actions, performed by the outbox after commit.

Handled by `bot/deviation_effects.DeviationEffects`. `version` tells two changes of one
report apart (the idempotency key holds every field). A closed report reaches the archive
through the audit entry `deviation.closed` (the records workflow's audit hook), not an
effect of its own.
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
class StoreAttachments(Effect):
    """The report's photos and files into the attachment store (a SharePoint library in a
    tenant, DATA_DIR/attachments/<ref>/ locally), under its reference."""

    kind: ClassVar[str] = "deviation.store_attachments"
    ref: str


@dataclass(frozen=True)
class RemindRemedyDeadline(Effect):
    """The supplier's remedy deadline has passed (queued to run the day after it): remind the
    avtaleforvalter, or Innkjøpsseksjonen's channel when nobody can be reached. A moved
    deadline queues a new one; this one then finds another deadline and does nothing."""

    kind: ClassVar[str] = "deviation.remedy_reminder"
    ref: str
    deadline: str  # ISO date


@dataclass(frozen=True)
class EscalateRemedyDeadline(Effect):
    """A week after the remedy reminder and still under behandling with that deadline: tell
    Innkjøpsseksjonen's channel (as unanswered contract reminders escalate after 7 days)."""

    kind: ClassVar[str] = "deviation.remedy_escalation"
    ref: str
    deadline: str  # ISO date


@dataclass(frozen=True)
class SendSupplierExport(Effect):
    """The CSV of a supplier's deviations, as a file in the requester's personal chat."""

    kind: ClassVar[str] = "deviation.supplier_export"
    requester_aad_id: str
    supplier: str
    lang: str
    requested_at: str  # ISO datetime: one export per request


@dataclass(frozen=True)
class AnswerSupplierExport(Effect):
    """The requester's answer on the file consent card: upload the CSV and show it in the chat,
    or say that it was not sent. The bytes stay on the server under `export_id`; the handler
    gives them only to the requester (`invoker_aad_id` is the one who answered)."""

    kind: ClassVar[str] = "deviation.supplier_export_answer"
    export_id: str
    invoker_aad_id: str
    accepted: bool
    upload_url: str = ""
    content_url: str = ""
    name: str = ""
    unique_id: str = ""
    file_type: str = ""

    @property
    def idempotency_key(self) -> str:
        # One answer per export and user; the upload URL is long and not part of the identity.
        return f"{self.kind}:{self.export_id}:{self.invoker_aad_id}:{self.accepted}"


EFFECTS: tuple[type[Effect], ...] = (
    SendReceipt,
    RouteToManager,
    AlertCritical,
    RefreshCards,
    NotifyReporter,
    MakeSupplierNotice,
    StoreAttachments,
    RemindRemedyDeadline,
    EscalateRemedyDeadline,
    SendSupplierExport,
    AnswerSupplierExport,
)
