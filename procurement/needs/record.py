"""A submitted needs report as the domain sees it, and its status machine.

    submitted ──request_info──▶ info_requested ──answer (last open question)──▶ answered
        │                          │    ▲                                         │
        │                          │    └──────────── request_info ───────────────┘
        └──────────────┬───────────┘
                       ▼  (from any open status)
            approved | rejected   (innkjøper)      withdrawn   (the submitter)

`submitted`, `info_requested` and `answered` are open: the innkjøper may decide (approve,
reject, ask again) and the submitter may withdraw or edit the report. A question is an
`Exchange`; the submitter answers it in her personal chat, and when no question is left
unanswered the report is back in the queue as `answered`. Approval creates a competition
(K-…) in the same unit of work. Approved, rejected and withdrawn are final.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

OPEN_STATUSES = ("submitted", "info_requested", "answered")
FINAL_STATUSES = ("approved", "rejected", "withdrawn")
STATUSES = OPEN_STATUSES + FINAL_STATUSES
DECISIONS = {"approve": "approved", "reject": "rejected", "request_info": "info_requested"}

QUESTION_LIMIT = 2000
ANSWER_LIMIT = 4000

Messages = dict[str, str]


@dataclass(frozen=True)
class Exchange:
    """One question from Innkjøpsseksjonen and the submitter's answer (None until given)."""

    id: int
    question: str
    asked_by_name: str
    asked_at: datetime
    answer: str | None = None
    answered_by_name: str | None = None
    answered_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.answer is None


def can_decide(status: str, decision: str) -> bool:
    """Every decision applies to an open report (asking again is allowed: a new question)."""
    return decision in DECISIONS and status in OPEN_STATUSES


def can_withdraw(status: str) -> bool:
    return status in OPEN_STATUSES


def can_edit(status: str) -> bool:
    """The submitter may correct her report until it is decided."""
    return status in OPEN_STATUSES


def repeats_open_question(exchanges: tuple[Exchange, ...], question: str) -> bool:
    """The same question still unanswered: a double press, not a new question."""
    return any(e.is_open and e.question == question for e in exchanges)


def status_after_answer(exchanges_open_after: int) -> str:
    """Back in the queue when every question is answered; otherwise still waiting for her."""
    return "answered" if exchanges_open_after == 0 else "info_requested"


AnswerStep = Literal["record", "repeated", "already_answered", "closed"]


def answer_step(status: str, exchange: Exchange, answer: str) -> AnswerStep:
    """What an answer to `exchange` does: record it, or why not (nothing changes then).

    The same answer again is a double press (`repeated`); another answer to a question
    answered already is refused, so what the innkjøper read stays what she wrote."""
    if exchange.answer is not None:
        return "repeated" if exchange.answer == answer else "already_answered"
    if status not in OPEN_STATUSES:
        return "closed"
    return "record"


def check_message(value: str, limit: int, what: Literal["question", "answer"]) -> Messages | None:
    """The question or answer as the server requires it: not empty, at most `limit` characters."""
    if not value.strip():
        if what == "question":
            return {
                "nb": "Skriv spørsmålet til melderen i feltet over før du trykker «Be om mer informasjon».",
                "en": "Write the question for the submitter in the field above before pressing "
                "“Ask for more information”.",
            }
        return {"nb": "Skriv svaret ditt før du sender.", "en": "Write your answer before sending."}
    if len(value) > limit:
        return {
            "nb": f"Teksten er for lang: {len(value)} tegn. Skriv høyst {limit} tegn.",
            "en": f"The text is too long: {len(value)} characters. Write at most {limit}.",
        }
    return None


@dataclass(frozen=True)
class NeedsReport:
    ref: str
    status: str
    submitter_aad_id: str
    submitter_name: str
    title: str
    service_area: str
    category: str
    estimated_value: int
    data: dict[str, Any]
    assessment: dict[str, Any]
    created_at: datetime
    decided_by_name: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None
    competition_ref: str | None = None
    intake_conversation_id: str | None = None
    intake_activity_id: str | None = None
    edited_at: datetime | None = None
    edited_fields: tuple[str, ...] = ()
    exchanges: tuple[Exchange, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def open_exchanges(self) -> tuple[Exchange, ...]:
        return tuple(e for e in self.exchanges if e.is_open)

    def exchange(self, exchange_id: int) -> Exchange | None:
        return next((e for e in self.exchanges if e.id == exchange_id), None)
