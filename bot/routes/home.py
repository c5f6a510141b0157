"""Welcome, help, language, and the honest "coming soon" answers."""

from __future__ import annotations

import re
from typing import Any

from bot.router import Router
from dialogs import home
from dialogs.base import Reply
from dialogs.services import Services
from procurement.access import Actor


def register(router: Router) -> None:
    @router.verb("home.help")
    async def help_verb(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
        return home.help_reply(actor)

    for verb in home.COMING:

        @router.verb(verb)
        async def coming_verb(s: Services, actor: Actor, data: dict[str, Any], _v: str = verb) -> Reply:
            return home.coming_reply(actor, _v)

    @router.text("hjelp", "help", "meny", "menu", "hei", "hallo", "hi", "hello", "start")
    async def help_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        return home.help_reply(actor)

    @router.text(r"(?:språk|sprak|language)\s+(?P<lang>engelsk|english|en|norsk|norwegian|bokmål|bokmal|nb|no)")
    async def language_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        lang = "en" if match.group("lang").lower() in ("engelsk", "english", "en") else "nb"
        await s.people.set_language(actor.aad_id, lang)
        return home.language_changed_reply(lang)

    @router.otherwise
    async def unknown_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        return home.help_reply(actor)
