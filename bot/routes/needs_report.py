"""Needs-report routes: the form, submit, drafts, listing, the intake card's decisions, and the
submitter's answer to a question and her edit of the report."""

from __future__ import annotations

import re
from functools import partial

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

    router.verbs_to(
        {
            "needs_report.open": needs_report.open_form,
            "needs_report.submit": needs_report.submit,
            "needs_report.save_draft": needs_report.save_draft,
            "needs_report.mine": needs_report.mine,
            "needs_report.withdraw": needs_report.withdraw,
            "needs_report.refresh": needs_report.refresh,
            "needs_report.approve": partial(needs_report.decide, decision="approve"),
            "needs_report.reject": partial(needs_report.decide, decision="reject"),
            "needs_report.request_info": partial(needs_report.decide, decision="request_info"),
            # The submitter's side of a question: see it again, answer it, correct the report.
            "needs_report.question": needs_report.show_question,
            "needs_report.answer": needs_report.answer,
            "needs_report.edit": needs_report.edit,
            "needs_report.update": needs_report.update,
        }
    )
