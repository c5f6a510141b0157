"""Archive routes: "arkiver" / "archive" in a competition room (or with its K- reference), the
picker's submit and the receipt's refresh."""

from __future__ import annotations

import re

from bot.router import Router
from dialogs import records
from dialogs.base import Reply
from dialogs.services import Services
from procurement.access import Actor

# In a channel Teams puts the bot's mention before the text; it is not part of the command.
_MENTION = r"(?:<at>[^<]{0,200}</at>\s*)?"
_REF = r"(?:\s+(?P<ref>K-\d{4}-\d{4,6}))?"


def register(router: Router) -> None:
    @router.text(f"{_MENTION}arkiver{_REF}", f"{_MENTION}archive{_REF}")
    async def archive_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        return await records.start(s, actor, match.group("ref"))

    router.verbs_to({"archive.submit": records.submit, "archive.status": records.status})
