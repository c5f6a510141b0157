"""The needs report's status machine: decisions, questions and answers, edits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from procurement.needs.record import (
    ANSWER_LIMIT,
    DECISIONS,
    FINAL_STATUSES,
    OPEN_STATUSES,
    QUESTION_LIMIT,
    Exchange,
    NeedsReport,
    answer_step,
    can_decide,
    can_edit,
    can_withdraw,
    check_message,
    repeats_open_question,
    status_after_answer,
)

AT = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def exchange(id: int = 1, question: str = "Hva er verdigrunnlaget?", answer: str | None = None) -> Exchange:
    return Exchange(
        id=id,
        question=question,
        asked_by_name="Ingrid",
        asked_at=AT,
        answer=answer,
        answered_by_name="Kari" if answer is not None else None,
        answered_at=AT if answer is not None else None,
    )


@pytest.mark.parametrize("status", OPEN_STATUSES)
@pytest.mark.parametrize("decision", sorted(DECISIONS))
def test_every_decision_applies_to_every_open_status(status: str, decision: str) -> None:
    # Asking again from info_requested/answered is a new question, not "already handled".
    assert can_decide(status, decision)


@pytest.mark.parametrize("status", FINAL_STATUSES)
@pytest.mark.parametrize("decision", sorted(DECISIONS))
def test_nothing_is_decided_twice(status: str, decision: str) -> None:
    assert not can_decide(status, decision)


def test_unknown_decision_is_refused() -> None:
    assert not can_decide("submitted", "delete")


@pytest.mark.parametrize("status", [*OPEN_STATUSES, *FINAL_STATUSES])
def test_withdraw_and_edit_only_while_open(status: str) -> None:
    assert can_withdraw(status) == can_edit(status) == (status in OPEN_STATUSES)


def test_answered_is_open_and_back_in_the_queue() -> None:
    assert "answered" in OPEN_STATUSES
    assert status_after_answer(0) == "answered"
    assert status_after_answer(1) == "info_requested"  # another question still waits for her


def test_same_open_question_is_a_double_press_but_an_answered_one_may_be_asked_again() -> None:
    q = "Hva er verdigrunnlaget?"
    assert repeats_open_question((exchange(question=q),), q)
    assert not repeats_open_question((exchange(question=q),), "Når trengs leveransen?")
    assert not repeats_open_question((exchange(question=q, answer="Tre års forbruk."),), q)
    assert not repeats_open_question((), q)


@pytest.mark.parametrize(
    ("status", "given", "answer", "step"),
    [
        ("info_requested", None, "Tre års forbruk.", "record"),
        ("info_requested", "Tre års forbruk.", "Tre års forbruk.", "repeated"),
        ("answered", "Tre års forbruk.", "Tre års forbruk.", "repeated"),
        ("answered", "Tre års forbruk.", "Noe annet.", "already_answered"),
        ("approved", None, "Tre års forbruk.", "closed"),
        ("withdrawn", None, "x", "closed"),
        ("rejected", "Tre års forbruk.", "Tre års forbruk.", "repeated"),
    ],
)
def test_answer_step(status: str, given: str | None, answer: str, step: str) -> None:
    assert answer_step(status, exchange(answer=given), answer) == step


def test_question_and_answer_are_required_and_bounded() -> None:
    missing = check_message("  \n ", QUESTION_LIMIT, "question")
    assert missing is not None and "Be om mer informasjon" in missing["nb"] and missing["en"]
    empty_answer = check_message("", ANSWER_LIMIT, "answer")
    assert empty_answer is not None and "Skriv svaret" in empty_answer["nb"]
    too_long = check_message("x" * (QUESTION_LIMIT + 1), QUESTION_LIMIT, "question")
    assert too_long is not None and f"{QUESTION_LIMIT + 1} tegn" in too_long["nb"]
    assert check_message("x" * QUESTION_LIMIT, QUESTION_LIMIT, "question") is None
    assert check_message("Hva er verdigrunnlaget?", QUESTION_LIMIT, "question") is None


def test_report_finds_its_open_exchanges() -> None:
    report = NeedsReport(
        ref="BM-2026-0001",
        status="info_requested",
        submitter_aad_id="kari",
        submitter_name="Kari",
        title="t",
        service_area="oppvekst",
        category="goods",
        estimated_value=1,
        data={},
        assessment={},
        created_at=AT,
        exchanges=(exchange(1, answer="a"), exchange(2)),
    )
    assert [e.id for e in report.open_exchanges] == [2]
    assert report.exchange(1) is not None and report.exchange(3) is None
    assert report.is_open
