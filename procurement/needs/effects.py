"""Side effects of needs-report actions, performed by the outbox after commit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from procurement.store.effects import Effect


@dataclass(frozen=True)
class PostIntake(Effect):
    """Post the report's card in Innkjøpsseksjonen's intake channel (once)."""

    kind: ClassVar[str] = "needs_report.post_intake"
    ref: str


@dataclass(frozen=True)
class RefreshIntake(Effect):
    """Redraw the intake card for everyone after a change (`version` tells changes apart)."""

    kind: ClassVar[str] = "needs_report.refresh_intake"
    ref: str
    version: str


@dataclass(frozen=True)
class NotifySubmitter(Effect):
    """Tell the submitter about a decision (approved, rejected) in her personal chat."""

    kind: ClassVar[str] = "needs_report.notify_submitter"
    ref: str
    status: str
    version: str


@dataclass(frozen=True)
class AskSubmitter(Effect):
    """Send Innkjøpsseksjonen's question to the submitter's personal chat, with a card to
    answer it (once per question: the exchange id is the key)."""

    kind: ClassVar[str] = "needs_report.ask_submitter"
    ref: str
    exchange_id: int
