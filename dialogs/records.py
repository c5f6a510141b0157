"""Archiving by hand ("arkiver" in a competition room): the picker of the room's documents and
the receipt with each document's archive reference or the reason it was not archived."""

from __future__ import annotations

from typing import Any

from cards.render import message_card, render_card
from cards.strings import text
from procurement.access import Actor
from procurement.records.archive_service import PICKER_LIMIT, Archive, ReceiptLine, RequestView, parse_time
from procurement.shared.dates import format_datetime

from .base import Reply, as_text
from .services import Services

STATE_COLOR = {"pending": "Default", "archived": "Good", "failed": "Attention"}


def _archive(s: Services) -> Archive:
    if s.archive is None:
        raise RuntimeError("the archive service is not wired (dialogs.services.Services.archive)")
    return s.archive


def _size(lang: str, size: int) -> str:
    if size >= 1024 * 1024:
        return text(lang, "ar_size_mb", n=f"{size / (1024 * 1024):.1f}".replace(".", "," if lang == "nb" else "."))
    return text(lang, "ar_size_kb", n=max(1, round(size / 1024)))


def _modified(raw: str) -> str:
    at = parse_time(raw)
    return format_datetime(at) if at is not None else "–"


def picker_card(view: RequestView, *, error_key: str | None = None, selected: str = "") -> dict[str, Any]:
    """The room's documents to choose from (or why there are none)."""
    lang = view.lang
    choices = []
    for f in view.offered:
        key = "ar_choice" if f.folder else "ar_choice_root"
        title = text(lang, key, folder=f.folder, name=f.name, size=_size(lang, f.size), modified=_modified(f.modified))
        choices.append({"title": title, "value": f.index})
    intro = text(lang, "ar_picker_intro", ref=view.case_ref)
    if view.problem:
        intro = text(lang, f"ar_problem_{view.problem}", ref=view.case_ref)
    return render_card(
        "records_picker",
        lang,
        title=text(lang, "ar_picker_title", ref=view.case_ref),
        intro=intro,
        choices=choices,
        selected=selected,
        error=text(lang, error_key) if error_key else None,
        more=text(lang, "ar_picker_more", shown=PICKER_LIMIT) if len(choices) >= PICKER_LIMIT else None,
        request_id=view.id,
    )


def _reason(lang: str, line: ReceiptLine) -> str:
    code = line.reason or "refused"
    try:
        return text(lang, f"ar_reason_{code}", detail=line.detail or "")
    except KeyError:
        return text(lang, "ar_reason_refused")


def receipt_card(view: RequestView) -> dict[str, Any]:
    """Each chosen document: archived (with its journal post key and a link), waiting, or why not."""
    lang = view.lang
    lines = []
    for line in view.lines:
        if line.status == "archived":
            state = text(lang, "ar_state_archived", ref=view.case_ref)
        elif line.status == "failed":
            state = text(lang, "ar_state_failed", reason=_reason(lang, line))
        else:
            state = text(lang, "ar_state_pending")
        lines.append(
            {
                "name": line.name,
                "state": state,
                "color": STATE_COLOR.get(line.status, "Default"),
                "reference": text(lang, "ar_reference", post=line.journal_key) if line.status == "archived" else None,
                # Teams opens web addresses only (local mode's are file: urls, shown as the key).
                "url": line.url if line.status == "archived" and line.url.startswith("https://") else None,
            }
        )
    counts = {s: sum(1 for line in view.lines if line.status == s) for s in ("archived", "pending", "failed")}
    total = len(view.lines)
    if view.done:
        summary = text(lang, "ar_receipt_done", archived=counts["archived"], total=total, ref=view.case_ref)
    else:
        summary = text(
            lang,
            "ar_receipt_summary",
            archived=counts["archived"],
            total=total,
            pending=counts["pending"],
            failed=counts["failed"],
        )
    return render_card(
        "records_receipt",
        lang,
        title=text(lang, "ar_receipt_title", ref=view.case_ref),
        summary=summary,
        lines=lines,
        done=view.done,
        request_id=view.id,
    )


def card_for(view: RequestView) -> dict[str, Any]:
    return receipt_card(view) if view.status == "submitted" else picker_card(view)


async def start(s: Services, actor: Actor, ref: str | None) -> Reply:
    """`arkiver [K-…]`: the picker comes from the outbox (it lists the room through Graph)."""
    if s.archive is None:
        return Reply(card=message_card(actor.lang, "ar_off_title", text(actor.lang, "ar_off_body")))
    outcome = await _archive(s).start(actor, ref)
    if outcome.request is None:
        return Reply(card=message_card(actor.lang, "ar_which_title", text(actor.lang, "ar_which_body")))
    body = text(actor.lang, "ar_start_body", ref=outcome.case_ref)
    return Reply(card=message_card(actor.lang, "ar_start_title", body, ref=outcome.case_ref))


def _chosen(data: dict[str, Any]) -> tuple[list[str], str]:
    raw = data.get("files")
    if isinstance(raw, list):
        values = [as_text(v, 20) for v in raw[:500]]
    else:
        values = as_text(raw, 5000).split(",")
    values = [v.strip() for v in values if v.strip()]
    return values, ",".join(values)


async def submit(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    chosen, selected = _chosen(data)
    outcome = await _archive(s).submit(actor, data.get("request"), chosen)
    if outcome.error:
        return Reply(card=picker_card(outcome.request, error_key=outcome.error, selected=selected))
    return Reply(card=receipt_card(outcome.request))


async def status(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
    return Reply(card=card_for(await _archive(s).status(actor, data.get("request"))))
