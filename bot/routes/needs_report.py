"""Needs-report routes: the form, submit, drafts, listing, and the intake card's decisions."""

from __future__ import annotations

import re
from typing import Any

from bot.router import Router
from dialogs import needs_report
from dialogs.base import Reply
from dialogs.services import Services
from procurement.access import Actor


def register(router: Router) -> None:
    @router.text("behovsmelding", "ny behovsmelding", "needs report", "new needs report", "meld behov")
    async def needs_report_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        return await needs_report.open_form(s, actor, {})

    @router.text("mine behovsmeldinger", "my needs reports")
    async def my_needs_reports_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        return await needs_report.mine(s, actor, {})

    @router.verb("needs_report.open")
    async def open_(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
        return await needs_report.open_form(s, actor, data)

    @router.verb("needs_report.submit")
    async def submit(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
        return await needs_report.submit(s, actor, data)

    @router.verb("needs_report.save_draft")
    async def save_draft(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
        return await needs_report.save_draft(s, actor, data)

    @router.verb("needs_report.mine")
    async def mine(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
        return await needs_report.mine(s, actor, data)

    @router.verb("needs_report.withdraw")
    async def withdraw(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
        return await needs_report.withdraw(s, actor, data)

    @router.verb("needs_report.refresh")
    async def refresh(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
        return await needs_report.refresh(s, actor, data)

    @router.verb("needs_report.approve")
    async def approve(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
        return await needs_report.decide(s, actor, data, "approve")

    @router.verb("needs_report.reject")
    async def reject(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
        return await needs_report.decide(s, actor, data, "reject")

    @router.verb("needs_report.request_info")
    async def request_info(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
        return await needs_report.decide(s, actor, data, "request_info")
