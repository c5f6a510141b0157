"""Reminder texts say the real time left, from the dates (issue 9, point 3), and option
decisions replan the reminders: a declined option's reminders (and later options') go, the
end's stay; an exercised option moves the end and its reminders."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from cards.strings import text
from dialogs.reminders import reminder_line, when
from procurement.contracts.model import (
    ContractData,
    ContractOption,
    OptionDecision,
    decline_option,
    exercise_option,
)
from procurement.contracts.service import ContractView
from procurement.reminders.schedule import derive_schedule, plan_changes
from procurement.reminders.service import ReminderView
from procurement.reminders.wording import Distance, distance, whole_months


@pytest.mark.parametrize(
    ("today", "target", "nb", "en"),
    [
        # The contract: ends 31.01.2027, registered 01.12.2026: December and January.
        (date(2026, 12, 1), date(2027, 1, 31), "om 2 måneder", "in 2 months"),
        (date(2026, 11, 1), date(2027, 1, 31), "om 3 måneder", "in 3 months"),  # exactly 3
        (date(2026, 11, 2), date(2027, 1, 31), "om 2 måneder", "in 2 months"),  # never rounded up
        (date(2026, 12, 2), date(2027, 1, 31), "om 1 måned", "in 1 month"),
        (date(2026, 10, 1), date(2026, 10, 31), "om 1 måned", "in 1 month"),  # through 31.10
        (date(2026, 10, 2), date(2026, 10, 31), "om 29 dager", "in 29 days"),
        (date(2026, 4, 4), date(2026, 5, 2), "om 28 dager", "in 28 days"),
        (date(2026, 4, 2), date(2026, 5, 1), "om 1 måned", "in 1 month"),  # 30 days to the end of 01.05
        (date(2027, 1, 30), date(2027, 1, 31), "i morgen", "tomorrow"),
        (date(2027, 1, 31), date(2027, 1, 31), "i dag", "today"),
        (date(2027, 2, 3), date(2027, 1, 31), "for 3 dager siden", "3 days ago"),
        (date(2027, 2, 1), date(2027, 1, 31), "i går", "yesterday"),
        (date(2027, 3, 31), date(2027, 1, 31), "for 2 måneder siden", "2 months ago"),
        # Month ends clamp: 31.01 + 1 month = 28.02 (29.02 in a leap year).
        (date(2027, 1, 31), date(2027, 2, 27), "om 1 måned", "in 1 month"),
        (date(2027, 1, 31), date(2027, 2, 26), "om 26 dager", "in 26 days"),
        (date(2028, 1, 31), date(2028, 2, 28), "om 1 måned", "in 1 month"),
        (date(2028, 1, 31), date(2028, 2, 27), "om 27 dager", "in 27 days"),
        (date(2027, 2, 28), date(2028, 2, 28), "om 12 måneder", "in 12 months"),
        (date(2028, 2, 29), date(2029, 2, 26), "om 11 måneder", "in 11 months"),
        (date(2028, 2, 29), date(2029, 2, 27), "om 12 måneder", "in 12 months"),  # 29.02 + 12 = 28.02
        (date(2028, 2, 29), date(2029, 2, 28), "om 12 måneder", "in 12 months"),
    ],
)
def test_time_left_from_the_dates(today: date, target: date, nb: str, en: str) -> None:
    assert when("nb", today, target) == nb
    assert when("en", today, target) == en


def test_distance_and_whole_months() -> None:
    assert distance(date(2026, 12, 1), date(2027, 1, 31)) == Distance("months", 2)
    assert distance(date(2027, 2, 3), date(2027, 1, 31)) == Distance("days", 3, past=True)
    assert whole_months(date(2027, 1, 31), date(2027, 2, 28)) == 1
    assert whole_months(date(2027, 1, 31), date(2027, 2, 27)) == 0
    assert whole_months(date(2027, 3, 1), date(2027, 2, 1)) == 0
    assert Distance("months", 1).catalog_key == "rm_when_in_month"
    assert Distance("days", 0).catalog_key == "rm_when_today"


def _view(**kw: object) -> ContractView:
    base: dict[str, object] = dict(
        external_ref="KAV-1",
        title="Renhold",
        supplier_name="Renhold AS",
        supplier_org_no="",
        category="services",
        start_date=date(2023, 2, 1),
        end_date=date(2027, 1, 31),
        agreement_type="single",
        manager_email="kari@kommune.no",
        manager_aad_id=None,
        risk_level="medium",
        value_nok=None,
        internal_notes=None,
        archive_case_no=None,
        options=[],
        controls=[],
        next_deadline=None,
    )
    base.update(kw)
    return ContractView(**base)  # type: ignore[arg-type]


def _reminder(kind: str, target: date, option: int | None = None) -> ReminderView:
    return ReminderView(
        id=1,
        contract_id=1,
        kind=kind,
        due_date=target,
        target_date=target,
        option_number=option,
        control_index=None,
        status="delivered",
        answer=None,
        answer_reason=None,
        answered_by=None,
        answered_at=None,
        recipient_aad_id=None,
        escalation_reason=None,
        escalated_at=None,
    )


def test_lines_state_the_date_and_the_time_left() -> None:
    view = _view()
    today = date(2026, 12, 1)
    end = reminder_line("nb", _reminder("end_3m", date(2027, 1, 31)), view, today)
    assert end == "Avtalen utløper 31.01.2027, om 2 måneder."
    option = reminder_line("nb", _reminder("option_notice_1m", date(2026, 12, 31), 1), view, today)
    assert option == "Fristen for å utløse opsjon 1 er 31.12.2026, om 1 måned."
    late = reminder_line("nb", _reminder("end_3m", date(2027, 1, 31)), view, date(2027, 2, 3))
    assert late == "Avtalen utløp 31.01.2027, for 3 dager siden."
    assert (
        text("en", "rm_line_end", date="31.01.2027", when="in 2 months") == "The contract ends 31.01.2027, in 2 months."
    )


# -- option decisions and the replan ------------------------------------------------------


def _contract() -> ContractData:
    return ContractData(
        external_ref="KAV-9",
        supplier_name="Vask AS",
        title="Vask",
        category="services",
        start_date=date(2024, 1, 1),
        end_date=date(2027, 12, 31),
        options=(
            ContractOption(1, 12, date(2027, 9, 30)),
            ContractOption(2, 12, date(2028, 9, 30)),
        ),
    )


DECISION = OptionDecision(by="Kari Nordmann", at=datetime(2027, 6, 1, 10).isoformat(), reason="Dårlig kvalitet")


def test_declining_an_option_cancels_its_and_later_options_reminders_and_keeps_the_end() -> None:
    today = date(2027, 6, 1)
    before = _contract()
    after = decline_option(before, 1, DECISION)
    assert after is not None and after.end_date == before.end_date
    declined = after.options[0]
    assert declined.exercised is False and declined.decision_reason == "Dårlig kvalitet"
    assert declined.decided_by == "Kari Nordmann" and declined.decided_at.startswith("2027-06-01")
    old = derive_schedule(before, today)
    new = derive_schedule(after, today)
    assert {p.kind for p in new} == {"new_competition", "end_6m", "end_3m"}  # none for options: 2 lapses with 1
    plan = plan_changes([_Stored(p.subject_key, "pending") for p in old], new)
    cancelled = {r.subject_key.split(":")[1] + ":" + r.subject_key.split(":")[2] for r in plan.to_cancel}
    assert cancelled == {"option_notice_3m:1", "option_notice_1m:1", "option_notice_3m:2", "option_notice_1m:2"}
    assert plan.to_create == []
    assert decline_option(after, 1, DECISION) is None, "a second press changes nothing"


def test_exercising_an_option_moves_the_end_and_replans_its_reminders() -> None:
    today = date(2027, 6, 1)
    before = _contract()
    after = exercise_option(before, 1, DECISION)
    assert after is not None and after.end_date == date(2028, 12, 31)
    assert after.options[0].exercised is True
    old = derive_schedule(before, today)
    new = derive_schedule(after, today)
    plan = plan_changes([_Stored(p.subject_key, "pending") for p in old], new)
    assert {r.subject_key for r in plan.to_cancel} >= {
        "KAV-9:end_6m:-:2027-12-31",
        "KAV-9:end_3m:-:2027-12-31",
        "KAV-9:option_notice_1m:1:2027-09-30",
    }
    created = {p.subject_key for p in plan.to_create}
    assert {"KAV-9:end_6m:-:2028-12-31", "KAV-9:end_3m:-:2028-12-31", "KAV-9:new_competition:-:2028-12-31"} <= created
    # Option 2 is still open: its reminders stay planned.
    assert any(p.kind == "option_notice_3m" and p.option_number == 2 for p in new)
    assert exercise_option(after, 1, DECISION) is None
    assert exercise_option(before, 7, DECISION) is None


class _Stored:
    def __init__(self, subject_key: str, status: str) -> None:
        self.subject_key = subject_key
        self.status = status
