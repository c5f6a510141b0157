"""The competition-room cards: status (alone and as the approver's card's section), welcome,
evaluation and summary. Valid Adaptive Cards 1.5, no ISO dates, hostile text shown as text,
the right buttons for the state. Also the sample contexts tests/unit/test_cards.py renders."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from cards.render import render_card
from dialogs import competition_room as cr
from procurement.competitions.record import (
    STEPS,
    EvaluationEntry,
    RoomMemberView,
    RoomView,
    initial_steps,
    summarise,
    with_done,
    with_failed,
)
from tests.cardcheck import validate_card
from tests.connector_stub import card_texts

LANGS = ["nb", "en"]
HOSTILE = ['"}{', "{{ t }}", "**fet** [lenke](http://x)", "\u202e🚀", "${x}"]


def view(
    title: str = "Transport av hjelpemidler",
    *,
    status: str = "pending",
    failed: str | None = None,
    name: str = "Per Hansen",
    url: str = "https://teams.microsoft.com/l/channel/19%3Aabc",
) -> RoomView:
    steps = initial_steps()
    if status in ("ready", "failed"):
        for step in STEPS:
            steps = with_done(steps, step)
    if failed:
        steps = with_failed({**steps, failed: "pending", "welcome": "pending"}, failed)  # type: ignore[arg-type]
    return RoomView(
        ref="K-2026-0042",
        title=title,
        needs_ref="BM-2026-0007",
        status=status,  # type: ignore[arg-type]
        steps=steps,
        failed_step=failed,
        failure="permission_missing" if failed else None,
        membership_type="private",
        channel_name=f"K-2026-0042 {title}"[:50],
        channel_url=url,
        document_name="Konkurransestrategi K-2026-0042 (utkast).docx",
        document_url="https://contoso.sharepoint.com/Doc.aspx?sourcedoc=x",
        attempt=1,
        members=(
            RoomMemberView("ingrid", "ingrid", "Ingrid Haugen", "owner", "owner", "present"),
            RoomMemberView("per", "per", name, "faggruppe", "member", "added"),
            RoomMemberView(f"?{name}", None, name + " (skrevet)", "faggruppe", "member", "unresolved", "unresolved"),
        ),
        owner_aad_id="ingrid",
        evaluation_summarised_at=datetime(2026, 11, 30, 9, 0, tzinfo=UTC),
    )


# -- the samples tests/unit/test_cards.py renders (every template needs one) -----------------------


def _status(lang: str, s: str) -> list[dict[str, Any]]:
    base = {
        "heading": s,
        "title": s,
        "needs_line": s,
        "headline": s,
        "color": "Accent",
        "steps": [{"text": s}],
        "lines": [s],
        "problems_heading": s,
        "problems": [s],
        "notice": s,
        "ref": "K-2026-0042",
    }
    retry = {"title": s, "verb": "competition.room_retry", "data": {"ref": s}, "style": "positive"}
    link = {"title": s, "url": "https://teams.microsoft.com/l/channel/x"}
    return [
        {**base, "section_only": False, "actions": [retry, link]},
        {**base, "section_only": True, "actions": [], "notice": None, "problems": []},
        {**base, "section_only": True, "actions": [retry]},
    ]


def _welcome(lang: str, s: str) -> list[dict[str, Any]]:
    base = {
        "heading": s,
        "intro": s,
        "owner_line": s,
        "faggruppe_heading": s,
        "faggruppe": [s, s],
        "phases": [s],
        "checklist": [s],
        "channel_line": s,
        "document_line": s,
    }
    deviation = {"title": s, "verb": "deviation.open", "data": {"competition": s}}
    return [
        {**base, "actions": [{"title": s, "url": "https://contoso.sharepoint.com/x"}, deviation]},
        {**base, "owner_line": "", "channel_line": "", "document_line": "", "actions": [deviation]},
    ]


def _evaluation(lang: str, s: str) -> list[dict[str, Any]]:
    keys = ("went_well", "to_change", "need_described", "supplier_feedback")
    base = {
        "heading": s,
        "intro": s,
        "values": {k: s for k in keys},
        "need_choices": [{"value": "yes", "title": s}],
        "feedback_choices": [{"value": "no", "title": s}],
        "limit": 2000,
        "ref": "K-2026-0042",
    }
    return [
        {**base, "errors": {k: s for k in keys}, "error_summary": s, "notice": None},
        {**base, "errors": {k: "" for k in keys}, "error_summary": "", "notice": s},
    ]


def _summary(lang: str, s: str) -> list[dict[str, Any]]:
    base = {
        "heading": s,
        "title": s,
        "counts": s,
        "need_line": s,
        "feedback_line": s,
        "went_well_heading": s,
        "to_change_heading": s,
        "sent_line": s,
    }
    return [
        {**base, "comments": {"went_well": [s], "to_change": [s]}, "actions": []},
        {
            **base,
            "comments": {"went_well": [], "to_change": []},
            "sent_line": "",
            "actions": [{"title": s, "verb": "competition.evaluation_summarise", "data": {"ref": s}}],
        },
    ]


COMPETITION_SAMPLES = {
    "competition_room_status": _status,
    "competition_welcome": _welcome,
    "competition_evaluation": _evaluation,
    "competition_evaluation_summary": _summary,
}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", sorted(COMPETITION_SAMPLES))
@pytest.mark.parametrize("s", ["Skyss av elever – Buss AS, Ålesund", *HOSTILE])
def test_every_sample_renders_a_valid_card(name: str, lang: str, s: str) -> None:
    for context in COMPETITION_SAMPLES[name](lang, s):
        validate_card(render_card(name, lang, **context))


# -- the cards the dialogs draw ------------------------------------------------------------------------


def verbs(card: dict[str, Any]) -> list[str]:
    return [a.get("verb", a.get("type")) for a in card.get("actions", [])]


@pytest.mark.parametrize("lang", LANGS)
def test_status_card_by_state(lang: str) -> None:
    pending = cr.status_card(view(), lang, can_retry=True)
    validate_card(pending)
    text = "\n".join(card_texts(pending))
    assert ("Oppretter samhandlingsrom" if lang == "nb" else "Creating the collaboration room") in text
    assert "competition.room_retry" not in verbs(pending)
    assert pending["refresh"]["action"]["verb"] == "competition.room_status"

    failed = cr.status_card(view(status="failed", failed="tab"), lang, can_retry=True)
    validate_card(failed)
    assert "competition.room_retry" in verbs(failed)
    assert (" ✗" in "\n".join(card_texts(failed))) and "permission_missing" not in json.dumps(failed)
    member = cr.status_card(view(status="failed", failed="tab"), lang, can_retry=False)
    assert "competition.room_retry" not in verbs(member)

    ready = cr.status_card(view(status="ready"), lang, can_retry=True)
    assert "Action.OpenUrl" in verbs(ready)
    text = "\n".join(card_texts(ready))
    assert "Per Hansen (skrevet)" in text  # the unresolved name is listed, not dropped


def test_a_local_room_gets_no_link_button() -> None:
    card = cr.status_card(view(status="ready", url="file:///data/rooms/K-2026-0042"), "nb", can_retry=True)
    assert "Action.OpenUrl" not in verbs(card)


def test_the_section_joins_the_approvers_card_and_keeps_it_valid() -> None:
    intake = render_card("notice", "nb", title="Behovsmelding", body="Godkjent")
    card = cr.with_room_status(intake, view(status="failed", failed="folders"), "nb")
    validate_card(card)
    assert card["body"][:2] == intake["body"]
    assert "competition.room_retry" in verbs(card)
    assert cr.with_room_status(intake, None, "nb") is intake


@pytest.mark.parametrize("s", HOSTILE)
def test_hostile_names_are_shown_as_text(s: str) -> None:
    card = cr.status_card(view(title=s, name=s), "nb", can_retry=True)
    validate_card(card)
    welcome = cr.welcome_card(view(title=s, name=s), "nb", owner_name=s, faggruppe=[s], personal=True)
    validate_card(welcome)
    [deviation] = [a for a in welcome["actions"] if a.get("verb") == "deviation.open"]
    assert deviation["data"] == {"competition": "K-2026-0042", "verb": "deviation.open"}


def test_welcome_personal_variant_links_the_channel() -> None:
    personal = cr.welcome_card(view(status="ready"), "nb", owner_name="Ingrid", faggruppe=["Per"], personal=True)
    in_channel = cr.welcome_card(view(status="ready"), "nb", owner_name="Ingrid", faggruppe=["Per"], personal=False)
    titles = [a["title"] for a in personal["actions"]]
    assert titles == ["Åpne konkurransestrategien", "Åpne kanalen", "Meld avvik"]
    assert [a["title"] for a in in_channel["actions"]] == ["Åpne konkurransestrategien", "Meld avvik"]
    text = "\n".join(card_texts(personal))
    for phase in ("Behovsvurdering", "Konkurransegjennomføring", "Kontraktsoppfølging"):
        assert phase in text


def test_evaluation_card_keeps_values_and_shows_errors_at_the_fields() -> None:
    errors = {"need_described": {"nb": "Velg om behovet var godt beskrevet.", "en": "Choose."}}
    card = cr.evaluation_card(view(), "nb", {"went_well": "Bra", "need_described": ""}, errors)
    validate_card(card)
    body = card["body"]
    ids = [e.get("id") for e in body]
    assert body[ids.index("need_described") + 1]["text"] == "Velg om behovet var godt beskrevet."
    assert body[ids.index("went_well")]["value"] == "Bra"


def test_summary_card_has_norwegian_dates_and_every_comment() -> None:
    at = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    entries = [EvaluationEntry("Kari", {"went_well": "Bra", "need_described": "yes", "supplier_feedback": "no"}, at)]
    card = cr.summary_card(view(), summarise(entries, 3), "nb", can_send=True)
    validate_card(card)
    text = "\n".join(card_texts(card))
    assert "30.11.2026" in text and "2026-11-30" not in text
    assert "Kari: Bra" in text and "1 av 3" in text
    assert "competition.evaluation_summarise" not in verbs(card)  # sent already
