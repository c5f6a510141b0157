"""Reminder routes: the avtaleforvalter's answers on a reminder card, and Innkjøpsseksjonen's
follow-up on an escalation card."""

from __future__ import annotations

from typing import Any

from bot.router import Router
from dialogs import reminders
from dialogs.base import Reply
from dialogs.services import Services
from procurement.access import Actor
from procurement.reminders.service import ANSWERS


def register(router: Router) -> None:
    for answer in ANSWERS:

        @router.verb(f"reminder.{answer}")
        async def answer_verb(s: Services, actor: Actor, data: dict[str, Any], _a: str = answer) -> Reply:
            return await reminders.answer(s, actor, data, _a)

    router.verbs_to(
        {
            "reminder.assign_manager": reminders.assign_manager,
            "reminder.escalation_handled": reminders.escalation_handled,
            "reminder.open_contract": reminders.open_contract,
            "reminder.escalation_view": reminders.escalation_view,
        }
    )
