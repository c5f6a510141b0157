"""The deviation report's status machine: every allowed and refused transition, what each
requires, double taps, the reporter's messages and the reference format."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from cards.strings import STRINGS, text
from procurement.deviations.record import (
    NEXT_STATUS,
    OPEN_STATUSES,
    STATUSES,
    DeviationReport,
    allowed_targets,
    apply_transition,
    can_transition,
    format_ref,
    parse_ref,
    plan_transition,
    reporter_message,
)

TODAY = date(2026, 6, 10)
NOW = datetime(2026, 6, 10, 9, 30, tzinfo=UTC)
DEADLINE = "2026-06-24"


def report(status: str = "reported", **changes: object) -> DeviationReport:
    base = DeviationReport(
        ref="AV-2026-0007",
        status=status,
        reporter_aad_id="reporter-1",
        reporter_name="Kari Melder",
        category="delivery",
        severity="high",
        description="Varene kom for sent.",
        occurred_on=date(2026, 6, 9),
        created_at=NOW - timedelta(days=2),
        supplier_name="Matleverandøren AS",
        contract_ref="KAV-2024-017",
        manager_aad_ids=("manager-1",),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def move(r: DeviationReport, target: str, **inputs: object) -> DeviationReport:
    plan = plan_transition(r, target, today=TODAY, **inputs)
    assert plan.outcome == "apply", plan.errors
    return apply_transition(r, plan, actor_aad_id="manager-1", actor_name="Avtale Forvalter", now=NOW)


# -- references ---------------------------------------------------------------------------------


def test_reference_format() -> None:
    assert format_ref(2026, 7) == "AV-2026-0007"
    assert format_ref(2026, 12345) == "AV-2026-12345"


@pytest.mark.parametrize(
    ("typed", "ref"),
    [
        ("AV-2026-0007", "AV-2026-0007"),
        (" av-2026-7 ", "AV-2026-0007"),
        ("AV - 2026 - 0042", "AV-2026-0042"),
        ("AV-2026-0000", None),
        ("BM-2026-0007", None),
        ("AV-26-0007", None),
        ("AV-2026-0007; DROP", None),
        ("A" * 100, None),
        (7, None),
        (None, None),
    ],
)
def test_parse_ref(typed: object, ref: str | None) -> None:
    assert parse_ref(typed) == ref


# -- the table of transitions --------------------------------------------------------------------


def test_the_allowed_transitions() -> None:
    assert allowed_targets("reported") == ("received", "closed")
    assert allowed_targets("received") == ("in_progress", "closed")
    assert allowed_targets("in_progress") == ("in_progress", "sanction_assessed", "closed")
    assert allowed_targets("sanction_assessed") == ("closed",)
    assert allowed_targets("closed") == ()
    assert STATUSES[-1] == "closed" and set(NEXT_STATUS) == set(OPEN_STATUSES)


REFUSED = [
    (a, b)
    for a in STATUSES
    for b in STATUSES
    if not (b == NEXT_STATUS.get(a) or (b == "closed" and a != "closed") or a == b == "in_progress")
]


@pytest.mark.parametrize(("current", "target"), REFUSED)
def test_every_other_transition_is_refused_at_the_status_field(current: str, target: str) -> None:
    assert not can_transition(current, target)
    r = report(current)
    plan = plan_transition(
        r, target, note="notat", remedy_deadline=DEADLINE, supplier_notice="formal_notice", today=TODAY
    )
    assert plan.outcome == "refused"
    assert set(plan.errors) == {"status"}
    with pytest.raises(ValueError):
        apply_transition(r, plan, actor_aad_id="m", actor_name="M", now=NOW)


@pytest.mark.parametrize("target", ["", "lukket", None, 3, "CLOSED"])
def test_an_unknown_status_is_refused(target: object) -> None:
    plan = plan_transition(report(), target, today=TODAY)
    assert plan.outcome == "refused" and "status" in plan.errors


# -- what each step requires ------------------------------------------------------------------------


def test_received_needs_nothing_and_is_recorded_in_the_history() -> None:
    after = move(report(), "received")
    assert after.status == "received"
    [entry] = after.history
    assert (entry.from_status, entry.to_status, entry.actor_aad_id, entry.at) == (
        "reported",
        "received",
        "manager-1",
        NOW,
    )


def test_in_progress_requires_a_remedy_deadline_and_how_the_supplier_is_told() -> None:
    plan = plan_transition(report("received"), "in_progress", today=TODAY)
    assert plan.outcome == "refused"
    assert set(plan.errors) == {"remedy_deadline", "supplier_notice"}
    assert "frist" in plan.errors["remedy_deadline"]["nb"].lower()


@pytest.mark.parametrize(
    ("deadline", "words"),
    [("2026-06-09", "tilbake i tid"), ("09.06.2026", "tilbake i tid"), ("snart", "gyldig dato"), ("2027-12-01", "år")],
)
def test_a_remedy_deadline_in_the_past_or_unreadable_is_refused(deadline: str, words: str) -> None:
    plan = plan_transition(
        report("received"), "in_progress", remedy_deadline=deadline, supplier_notice="formal_notice", today=TODAY
    )
    assert plan.outcome == "refused" and set(plan.errors) == {"remedy_deadline"}
    assert words in plan.errors["remedy_deadline"]["nb"]


def test_a_deadline_today_with_a_formal_notice_produces_the_notice() -> None:
    plan = plan_transition(
        report("received"),
        "in_progress",
        remedy_deadline=TODAY.isoformat(),
        supplier_notice="formal_notice",
        today=TODAY,
    )
    assert plan.outcome == "apply" and plan.produces_supplier_notice
    after = apply_transition(report("received"), plan, actor_aad_id="manager-1", actor_name="A", now=NOW)
    assert (after.status, after.remedy_deadline, after.supplier_notice) == ("in_progress", TODAY, "formal_notice")


def test_already_notified_needs_a_note_saying_how() -> None:
    r = report("received")
    plan = plan_transition(r, "in_progress", remedy_deadline=DEADLINE, supplier_notice="already_notified", today=TODAY)
    assert set(plan.errors) == {"note"}
    ok = plan_transition(
        r, "in_progress", remedy_deadline=DEADLINE, supplier_notice="already_notified", note="Ringt 10.06.", today=TODAY
    )
    assert ok.outcome == "apply" and not ok.produces_supplier_notice


def test_the_deadline_can_be_moved_while_in_progress_but_not_to_the_same_day() -> None:
    r = move(report("received"), "in_progress", remedy_deadline=DEADLINE, supplier_notice="formal_notice")
    moved = move(r, "in_progress", remedy_deadline="2026-07-01", note="Leverandøren ba om mer tid.")
    assert moved.remedy_deadline == date(2026, 7, 1) and moved.supplier_notice == "formal_notice"
    assert not plan_transition(r, "in_progress", remedy_deadline="2026-07-01", today=TODAY).produces_supplier_notice
    same = plan_transition(moved, "in_progress", remedy_deadline="2026-07-01", note="igjen", today=TODAY)
    assert same.outcome == "refused" and set(same.errors) == {"remedy_deadline"}


def test_sanction_assessed_requires_the_assessment() -> None:
    r = report("in_progress", remedy_deadline=date(2026, 6, 20), supplier_notice="formal_notice")
    assert set(plan_transition(r, "sanction_assessed", note="  ", today=TODAY).errors) == {"note"}
    after = move(r, "sanction_assessed", note="Prisavslag 5 % for juni.")
    assert after.assessment == "Prisavslag 5 % for juni."


@pytest.mark.parametrize("status", OPEN_STATUSES)
def test_closing_from_any_open_status_requires_a_justification(status: str) -> None:
    r = report(status)
    plan = plan_transition(r, "closed", today=TODAY)
    assert plan.outcome == "refused" and set(plan.errors) == {"note"}
    assert "arkiveres" in plan.errors["note"]["nb"]
    after = move(r, "closed", note="Leverandøren har rettet forholdet.")
    assert (after.status, after.closed_at, after.closing_justification) == (
        "closed",
        NOW,
        "Leverandøren har rettet forholdet.",
    )
    assert not after.is_open


def test_a_closed_report_cannot_change() -> None:
    closed = move(report("sanction_assessed"), "closed", note="Ferdig.")
    for target in STATUSES:
        plan = plan_transition(closed, target, note="Noe nytt.", remedy_deadline=DEADLINE, today=TODAY)
        assert plan.outcome == "refused"
    assert "lukket" in plan_transition(closed, "closed", note="Annet.", today=TODAY).errors["status"]["nb"]


def test_an_oversized_or_junk_note_is_refused_and_control_characters_stripped() -> None:
    r = report("sanction_assessed")
    long = plan_transition(r, "closed", note="x" * 2001, today=TODAY)
    assert set(long.errors) == {"note"} and "2001 tegn" in long.errors["note"]["nb"]
    junk = plan_transition(r, "closed", note=["x"], today=TODAY)
    assert set(junk.errors) == {"note"}
    clean = plan_transition(r, "closed", note="Rettet\x00.\x1b", today=TODAY)
    assert clean.outcome == "apply" and clean.note == "Rettet."


# -- double taps ------------------------------------------------------------------------------------


def test_the_same_change_twice_is_a_repeat_that_changes_nothing() -> None:
    once = move(report(), "received", note="Sett.")
    again = plan_transition(once, "received", note="Sett.", today=TODAY)
    assert again.outcome == "repeated" and not again.errors
    r = move(report("received"), "in_progress", remedy_deadline=DEADLINE, supplier_notice="formal_notice")
    tap = plan_transition(r, "in_progress", remedy_deadline="24.06.2026", supplier_notice="formal_notice", today=TODAY)
    assert tap.outcome == "repeated" and not tap.produces_supplier_notice
    closed = move(report("sanction_assessed"), "closed", note="Ferdig.")
    assert plan_transition(closed, "closed", note="Ferdig.", today=TODAY).outcome == "repeated"


# -- helpers and the reporter's messages ------------------------------------------------------------


def test_remedy_overdue_and_days_to_closure() -> None:
    r = report("in_progress", remedy_deadline=date(2026, 6, 9))
    assert r.remedy_overdue(TODAY) and not r.remedy_overdue(date(2026, 6, 9))
    assert not report("sanction_assessed", remedy_deadline=date(2026, 6, 1)).remedy_overdue(TODAY)
    closed = move(report("sanction_assessed"), "closed", note="Ferdig.")
    assert closed.days_to_closure() == 2.0 and report().days_to_closure() is None


def test_routed_to_the_follow_up_channel_without_a_manager() -> None:
    assert report(manager_aad_ids=(), contract_ref=None).routed_to_follow_up_channel
    assert not report().routed_to_follow_up_channel


def test_the_reporter_is_told_every_change_in_plain_words_in_both_languages() -> None:
    r0 = report()
    r1 = move(r0, "received")
    r2 = move(r1, "in_progress", remedy_deadline=DEADLINE, supplier_notice="formal_notice")
    r3 = move(r2, "in_progress", remedy_deadline="2026-07-01", note="Mer tid.")
    r4 = move(r3, "sanction_assessed", note="Intern vurdering: dagmulkt 3 dager.")
    r5 = move(r4, "closed", note="Leverandøren har rettet forholdet.")
    expected = [
        ("dv_notify_received", "mottatt"),
        ("dv_notify_in_progress", "24.06.2026"),
        ("dv_notify_deadline_moved", "01.07.2026"),
        ("dv_notify_sanction_assessed", "vurdert"),
        ("dv_notify_closed", "Leverandøren har rettet forholdet."),
    ]
    for (before, after), (key, words) in zip([(r0, r1), (r1, r2), (r2, r3), (r3, r4), (r4, r5)], expected, strict=True):
        message = reporter_message(before, after)
        assert message.key == key
        for lang in STRINGS:
            shown = text(lang, message.key, **message.params)
            assert "AV-2026-0007" in shown and "{" not in shown
        assert words in text("nb", message.key, **message.params)
    # the internal assessment is not sent to the reporter
    assert "dagmulkt" not in text("nb", "dv_notify_sanction_assessed", **reporter_message(r3, r4).params)
    assert reporter_message(r0, r0).key == "dv_notify_reported"
    assert [e.to_status for e in r5.history] == [
        "received",
        "in_progress",
        "in_progress",
        "sanction_assessed",
        "closed",
    ]
