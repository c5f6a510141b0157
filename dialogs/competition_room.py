"""Competition rooms (samhandlingsrom): the status card, the retry, the welcome, the evaluation.

The approver's card (the intake card) carries the room's status as a section below the report
(`with_room_status`), updated in place as the steps complete; `rom K-…` shows the same status on
its own card to innkjøpere and the room's members (anyone else: not found).
"""

from __future__ import annotations

import json
import re
from typing import Any

from cards.render import MAX_CARD_BYTES, render_card
from cards.strings import text
from procurement.access import Actor, NotFound
from procurement.competitions.record import (
    EVALUATION_TEXT_LIMIT,
    NEED_DESCRIBED,
    STEPS,
    SUPPLIER_FEEDBACK,
    EvaluationSummary,
    RoomView,
    failure_code,
)
from procurement.shared.dates import format_datetime

from .base import Reply, as_text
from .services import Services

REF = re.compile(r"^K-\d{4}-\d{4,}$")
MARK = {"done": "✓", "failed": "✗", "pending": "…"}
MEMBER_WHY = ("unresolved", "unknown_user", "not_allowed", "failed")
EVALUATION_FIELDS = ("went_well", "to_change", "need_described", "supplier_feedback")


def _ref(data: dict[str, Any]) -> str:
    ref = as_text(data.get("ref"), 40).strip().upper()
    if not REF.match(ref):
        raise NotFound(ref)
    return ref


def _https(url: str) -> str | None:
    """Only web addresses become buttons (a local room is a folder on disk)."""
    return url if url.startswith("https://") else None


def _status_context(view: RoomView, lang: str, *, can_retry: bool) -> dict[str, Any]:
    if view.status == "ready":
        headline, color = text(lang, "cr_ready"), "Good"
    elif view.status == "failed":
        step = text(lang, f"cr_step_{view.failed_step}") if view.failed_step in STEPS else ""
        headline = text(lang, "cr_failed", step=step) + " " + text(lang, f"cr_why_{failure_code(view.failure)}")
        color = "Attention"
    else:
        headline, color = text(lang, "cr_creating"), "Accent"
    steps = [
        {"text": text(lang, f"cr_step_{step}") + " " + MARK.get(view.steps.get(step, "pending"), "…")} for step in STEPS
    ]
    problems = [
        text(lang, f"cr_member_why_{m.why if m.why in MEMBER_WHY else 'failed'}", name=m.name or m.key.lstrip("?"))
        for m in view.problems
    ]
    members = [m.name for m in view.members if m.in_room and m.name]
    lines = []
    if view.channel_name:
        kind = text(lang, "cr_kind_private" if view.membership_type == "private" else "cr_kind_standard")
        lines.append(text(lang, "cr_channel_line", name=view.channel_name, kind=kind))
    if members:
        lines.append(text(lang, "cr_members_line", names=", ".join(members)))
    if view.document_name:
        lines.append(text(lang, "cr_document_line", name=view.document_name))
    actions: list[dict[str, Any]] = []
    if view.status == "failed" and can_retry:
        actions.append(
            {
                "title": text(lang, "cr_retry"),
                "verb": "competition.room_retry",
                "data": {"ref": view.ref},
                "style": "positive",
            }
        )
    channel_url = _https(view.channel_url)
    if channel_url:
        actions.append({"title": text(lang, "cr_open_channel"), "url": channel_url})
    return {
        "heading": text(lang, "cr_heading", ref=view.ref),
        "headline": headline,
        "color": color,
        "steps": steps,
        "lines": lines,
        "problems_heading": text(lang, "cr_problems_heading") if problems else "",
        "problems": problems,
        "actions": actions,
        "ref": view.ref,
    }


