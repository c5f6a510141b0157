"""Competition-room routes: the room's status (`rom K-…`), its retry, the evaluation and its summary."""

from __future__ import annotations

import re

from bot.router import Router
from dialogs import competition_room
from dialogs.base import Reply
from dialogs.services import Services
from procurement.access import Actor

_REF = r"(?P<ref>K-\d{4}-\d{4,})"


def register(router: Router) -> None:
    @router.text(rf"(?:rom|samhandlingsrom|room)\s+{_REF}")
    async def room_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        return await competition_room.show_status(s, actor, {"ref": match.group("ref")})

    @router.text(rf"(?:evaluering|evaluation)\s+{_REF}")
    async def summary_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        return await competition_room.show_summary(s, actor, {"ref": match.group("ref")})

    @router.text(rf"(?:evaluer|evaluate)\s+{_REF}")
    async def evaluation_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        return await competition_room.open_evaluation(s, actor, {"ref": match.group("ref")})

    router.verbs_to(
        {
            "competition.room_status": competition_room.show_status,
            "competition.room_retry": competition_room.retry,
            "competition.evaluation_open": competition_room.open_evaluation,
            "competition.evaluate": competition_room.evaluate,
            "competition.evaluation_summary": competition_room.show_summary,
            "competition.evaluation_summarise": competition_room.summarise_now,
        }
    )
