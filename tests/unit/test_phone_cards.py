"""Issue 9 point 5, the card side: the receipt leads with what changes the sender's work and
folds the rest behind "Vis alle regler"; the form folds its optional fields behind "Flere
detaljer", opens them when one has an error, and never drops what was typed there.
The browser measurement at 390 px is tests/e2e/test_phone_layout_browser.py."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest

from dialogs.needs_report import DETAIL_FIELDS, REQUIRED_FIELDS, form_card, intake_card, summary_card
from dialogs.services import Services
from procurement.needs.assessment import (
    LEAD_LIMIT,
    LEAD_PRIORITY,
    CoverReason,
    FrameworkAgreementHit,
    NeedsReportFacts,
    assess,
    lead_indices,
)
from procurement.needs.fields import NEEDS_REPORT_FIELDS
from procurement.needs.record import NeedsReport
from tests.cardcheck import validate_card
from tests.connector_stub import card_texts

TODAY = date(2026, 11, 28)


# -- helpers -----------------------------------------------------------------------------------


def _nodes(node: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(node, dict):
        out.append(node)
        for value in node.values():
            out += _nodes(value)
    elif isinstance(node, list):
        for value in node:
            out += _nodes(value)
    return out


def _by_id(card: dict[str, Any], element_id: str) -> dict[str, Any]:
    [found] = [n for n in _nodes(card["body"]) if n.get("id") == element_id]
    return found


def _visible(node: Any) -> Any:
    """The card as first drawn: elements with isVisible false removed."""
    if isinstance(node, dict):
        return {k: _visible(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_visible(v) for v in node if not (isinstance(v, dict) and v.get("isVisible") is False)]
    return node


def _text(card: Any) -> str:
    return "\n".join(card_texts(card))


def _toggles(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in _nodes(card["body"]) if n.get("type") == "Action.ToggleVisibility"]


def _input_ids(node: Any) -> list[str]:
    return [n["id"] for n in _nodes(node) if str(n.get("type", "")).startswith("Input.")]


def _report(
    facts: NeedsReportFacts, hits: tuple[FrameworkAgreementHit, ...] = (), status: str = "submitted"
) -> NeedsReport:
    assessment = assess(facts, TODAY, hits)
    return NeedsReport(
        ref="BM-2026-0007",
        status=status,
        submitter_aad_id="aad-kari",
        submitter_name="Kari Nordmann",
        title=facts.title,
        service_area="helse_mestring",
        category=facts.category,
        estimated_value=facts.estimated_value,
        data={"need": facts.need, "agreement_type": "single", "start_date": "2027-03-01", "duration_months": 24},
        assessment=assessment.to_dict(),
        created_at=datetime(2026, 11, 28, 9, 0, tzinfo=UTC),
    )


CLEANING = NeedsReportFacts(
    estimated_value=6_000_000,
    category="services",
    title="Renhold av sykehjem",
    need="Daglig renhold av tre sykehjem",
    duration_months=24,
    option_months=24,
)
SMALL = NeedsReportFacts(estimated_value=60_000, category="goods", title="Kontorstoler", need="Nye stoler")
AGREEMENT = FrameworkAgreementHit(
    "RA-2024-017",
    "Rammeavtale renholdstjenester",
    "Renhold AS",
    "services",
    reasons=(CoverReason("title"),),
    strength=1,
)


# -- the priority ------------------------------------------------------------------------------


def test_lead_is_by_priority_at_most_three_rest_in_order() -> None:
    codes = ["run_by_procurement", "kgv", "doffin", "competition_strategy", "wage_conditions", "faggruppe", "ted"]
    lead = lead_indices(codes)
    assert [codes[i] for i in lead] == ["ted", "doffin", "wage_conditions"]
    assert len(lead) == LEAD_LIMIT


def test_framework_agreement_and_below_threshold_lead_before_everything() -> None:
    codes = ["framework_agreement", "run_by_procurement", "kgv", "doffin", "ted", "fossil_vehicles"]
    assert [codes[i] for i in lead_indices(codes)] == ["framework_agreement", "fossil_vehicles", "ted"]
    codes = ["below_reporting_threshold", "wage_conditions", "fossil_vehicles", "faggruppe"]
    assert [codes[i] for i in lead_indices(codes)] == [
        "below_reporting_threshold",
        "fossil_vehicles",
        "wage_conditions",
    ]


def test_too_few_deciding_rules_are_topped_up_in_assessment_order() -> None:
    codes = ["run_by_procurement", "competition_strategy", "faggruppe", "staff_representatives", "kgv"]
    assert [codes[i] for i in lead_indices(codes)] == ["kgv", "run_by_procurement"]
    codes = ["run_by_procurement", "faggruppe", "staff_representatives", "market_dialogue"]
    assert lead_indices(codes) == [0, 1]


@pytest.mark.parametrize("count", [0, 1, 2, 3])
def test_three_or_fewer_all_lead(count: int) -> None:
    codes = ["faggruppe", "kgv", "staff_representatives"][:count]
    assert sorted(lead_indices(codes)) == list(range(count))


def test_every_lead_code_is_a_real_consequence_code() -> None:
    from procurement.needs.rules import default_rules

    codes = {t.code for t in default_rules().templates.values()}
    assert set(LEAD_PRIORITY) <= codes, set(LEAD_PRIORITY) - codes
    assert len(set(LEAD_PRIORITY)) == len(LEAD_PRIORITY)


# -- the receipt -------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["nb", "en"])
def test_receipt_leads_with_what_changes_the_senders_work(lang: str) -> None:
    report = _report(CLEANING)
    consequences = report.assessment["consequences"]
    assert len(consequences) > 8  # the long list this is about
    card = summary_card(report, lang)
    validate_card(card)
    hidden = _by_id(card, "nr_more_rules")
    assert hidden["isVisible"] is False
    first_screen = _text(_visible(card))
    by_code = {c["code"]: c["text"][lang] for c in consequences}
    lead_codes = [consequences[i]["code"] for i in lead_indices([c["code"] for c in consequences])]
    assert lead_codes == ["ted", "doffin", "serious_employer"]
    for code in lead_codes:
        assert by_code[code] in first_screen, code
    for code in set(by_code) - set(lead_codes):
        assert by_code[code] not in first_screen, code
        assert by_code[code] in _text(hidden), code
    # Each rule once in the card, none lost.
    everything = _text(card)
    assert all(everything.count(text) == 1 for text in by_code.values())
    [toggle] = _toggles(card)
    assert toggle["targetElements"] == ["nr_more_rules"]
    label = "Vis alle regler" if lang == "nb" else "Show all rules"
    assert toggle["title"] == f"{label} ({len(consequences)})"


def test_receipt_with_a_covering_agreement_leads_with_it_and_keeps_the_withdraw_button() -> None:
    report = _report(CLEANING, (AGREEMENT,))
    card = summary_card(report, "nb")
    first = _text(_visible(card))
    assert "Rammeavtale renholdstjenester" in first
    assert "needs_report.withdraw" in [a.get("verb") for a in card.get("actions", [])]


def test_receipt_with_few_rules_has_nothing_to_unfold() -> None:
    report = _report(SMALL)
    assert len(report.assessment["consequences"]) <= LEAD_LIMIT
    card = summary_card(report, "nb")
    validate_card(card)
    assert _toggles(card) == []
    assert not [n for n in _nodes(card["body"]) if n.get("isVisible") is False]
    assert "Verdien (60 000" in _text(card)


def test_intake_card_for_innkjopere_keeps_every_rule_visible() -> None:
    report = _report(CLEANING)
    card = intake_card(report, "nb")
    shown = _text(_visible(card))
    for c in report.assessment["consequences"]:
        assert c["text"]["nb"] in shown
    assert _toggles(card) == []


# -- the form ----------------------------------------------------------------------------------

SERVICES = cast(Services, SimpleNamespace(people_picker=False))


def test_detail_fields_are_the_optional_ones() -> None:
    assert set(DETAIL_FIELDS) == {k for k, spec in NEEDS_REPORT_FIELDS.items() if not spec.required}
    assert set(DETAIL_FIELDS) | REQUIRED_FIELDS == set(NEEDS_REPORT_FIELDS)


@pytest.mark.parametrize("people_picker", [False, True])
def test_fresh_form_folds_the_optional_fields(people_picker: bool) -> None:
    card = form_card(cast(Services, SimpleNamespace(people_picker=people_picker)), "nb")
    validate_card(card)
    details = _by_id(card, "nr_more_details")
    assert details["isVisible"] is False
    assert _input_ids(details) == list(DETAIL_FIELDS)
    assert set(_input_ids(_visible(card))) == REQUIRED_FIELDS
    [toggle] = _toggles(card)
    assert toggle["targetElements"] == ["nr_more_details"] and toggle["title"] == "Flere detaljer (valgfritt)"
    # The folded inputs are the card's: its own submit sends them (no ShowCard sub-card).
    assert not [n for n in _nodes(card) if n.get("type") == "Action.ShowCard"]


def test_values_in_folded_fields_are_kept_and_counted() -> None:
    raw = {"title": "Senger", "cpv": "33192000-2", "risk_notes": "Lang leveringstid", "option_months": "12"}
    card = form_card(SERVICES, "en", raw)
    details = _by_id(card, "nr_more_details")
    assert details["isVisible"] is False  # no error: stays folded, but …
    inputs = {n["id"]: n for n in _nodes(details) if "id" in n}
    assert inputs["cpv"]["value"] == "33192000-2" and inputs["risk_notes"]["value"] == "Lang leveringstid"
    assert inputs["option_months"]["value"] == 12
    # … the button says three are filled in (0 options or an unticked toggle is not "filled").
    assert _toggles(card)[0]["title"] == "More details (3 filled in)"
    plain = form_card(SERVICES, "nb", {"option_months": "0", "budget_secured": "false", "innovation": "false"})
    assert _toggles(plain)[0]["title"] == "Flere detaljer (valgfritt)"


@pytest.mark.parametrize("field", ["cpv", "option_months", "risk_notes"])
def test_an_error_on_a_folded_field_opens_the_section(field: str) -> None:
    errors = {field: {"nb": "Feil her", "en": "Wrong here"}}
    card = form_card(SERVICES, "nb", {field: "x"}, errors=errors)
    validate_card(card)
    details = _by_id(card, "nr_more_details")
    assert details["isVisible"] is True
    assert "Feil her" in _text(_visible(card))


def test_an_error_on_a_required_field_leaves_the_section_folded() -> None:
    card = form_card(SERVICES, "nb", {"cpv": "33192000-2"}, errors={"title": {"nb": "Skriv en tittel"}})
    assert _by_id(card, "nr_more_details")["isVisible"] is False
    assert "Skriv en tittel" in _text(_visible(card))
