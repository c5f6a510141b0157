"""Thin routes: one decorator per verb or command; each resolves nothing itself and calls a dialog."""

from __future__ import annotations

import re
from typing import Any

from dialogs import home, needs_report
from dialogs.base import Actor, Reply
from dialogs.services import Services

from .router import router


@router.verb("home.help")
async def help_verb(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    return home.help_reply(actor)


for _verb in home.COMING:

    @router.verb(_verb)
    async def coming_verb(
        s: Services, actor: Actor, data: dict[str, Any], _v: str = _verb
    ) -> Reply:
        return home.coming_reply(actor, _v)


@router.text("hjelp", "help", "meny", "menu", "hei", "hallo", "hi", "hello", "start")
async def help_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
    return home.help_reply(actor)


@router.text(
    r"(?:språk|sprak|language)\s+(?P<lang>engelsk|english|en|norsk|norwegian|bokmål|bokmal|nb|no)"
)
async def language_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
    lang = "en" if match.group("lang").lower() in ("engelsk", "english", "en") else "nb"
    await s.people.set_language(actor.aad_id, lang)
    return home.language_changed_reply(lang)


@router.text("avvik", "meld avvik", "avviksmelding", "deviation", "report deviation")
async def deviation_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
    return home.coming_reply(actor, "deviation.open")


@router.otherwise
async def unknown_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
    return home.help_reply(actor)


# -- needs reports -------------------------------------------------------------------------


@router.text("behovsmelding", "ny behovsmelding", "needs report", "new needs report", "meld behov")
async def needs_report_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
    return await needs_report.open_form(s, actor, {})


@router.text("mine behovsmeldinger", "my needs reports")
async def my_needs_reports_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
    return await needs_report.mine(s, actor, {})


@router.verb("needs_report.open")
async def needs_report_open(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    return await needs_report.open_form(s, actor, data)


@router.verb("needs_report.submit")
async def needs_report_submit(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    return await needs_report.submit(s, actor, data)


@router.verb("needs_report.save_draft")
async def needs_report_save_draft(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    return await needs_report.save_draft(s, actor, data)


@router.verb("needs_report.mine")
async def needs_report_mine(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    return await needs_report.mine(s, actor, data)


@router.verb("needs_report.withdraw")
async def needs_report_withdraw(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    return await needs_report.withdraw(s, actor, data)


@router.verb("needs_report.refresh")
async def needs_report_refresh(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    return await needs_report.refresh(s, actor, data)


@router.verb("needs_report.approve")
async def needs_report_approve(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    return await needs_report.decide(s, actor, data, "approve")


@router.verb("needs_report.reject")
async def needs_report_reject(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    return await needs_report.decide(s, actor, data, "reject")


@router.verb("needs_report.request_info")
async def needs_report_request_info(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    return await needs_report.decide(s, actor, data, "request_info")

from . import routes_contracts  # noqa: E402,F401  (registers the contract routes)
