"""Delivery-status routes: "status utsending" (innkjøpere), its refresh, and a job's retry
(from the status card or the follow-up channel's alert)."""

from __future__ import annotations

import re

from bot.router import Router
from dialogs import delivery_status
from dialogs.base import Reply
from dialogs.services import Services
from procurement.access import Actor


def register(router: Router) -> None:
    @router.text(
        "status utsending",
        "utsendingsstatus",
        "status for utsending",
        "utsending status",
        "delivery status",
        "outbox status",
    )
    async def status_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        return await delivery_status.status(s, actor, {})

    router.verbs_to(
        {
            "outbox.status": delivery_status.status,
            "outbox.retry": delivery_status.retry,
        }
    )
