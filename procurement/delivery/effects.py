"""The delivery workflow's one effect: the alert about a dead letter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from procurement.store.effects import Effect


@dataclass(frozen=True)
class AlertDeadLetter(Effect):
    """Tell Innkjøpsseksjonen's follow-up channel that an outbox row is dead (once per row:
    its id is the key). The outbox worker queues it; if it dies itself, nobody is alerted
    about it (it shows in "status utsending")."""

    kind: ClassVar[str] = "outbox.alert_dead_letter"
    outbox_id: int
