"""The room job's steps (what a run does next, what a retry resumes from), who is in a room, and the
evaluation's validation and summary: pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procurement.competitions.composition import (
    asks_for_representatives,
    compose_room,
    faggruppe_entries,
    faggruppe_names,
)
from procurement.competitions.record import (
    STEPS,
    EvaluationEntry,
    can_retry,
    failed_step,
    initial_steps,
    next_step,
    reset_failed,
    room_status,
    summarise,
    validate_evaluation,
    with_done,
    with_failed,
)
from procurement.ports import Person


def test_steps_run_in_order_and_a_failure_stops_until_retried() -> None:
    steps = initial_steps()
    seen = []
    while (step := next_step(steps)) is not None:
        seen.append(step)
        steps = with_failed(steps, step) if step == "strategy" else with_done(steps, step)
    assert seen == ["channel", "members", "folders", "strategy"]
    assert room_status(steps) == "failed" and failed_step(steps) == "strategy" and can_retry(steps)
    steps = reset_failed(steps)
    assert next_step(steps) == "strategy"  # resumes at the failed step, not from the start
    assert [s for s in STEPS if steps[s] == "done"] == ["channel", "members", "folders"]
    while (step := next_step(steps)) is not None:
        steps = with_done(steps, step)
    assert room_status(steps) == "ready" and not can_retry(steps)


@given(st.dictionaries(st.text(max_size=10), st.one_of(st.text(max_size=10), st.integers(), st.none())))
def test_stored_junk_reads_as_pending(raw: dict[str, Any]) -> None:
    step = next_step(raw)
    assert step is None or step in STEPS
    assert room_status(raw) in ("pending", "ready", "failed")


class Directory:
    def __init__(self, people: dict[str, Person]) -> None:
        self.people = people
        self.asked: list[str] = []

    async def resolve(self, email_or_id: str) -> Person | None:
        self.asked.append(email_or_id)
        return self.people.get(email_or_id.lower())


PER = Person("PER-ID", "Per Hansen", "per@kommune.no")
SIRI = Person("siri-id", "Siri Verne", "siri@kommune.no")


async def test_the_room_is_owner_submitter_faggruppe_and_unresolved_names_are_kept() -> None:
    directory = Directory({"per@kommune.no": PER, "per-id": PER, "siri@kommune.no": SIRI})
    members = await compose_room(
        owner=Person("ingrid", "Ingrid"),
        submitter=Person("kari", "Kari"),
        data={"faggruppe": ["per@kommune.no", "Ola Ukjent", "PER-ID", "Kari"]},
        directory=directory,
        representatives=("siri@kommune.no",),
    )
    assert [(m.key, m.source, m.role) for m in members] == [
        ("ingrid", "owner", "owner"),
        ("kari", "submitter", "member"),
        ("per-id", "faggruppe", "member"),  # once, though named twice (e-mail and id)
        ("?ola ukjent", "faggruppe", "member"),
        ("?kari", "faggruppe", "member"),
    ]
    assert not members[3].resolved and members[3].name == "Ola Ukjent"
    assert faggruppe_names(members) == ["Per Hansen", "Ola Ukjent", "Kari"]
    assert "siri@kommune.no" not in directory.asked  # nobody asked for representatives


async def test_the_owner_in_the_faggruppe_stays_owner() -> None:
    members = await compose_room(
        owner=Person("per-id", "Per"),
        submitter=Person("kari", "Kari"),
        data={"faggruppe": "per@kommune.no"},
        directory=Directory({"per@kommune.no": PER}),
    )
    assert [(m.key, m.role) for m in members] == [("per-id", "owner"), ("kari", "member")]


@pytest.mark.parametrize(
    ("faggruppe", "note", "joins"),
    [
        ("Per Hansen, verneombud", "", True),
        ("Per Hansen", "Inviter tillitsvalgte", True),
        ("Per Hansen", "", False),
    ],
)
async def test_representatives_when_the_report_or_the_approver_asks(faggruppe: str, note: str, joins: bool) -> None:
    members = await compose_room(
        owner=Person("ingrid", "Ingrid"),
        submitter=Person("kari", "Kari"),
        data={"faggruppe": faggruppe},
        directory=Directory({"siri@kommune.no": SIRI}),
        representatives=("siri@kommune.no", "ukjent@kommune.no"),
        include_representatives=asks_for_representatives([note]),
    )
    sources = {m.key: m.source for m in members}
    assert ("siri-id" in sources) == joins
    assert ("?ukjent@kommune.no" in sources) == joins  # an unknown representative is listed too
    assert "?verneombud" not in sources  # the word asks for them, it is not a person


@given(st.one_of(st.text(max_size=300), st.lists(st.text(max_size=50), max_size=30), st.integers(), st.none()))
def test_faggruppe_entries_never_crash(raw: Any) -> None:
    entries = faggruppe_entries({"faggruppe": raw})
    assert all(e and len(e) <= 200 for e in entries)
    assert len(entries) == len(set(entries))


def test_evaluation_is_validated_with_a_message_per_field() -> None:
    result = validate_evaluation({"need_described": "maybe", "supplier_feedback": ["yes"]})
    assert set(result.errors) == {"went_well", "need_described", "supplier_feedback"}
    assert result.answers is None
    long = validate_evaluation({"went_well": "x" * 2001, "need_described": "yes", "supplier_feedback": "no"})
    assert "2001 tegn" in long.errors["went_well"]["nb"]
    ok = validate_evaluation({"to_change": " Tidligere dialog ", "need_described": "no", "supplier_feedback": "yes"})
    assert ok.errors == {} and ok.answers is not None and ok.answers.to_change == "Tidligere dialog"


def test_summary_counts_and_comments_in_order() -> None:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    entries = [
        EvaluationEntry("B", {"went_well": "x", "need_described": "no", "supplier_feedback": "yes"}, at + timedelta(1)),
        EvaluationEntry("A", {"to_change": "y", "need_described": "no", "supplier_feedback": "no"}, at),
    ]
    summary = summarise(entries, invited=4)
    assert (summary.count, summary.invited) == (2, 4)
    assert summary.need_described == {"yes": 0, "partly": 0, "no": 2}
    assert summary.supplier_feedback == {"yes": 1, "no": 1}
    assert summary.went_well == (("B", "x"),) and summary.to_change == (("A", "y"),)