def status_card(view: RoomView, lang: str, *, can_retry: bool, notice: str | None = None) -> dict[str, Any]:
    """`rom K-…`: the room's status on its own card."""
    context = _status_context(view, lang, can_retry=can_retry)
    refresh = {
        "title": text(lang, "cr_refresh"),
        "verb": "competition.room_status",
        "data": {"ref": view.ref},
        "style": None,
    }
    context["actions"] = [*context["actions"], refresh]
    return render_card(
        "competition_room_status",
        lang,
        section_only=False,
        title=view.title,
        needs_line=text(lang, "cr_needs_line", ref=view.needs_ref) if view.needs_ref else "",
        notice=notice,
        **context,
    )


def with_room_status(card: dict[str, Any], view: RoomView | None, lang: str) -> dict[str, Any]:
    """The approver's card with the room's status below it (as drawn by `competition_room_status`).
    The retry button is on it for innkjøpere: only they can see the intake channel's card."""
    if view is None:
        return card
    section = render_card(
        "competition_room_status",
        lang,
        section_only=True,
        title=view.title,
        needs_line="",
        notice=None,
        **_status_context(view, lang, can_retry=True),
    )
    out = dict(card)
    out["body"] = [*card.get("body", []), *section.get("body", [])]
    actions = [*card.get("actions", []), *section.get("actions", [])]
    if actions:
        out["actions"] = actions
    if len(json.dumps(out, ensure_ascii=False).encode()) > MAX_CARD_BYTES:
        return card  # never a card Teams refuses: the status is on `rom K-…` too
    return out


def welcome_card(view: RoomView, lang: str, *, owner_name: str, faggruppe: list[str], personal: bool) -> dict[str, Any]:
    """In the room's channel (or each member's personal chat, with a link to the channel)."""
    actions: list[dict[str, Any]] = []
    document_url = _https(view.document_url)
    if document_url:
        actions.append({"title": text(lang, "cr_open_strategy"), "url": document_url})
    channel_url = _https(view.channel_url)
    if personal and channel_url:
        actions.append({"title": text(lang, "cr_open_channel"), "url": channel_url})
    # Another workflow answers `deviation.open` (the deviation report, prefilled with the competition).
    actions.append(
        {"title": text(lang, "cr_report_deviation"), "verb": "deviation.open", "data": {"competition": view.ref}}
    )
    return render_card(
        "competition_welcome",
        lang,
        heading=text(lang, "cr_welcome_heading", ref=view.ref),
        intro=text(lang, "cr_welcome_intro", title=view.title),
        owner_line=text(lang, "cr_welcome_owner", name=owner_name) if owner_name else "",
        faggruppe_heading=text(lang, "cr_welcome_faggruppe"),
        faggruppe=faggruppe or [text(lang, "cr_welcome_faggruppe_none")],
        phases=[text(lang, f"cr_phase_{i}") for i in (1, 2, 3)],
        checklist=[text(lang, f"cr_check_{i}") for i in (1, 2, 3, 4, 5)],
        channel_line=text(lang, "cr_welcome_channel_line", channel=view.channel_name)
        if personal and view.channel_name
        else "",
        document_line=text(lang, "cr_welcome_document_line", name=view.document_name) if view.document_name else "",
        actions=actions,
    )


# -- the evaluation ---------------------------------------------------------------------------


def evaluation_card(
    view: RoomView,
    lang: str,
    values: dict[str, str] | None = None,
    errors: dict[str, dict[str, str]] | None = None,
    notice: str | None = None,
) -> dict[str, Any]:
    given = {k: v.get(lang) or v.get("nb", "") for k, v in (errors or {}).items()}
    field_errors = {k: given.get(k, "") for k in EVALUATION_FIELDS}
    values = values or {}
    return render_card(
        "competition_evaluation",
        lang,
        heading=text(lang, "cr_eval_heading", ref=view.ref),
        intro=text(lang, "cr_eval_intro", title=view.title),
        values={k: values.get(k, "") for k in EVALUATION_FIELDS},
        errors=field_errors,
        error_summary=text(lang, "cr_eval_errors") if given else "",
        notice=notice,
        need_choices=[{"value": v, "title": text(lang, f"cr_eval_need_{v}")} for v in NEED_DESCRIBED],
        feedback_choices=[{"value": v, "title": text(lang, f"cr_eval_feedback_{v}")} for v in SUPPLIER_FEEDBACK],
        limit=EVALUATION_TEXT_LIMIT,
        ref=view.ref,
    )


def summary_card(view: RoomView, summary: EvaluationSummary, lang: str, *, can_send: bool) -> dict[str, Any]:
    comments = {
        "went_well": [text(lang, "cr_sum_comment", name=n, text=t) for n, t in summary.went_well],
        "to_change": [text(lang, "cr_sum_comment", name=n, text=t) for n, t in summary.to_change],
    }
    sent = ""
    if view.evaluation_summarised_at is not None:
        sent = text(lang, "cr_sum_sent_at", when=format_datetime(view.evaluation_summarised_at))
    actions = []
    if can_send and view.evaluation_summarised_at is None and summary.count:
        actions.append(
            {"title": text(lang, "cr_sum_now"), "verb": "competition.evaluation_summarise", "data": {"ref": view.ref}}
        )
    return render_card(
        "competition_evaluation_summary",
        lang,
        heading=text(lang, "cr_sum_heading", ref=view.ref),
        title=view.title,
        counts=text(lang, "cr_sum_counts", count=summary.count, invited=summary.invited)
        if summary.count
        else text(lang, "cr_sum_none"),
        need_line=text(lang, "cr_sum_need", **summary.need_described),
        feedback_line=text(lang, "cr_sum_feedback", **summary.supplier_feedback),
        went_well_heading=text(lang, "cr_sum_went_well"),
        to_change_heading=text(lang, "cr_sum_to_change"),
        comments=comments,
        sent_line=sent,
        actions=actions,
    )


# -- verbs and commands -----------------------------------------------------------------------


async def show_status(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    """`rom K-…` and `competition.room_status` (its refresh button)."""
    view = await s.competitions.status(actor, _ref(data))
    return Reply(card=status_card(view, actor.lang, can_retry=actor.is_procurement))


async def retry(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    """`competition.room_retry`, from the approver's card or the status card. The presser sees the
    status card at once; the approver's card is redrawn for everyone by the outbox."""
    outcome = await s.competitions.retry(actor, _ref(data))
    notice = text(actor.lang, "cr_retry_started" if outcome.retried else "cr_retry_not_needed")
    return Reply(card=status_card(outcome.room, actor.lang, can_retry=actor.is_procurement, notice=notice))


async def open_evaluation(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    view, answers = await s.competitions.my_evaluation(actor, _ref(data))
    notice = text(actor.lang, "cr_eval_answered_before") if answers else None
    return Reply(card=evaluation_card(view, actor.lang, answers or {}, notice=notice))


async def evaluate(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    """`competition.evaluate`: validated on the server; on an error the same card with her values."""
    ref = _ref(data)
    outcome = await s.competitions.evaluate(actor, ref, data)
    lang = actor.lang
    if outcome.result.errors:
        return Reply(card=evaluation_card(outcome.room, lang, outcome.result.values, outcome.result.errors))
    notice = text(lang, "cr_eval_repeated") if outcome.repeated else text(lang, "cr_eval_thanks")
    return Reply(card=evaluation_card(outcome.room, lang, outcome.result.values, notice=notice))


async def show_summary(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    view, summary = await s.competitions.evaluation_summary(actor, _ref(data))
    return Reply(card=summary_card(view, summary, actor.lang, can_send=True))


async def summarise_now(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    ref = _ref(data)
    await s.competitions.summarise_now(actor, ref)
    view, summary = await s.competitions.evaluation_summary(actor, ref)
    return Reply(card=summary_card(view, summary, actor.lang, can_send=True))
