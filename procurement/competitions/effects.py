"""Side effects of competition-room actions, performed by the outbox after commit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from procurement.store.effects import Effect


@dataclass(frozen=True)
class ProvisionRoom(Effect):
    """The room job: do the next incomplete steps (channel → members → folders → strategy → tab →
    welcome), recording each right after it succeeds. `attempt` is the retry number: a retry is a
    new effect (a new idempotency key) and an older attempt's row finds nothing to do."""

    kind: ClassVar[str] = "competition.provision_room"
    ref: str
    attempt: int = 1


@dataclass(frozen=True)
class RefreshRoomStatus(Effect):
    """Redraw the approver's card with the room's state (`version` tells the changes apart)."""

    kind: ClassVar[str] = "competition.refresh_room_status"
    ref: str
    version: int


@dataclass(frozen=True)
class SendEvaluation(Effect):
    """The contract is signed: the evaluation card to every room member (once each)."""

    kind: ClassVar[str] = "competition.send_evaluation"
    ref: str


@dataclass(frozen=True)
class PostEvaluationSummary(Effect):
    """The evaluation summarised for Innkjøpsseksjonen, posted in its intake channel."""

    kind: ClassVar[str] = "competition.post_evaluation_summary"
    ref: str
