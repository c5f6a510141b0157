"""The deviation form's validation per step and for the whole report: refusals at the field,
the user's values kept, hostile and oversized input handled, never raising."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procurement.deviations.fields import (
    CATEGORIES,
    CONTRACT_NOT_LISTED,
    FORM_FIELDS,
    LIMITS,
    MAX_ATTACHMENTS,
    SEVERITIES,
    STEP_DETAILS,
    STEP_FIELDS,
    STEP_FILES,
    STEP_WHAT,
    echo_limit,
    step_of,
)
from procurement.deviations.model import (
    CONTRACT_UNKNOWN,
    AcceptedFile,
    DetailsStep,
    WhatStep,
    initial_values,
    step_values,
    validate_report,
    validate_step,
)

TODAY = date(2026, 6, 10)


def what(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "contract": "KAV-2024-017",
        "supplier_name": "",
        "category": "delivery",
        "severity": "medium",
    }
    raw.update(changes)
    return raw


def details(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "description": "Varene kom tre dager for sent, og kjølevarene var varme.",
        "occurred_on": "2026-06-09",
        "location": "Sørumsand sykehjem, kjøkkenet",
        "financial_impact": "12 500 kr",
        "breached_clause": "Bilag 2, punkt 4.1 Leveringstid",
    }
    raw.update(changes)
    return raw


def file(name: str = "foto.jpg") -> AcceptedFile:
    return AcceptedFile(name, name, "jpeg", "image/jpeg", 1000)


# -- step 1 --------------------------------------------------------------------------------------


def test_the_nine_categories_and_four_severities() -> None:
    assert CATEGORIES == (
        "delivery",
        "quality",
        "price_invoice",
        "wage_conditions",
        "hms",
        "environment",
        "ethics",
        "apprentices",
        "other",
    )
    assert SEVERITIES == ("low", "medium", "high", "critical")


def test_a_chosen_contract_passes_step_one() -> None:
    result = validate_step(STEP_WHAT, what(), TODAY)
    assert result.ok
    assert result.value == WhatStep("KAV-2024-017", "", "delivery", "medium")


@pytest.mark.parametrize("contract", ["", None, CONTRACT_NOT_LISTED, "   "])
def test_without_a_contract_the_supplier_must_be_typed(contract: object) -> None:
    result = validate_step(STEP_WHAT, what(contract=contract), TODAY)
    assert set(result.errors) == {"supplier_name"}
    assert "leverandøren" in result.errors["supplier_name"]["nb"]
    typed = validate_step(STEP_WHAT, what(contract=contract, supplier_name="  Renhold Øst AS "), TODAY)
    assert typed.ok and typed.value == WhatStep(None, "Renhold Øst AS", "delivery", "medium")


@pytest.mark.parametrize("contract", ["<script>", "x" * 101, ["KAV-1"], {"id": 1}, "../../etc", True])
def test_a_contract_that_is_no_register_reference_is_refused_at_the_field(contract: object) -> None:
    result = validate_step(STEP_WHAT, what(contract=contract), TODAY)
    assert set(result.errors) == {"contract"}
    assert "Finner ikke avtalen" in result.errors["contract"]["nb"]


def test_the_service_has_a_message_for_a_reference_not_in_the_register() -> None:
    assert "avtaleregisteret" in CONTRACT_UNKNOWN["nb"] and "register" in CONTRACT_UNKNOWN["en"]


@pytest.mark.parametrize("key", ["category", "severity"])
@pytest.mark.parametrize("value", [None, "", "urgent", 3, ["high"], "HIGH"])
def test_choices_must_be_one_of_the_list(key: str, value: object) -> None:
    result = validate_step(STEP_WHAT, what(**{key: value}), TODAY)
    assert set(result.errors) == {key}
    assert result.errors[key]["nb"] and result.errors[key]["en"]


def test_every_error_is_at_a_field_of_its_step_in_both_languages() -> None:
    result = validate_step(STEP_WHAT, {}, TODAY)
    assert set(result.errors) == {"supplier_name", "category", "severity"}
    assert all(step_of(key) == STEP_WHAT for key in result.errors)
    assert all(set(m) == {"nb", "en"} and all(m.values()) for m in result.errors.values())


# -- step 2 --------------------------------------------------------------------------------------


def test_complete_details_pass_with_typed_values() -> None:
    result = validate_step(STEP_DETAILS, details(), TODAY)
    assert result.ok
    assert result.value == DetailsStep(
        "Varene kom tre dager for sent, og kjølevarene var varme.",
        date(2026, 6, 9),
        "Sørumsand sykehjem, kjøkkenet",
        12500,
        "Bilag 2, punkt 4.1 Leveringstid",
    )


def test_the_form_starts_with_today_and_today_is_fine() -> None:
    assert initial_values(TODAY) == {"occurred_on": "2026-06-10"}
    assert validate_step(STEP_DETAILS, details(occurred_on="2026-06-10"), TODAY).ok


@pytest.mark.parametrize("day", ["2026-06-11", "11.06.2026", date(2027, 1, 1), datetime(2026, 6, 11, 8)])
def test_a_date_in_the_future_is_refused_with_today(day: object) -> None:
    result = validate_step(STEP_DETAILS, details(occurred_on=day), TODAY)
    assert set(result.errors) == {"occurred_on"}
    assert "fram i tid" in result.errors["occurred_on"]["nb"]
    assert "10.06.2026" in result.errors["occurred_on"]["nb"]


def test_a_norwegian_date_is_read_and_a_year_typo_far_back_is_caught() -> None:
    ok = validate_step(STEP_DETAILS, details(occurred_on="09.06.2026"), TODAY)
    assert ok.ok and isinstance(ok.value, DetailsStep) and ok.value.occurred_on == date(2026, 6, 9)
    old = validate_step(STEP_DETAILS, details(occurred_on="2016-06-09"), TODAY)
    assert "årstallet" in old.errors["occurred_on"]["nb"]


@pytest.mark.parametrize("day", ["", None, "i går", "31.02.2026", "2026-13-01", 20260609, ["2026-06-09"], "9" * 10_000])
def test_a_missing_or_unreadable_date_is_refused(day: object) -> None:
    result = validate_step(STEP_DETAILS, details(occurred_on=day), TODAY)
    assert set(result.errors) == {"occurred_on"}


@pytest.mark.parametrize(
    ("typed", "value"),
    [("12 500 kr", 12500), ("1,3 mill", 1_300_000), ("250'", 250_000), (4000, 4000), ("", None), (None, None)],
)
def test_financial_impact_is_norwegian_money_and_optional(typed: object, value: int | None) -> None:
    result = validate_step(STEP_DETAILS, details(financial_impact=typed), TODAY)
    assert result.ok and isinstance(result.value, DetailsStep)
    assert result.value.financial_impact == value


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("0", "positivt"),
        ("-500", "positivt"),
        ("12 500,50", "øre"),
        ("1.300", "kan bety"),
        ("mye", "forstod ikke"),
        ("1000 inkl. mva", "eksklusive"),
        (True, "forstod ikke"),
        (float("nan"), "forstod ikke"),
    ],
)
def test_bad_money_is_explained_at_the_field(typed: object, words: str) -> None:
    result = validate_step(STEP_DETAILS, details(financial_impact=typed), TODAY)
    assert set(result.errors) == {"financial_impact"}
    assert words in result.errors["financial_impact"]["nb"]


def test_a_description_is_required() -> None:
    result = validate_step(STEP_DETAILS, details(description="   "), TODAY)
    assert set(result.errors) == {"description"}


@pytest.mark.parametrize("key", ["description", "location", "breached_clause"])
def test_oversized_text_is_refused_with_its_length_and_echoed_cut_at_the_limit(key: str) -> None:
    limit = LIMITS[key]
    typed = "æ" * (limit + 1)
    result = validate_step(STEP_DETAILS, details(**{key: typed}), TODAY)
    assert set(result.errors) == {key}
    assert f"{limit + 1} tegn" in result.errors[key]["nb"]
    assert result.values[key] == "æ" * limit
    assert result.values["description" if key != "description" else "location"]  # the rest kept


def test_a_100_kb_paste_everywhere_is_refused_without_losing_the_values() -> None:
    huge = "x" * 100_000
    raw = {**what(), **details(), **{key: huge for key in FORM_FIELDS}}
    for step in (STEP_WHAT, STEP_DETAILS):
        result = validate_step(step, raw, TODAY)
        assert not result.ok
        assert set(result.values) == set(STEP_FIELDS[step])
        assert all(len(v) <= echo_limit(k) for k, v in result.values.items())


def test_hostile_text_is_kept_as_typed_and_control_characters_are_stripped() -> None:
    hostile = '{{ t.x }} ${jndi:ldap://x} <b>"; DROP TABLE avvik;-- 🙂'
    result = validate_step(STEP_DETAILS, details(description=hostile + "\x00\x07\ud800", location="Rom\x1b 12"), TODAY)
    assert result.ok and isinstance(result.value, DetailsStep)
    assert result.value.description == hostile
    assert result.value.location == "Rom 12"
    assert result.values["description"] == hostile


def test_values_are_echoed_back_on_error_exactly_for_the_step() -> None:
    raw = details(occurred_on="2030-01-01", token="abc", verb="deviation.next", category="hms")
    result = validate_step(STEP_DETAILS, raw, TODAY)
    assert not result.ok
    assert set(result.values) == set(STEP_FIELDS[STEP_DETAILS])
    assert result.values["occurred_on"] == "2030-01-01"
    assert result.values["description"] == raw["description"]
    assert step_values(STEP_FILES, raw) == {}


class Exploding(Mapping[str, object]):
    def __getitem__(self, key: str) -> object:
        raise RuntimeError("boom")

    def get(self, key: str, default: object = None) -> object:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@pytest.mark.parametrize("raw", [None, [], "junk", 42, Exploding(), {"description": {"nested": ["x"]}}])
def test_junk_submits_give_errors_not_exceptions(raw: object) -> None:
    for step in (STEP_WHAT, STEP_DETAILS, 99):
        result = validate_step(step, raw, TODAY)
        assert not result.ok


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(FORM_FIELDS)), json_values), st.integers(1, 3))
def test_validation_never_raises_and_errors_name_fields(raw: dict[str, Any], step: int) -> None:
    result = validate_step(step, raw, TODAY)
    assert set(result.errors) <= set(STEP_FIELDS[step])
    assert all(isinstance(v, str) and len(v) <= echo_limit(k) for k, v in result.values.items())
    report = validate_report(raw, [], TODAY)
    assert set(report.errors) <= set(FORM_FIELDS)
    assert report.ok == (report.value is not None)


# -- the whole report ---------------------------------------------------------------------------


def test_a_whole_report_is_checked_again_on_send() -> None:
    result = validate_report({**what(), **details()}, [file()], TODAY)
    assert result.ok and result.value is not None
    assert result.value.what.contract == "KAV-2024-017"
    assert result.value.details.financial_impact == 12500
    assert result.value.attachments == (file(),)


def test_a_saved_step_that_is_now_wrong_reopens_its_step() -> None:
    # the draft was saved on 10 June; sent a day "earlier" the date would be in the future
    result = validate_report({**what(severity=""), **details()}, [], date(2026, 6, 8))
    assert set(result.errors) == {"severity", "occurred_on"}
    assert result.first_step_with_errors == STEP_WHAT
    assert result.values["description"] == details()["description"]


def test_too_many_attachments_are_refused_on_send_at_step_three() -> None:
    files = [file(f"{i}.jpg") for i in range(MAX_ATTACHMENTS + 1)]
    result = validate_report({**what(), **details()}, files, TODAY)
    assert set(result.errors) == {"attachments"}
    assert result.first_step_with_errors == STEP_FILES
    assert validate_report({**what(), **details()}, files[:MAX_ATTACHMENTS], TODAY).ok
