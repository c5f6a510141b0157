"""A submitted needs report as the domain sees it, and its status machine.

submitted → approved | rejected | info_requested | withdrawn; info_requested → approved |
rejected | withdrawn. Approval creates a competition (K-…) in the same unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

OPEN_STATUSES = ("submitted", "info_requested")
DECISIONS = {"approve": "approved", "reject": "rejected", "request_info": "info_requested"}


def can_decide(status: str, decision: str) -> bool:
    """A decision applies to an open report; asking again for information is a no-op."""
    target = DECISIONS[decision]
    return status in OPEN_STATUSES and not (target == "info_requested" and status == target)


def can_withdraw(status: str) -> bool:
    return status in OPEN_STATUSES


@dataclass(frozen=True)
class NeedsReport:
    ref: str
    status: str
    submitter_aad_id: str
    submitter_name: str
    title: str
    service_area: str
    category: str
    estimated_value: int
    data: dict[str, Any]
    assessment: dict[str, Any]
    created_at: datetime
    decided_by_name: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None
    competition_ref: str | None = None
    intake_conversation_id: str | None = None
    intake_activity_id: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES
