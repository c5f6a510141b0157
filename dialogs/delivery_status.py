"""Delivery status ("status utsending", innkjøpere): the outbox's waiting, failing and dead jobs
in plain words, a retry per failed job, and the alert card about one dead letter that the
follow-up channel gets (`bot/delivery_effects.py`).

What a job is for is worded from its kind (`ds_kind_<kind>`, else its workflow `ds_area_<…>`),
why it failed from its reason code (`ds_why_<code>`, with the log's reference); never from an
error text.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from cards.render import render_card
from cards.strings import NB, text
from procurement.access import Actor, NotFound
from procurement.delivery.service import Delivery, Job, Overview, parse_job_id
from procurement.shared.dates import format_datetime

from .base import Reply
from .services import Services

_SAFE = re.compile(r"[^a-z0-9_]")


def _service(s: Services) -> Delivery:
    return s.delivery if s.delivery is not None else Delivery(s.store, s.clock)


# -- the words ------------------------------------------------------------------------------


def kind_text(lang: str, kind: str) -> str:
    """ "Avgjørelse på behovsmelding til innsenderen" for needs_report.notify_submitter; a kind
    this version does not know is named by its workflow, else as "Annen utsending"."""
    key = "ds_kind_" + _SAFE.sub("_", kind.lower().replace(".", "_"))
    if key in NB:
        return text(lang, key)
    area = "ds_area_" + _SAFE.sub("_", kind.split(".", 1)[0].lower())
    if area in NB:
        return text(lang, "ds_kind_in_area", area=text(lang, area))
    return text(lang, "ds_kind_other")


def reason_text(lang: str, job: Job) -> str:
    if not job.reason:
        return text(lang, "ds_why_none")
    key = f"ds_why_{job.reason}"
    return text(lang, key if key in NB else "ds_why_failed", ref=job.reason_ref or "–")


def age_text(lang: str, since: datetime, now: datetime) -> str:
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 60:
        return text(lang, "ds_age_now")
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        n = seconds // size
        if n >= 1:
            return text(lang, f"ds_age_{unit}") if n == 1 else text(lang, f"ds_age_{unit}s", n=n)
    return text(lang, "ds_age_now")  # pragma: no cover - the loop always returns


def state_text(lang: str, job: Job) -> str:
    return text(lang, "ds_state_running") if job.running else text(lang, f"ds_state_{job.state}")


def _record(lang: str, job: Job) -> str:
    return job.ref or text(lang, "ds_no_record")


def job_facts(lang: str, job: Job, now: datetime) -> list[dict[str, str]]:
    facts = [
        {"title": text(lang, "ds_fact_state"), "value": state_text(lang, job)},
        {"title": text(lang, "ds_fact_age"), "value": age_text(lang, job.created_at, now)},
        {"title": text(lang, "ds_fact_attempts"), "value": str(job.attempts)},
    ]
    if job.reason:
        facts.append({"title": text(lang, "ds_fact_reason"), "value": reason_text(lang, job)})
    if job.first_failed_at is not None and job.state in ("failing", "dead"):
        facts.append({"title": text(lang, "ds_fact_since"), "value": format_datetime(job.first_failed_at)})
    if job.state == "failing" and job.next_attempt_at > now:
        facts.append({"title": text(lang, "ds_fact_next"), "value": format_datetime(job.next_attempt_at)})
    return facts


# -- the status card ------------------------------------------------------------------------


def status_card(lang: str, overview: Overview, *, notice: str | None = None, good: bool = True) -> dict[str, Any]:
    jobs = []
    for job in overview.jobs:
        retry = (
            {"title": text(lang, "ds_retry"), "verb": "outbox.retry", "data": {"id": job.id}} if job.retryable else None
        )
        jobs.append(
            {
                "title": text(lang, "ds_job_title", what=kind_text(lang, job.kind), record=_record(lang, job)),
                "facts": job_facts(lang, job, overview.at),
                "retry": retry,
            }
        )
    if overview.total:
        summary = text(lang, "ds_summary", waiting=overview.waiting, failing=overview.failing, dead=overview.dead)
    else:
        summary = text(lang, "ds_all_clear")
    shown_line = (
        text(lang, "ds_shown", shown=len(overview.jobs), total=overview.total)
        if len(overview.jobs) < overview.total
        else None
    )
    return render_card(
        "delivery_status",
        lang,
        heading=text(lang, "ds_status_title"),
        summary=summary,
        shown_line=shown_line,
        notice=notice,
        notice_color="Good" if good else "Attention",
        jobs=jobs,
        actions=[{"title": text(lang, "ds_refresh"), "verb": "outbox.status", "data": {}}],
    )


async def status(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    overview = await _service(s).overview(actor)
    return Reply(card=status_card(actor.lang, overview))


# -- the alert card -------------------------------------------------------------------------


def dead_letter_card(
    lang: str, job: Job, now: datetime, *, status_line: str | None = None, notice: str | None = None
) -> dict[str, Any]:
    """The follow-up channel's card about one dead letter; the retry button while it is dead."""
    what = kind_text(lang, job.kind)
    facts = [
        {"title": text(lang, "ds_fact_what"), "value": what},
        {"title": text(lang, "ds_fact_record"), "value": _record(lang, job)},
        *job_facts(lang, job, now),
    ]
    actions: list[dict[str, Any]] = []
    if job.retryable:
        actions.append(
            {
                "title": text(lang, "ds_retry"),
                "verb": "outbox.retry",
                "data": {"id": job.id, "view": "alert"},
                "style": "positive",
            }
        )
    return render_card(
        "delivery_dead_letter",
        lang,
        heading=text(lang, "ds_alert_title", what=what),
        # "gave up after N attempts" only while it is dead (a retried job starts again from 0).
        intro=text(lang, "ds_alert_intro", attempts=job.attempts) if job.state == "dead" else None,
        facts=facts,
        status_line=status_line,
        notice=notice,
        actions=actions,
    )


# -- retry ----------------------------------------------------------------------------------


async def retry(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    """Retry one job. From the channel's alert (or anywhere but a personal chat, where the list
    is not shown) the answer is that job's card, redrawn for everyone; in a personal chat the
    refreshed status card with a line about the retry."""
    lang = actor.lang
    service = _service(s)
    job_id = parse_job_id(data.get("id"))
    in_list = actor.in_personal_chat and data.get("view") != "alert"
    try:
        outcome = await service.retry(actor, job_id)
    except NotFound:
        if in_list:
            return Reply(
                card=status_card(lang, await service.overview(actor), notice=text(lang, "ds_not_found"), good=False)
            )
        raise
    job = outcome.job
    what, record = kind_text(lang, job.kind), _record(lang, job)
    if outcome.changed:
        line = text(lang, "ds_retried", what=what, record=record)
    else:
        line = text(lang, "ds_not_retryable", what=what, record=record, state=state_text(lang, job).lower())
    if in_list:
        return Reply(card=status_card(lang, await service.overview(actor), notice=line, good=outcome.changed))
    now = s.clock()
    if outcome.changed:
        status_line = text(lang, "ds_alert_retried", who=actor.name or "", when=format_datetime(now))
        return Reply(card=dead_letter_card(lang, job, now, status_line=status_line), update_for_all=True)
    return Reply(card=dead_letter_card(lang, job, now, notice=line))
