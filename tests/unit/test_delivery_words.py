"""Delivery status in words: every reason code the outbox records has a Norwegian and an English
text, every known effect kind a plain name, and card data is only a selector."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from cards.strings import LANGUAGES, STRINGS
from dialogs.delivery_status import age_text, kind_text, reason_text
from procurement.delivery.effects import AlertDeadLetter
from procurement.delivery.service import Job, parse_job_id, record_ref
from procurement.deviations.effects import EFFECTS as DEVIATION_EFFECTS
from procurement.errors import PermanentError, TransientError, Unreachable
from procurement.needs.effects import AskSubmitter, NotifySubmitter, PostIntake, RefreshIntake
from procurement.store.outbox import REASONS, reason_of

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
JOB = Job(
    id=1,
    kind="needs_report.notify_submitter",
    ref="BM-2026-0001",
    state="dead",
    attempts=3,
    reason="failed",
    reason_ref="F-ABC123",
    created_at=NOW,
    first_failed_at=NOW,
    last_failed_at=NOW,
    dead_at=NOW,
    next_attempt_at=NOW,
    running=False,
)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_reason_code_has_a_text(lang: str) -> None:
    for code in sorted(REASONS):
        assert f"ds_why_{code}" in STRINGS[lang], code
        shown = reason_text(lang, dataclasses.replace(JOB, reason=code))
        assert "{" not in shown and shown.strip()
    assert "F-ABC123" in reason_text(lang, JOB)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_known_kind_has_a_plain_name(lang: str) -> None:
    kinds = [e.kind for e in (PostIntake, RefreshIntake, NotifySubmitter, AskSubmitter, AlertDeadLetter)]
    kinds += [e.kind for e in DEVIATION_EFFECTS]
    for kind in kinds:
        assert kind_text(lang, kind) not in (STRINGS[lang]["ds_kind_other"],), kind
        assert "_" not in kind_text(lang, kind) and "." not in kind_text(lang, kind), kind
    assert kind_text(lang, "records.mirror") == STRINGS[lang]["ds_kind_in_area"].format(
        area=STRINGS[lang]["ds_area_records"]
    )
    assert kind_text(lang, "brand.new") == STRINGS[lang]["ds_kind_other"]
    assert kind_text(lang, "../{x}") == STRINGS[lang]["ds_kind_other"]


def test_an_unknown_reason_reads_as_failed_never_as_its_text() -> None:
    job = dataclasses.replace(JOB, reason="connector said: secret stuff")
    assert reason_text("nb", job) == STRINGS["nb"]["ds_why_failed"].format(ref="F-ABC123")


def test_reasons_of_failures() -> None:
    assert reason_of(TransientError("x", retry_after=3)) == "throttled"
    assert reason_of(TransientError("x", status=429)) == "throttled"
    assert reason_of(TransientError("x", status=503)) == "unavailable"
    assert reason_of(PermanentError("x", status=403)) == "permission_missing"
    assert reason_of(Unreachable("x", why="no_manager")) == "no_manager"
    assert reason_of(ValueError("x")) == "failed"
    try:
        raise TransientError("retrying a refusal", retry_after=300) from PermanentError("x", status=401)
    except TransientError as err:
        assert reason_of(err) == "sign_in_failed"


def test_ages() -> None:
    assert age_text("nb", NOW, NOW + timedelta(seconds=30)) == "under ett minutt"
    assert age_text("nb", NOW, NOW + timedelta(minutes=1)) == "1 minutt"
    assert age_text("nb", NOW, NOW + timedelta(minutes=59)) == "59 minutter"
    assert age_text("nb", NOW, NOW + timedelta(hours=5)) == "5 timer"
    assert age_text("en", NOW, NOW + timedelta(days=3, hours=2)) == "3 days"
    assert age_text("nb", NOW, NOW - timedelta(hours=1)) == "under ett minutt"  # a clock skew is not negative


def test_card_data_is_only_a_selector() -> None:
    assert parse_job_id(7) == 7 and parse_job_id(" 12 ") == 12
    for junk in (None, True, 0, -1, "x", "1; drop", [1], {"id": 1}, 2**63, "9" * 40, 1.5):
        assert parse_job_id(junk) is None, junk
    assert record_ref({"ref": " BM-2026-0001 "}) == "BM-2026-0001"
    assert record_ref({"competition_ref": "K-2026-0002"}) == "K-2026-0002"
    assert record_ref({"ref": 5}) == "" and record_ref("nope") == "" and record_ref({"ref": "x" * 500}) == "x" * 64
