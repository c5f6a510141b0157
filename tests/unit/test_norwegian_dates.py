"""Issue 9 point 6: dates on cards are Norwegian (dd.mm.yyyy), and the intake card shows how the
value was estimated next to the value.

The rule itself lives in `tests/cardcheck.py` (`validate_card`): every card the unit and
integration tests validate — every card the HTTP harness sees the bot send — fails on an ISO
date in shown text (TextBlock, FactSet). Input.Date values stay ISO (the card format).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from cards.render import render_card
from dialogs.needs_report import intake_card, summary_card
from procurement.needs.assessment import NeedsReportFacts, assess
from procurement.needs.record import NeedsReport
from tests.cardcheck import card_problems, validate_card
from tests.connector_stub import card_texts

TODAY = date(2026, 11, 28)
FACTS = NeedsReportFacts(
    estimated_value=1_300_000, category="services", title="Matombringing", need="Varm mat til hjemmeboende"
)


def _report(**data: Any) -> NeedsReport:
    return NeedsReport(
        ref="BM-2026-0012",
        status="submitted",
        submitter_aad_id="aad-kari",
        submitter_name="Kari Nordmann",
        title=FACTS.title,
        service_area="helse_mestring",
        category=FACTS.category,
        estimated_value=FACTS.estimated_value,
        data={"need": FACTS.need, "agreement_type": "single", "duration_months": 48, **data},
        assessment=assess(FACTS, TODAY).to_dict(),
        created_at=datetime(2026, 11, 28, 9, 0, tzinfo=UTC),
    )


def _facts(card: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "FactSet":
                out.extend((f["title"], f["value"]) for f in node["facts"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return out


@pytest.mark.parametrize("lang", ["nb", "en"])
def test_the_intake_card_shows_the_start_as_a_norwegian_date(lang: str) -> None:
    card = intake_card(_report(start_date="2027-04-01", value_basis="Dagens avtale: 320 000 kr i året"), lang)
    validate_card(card)
    shown = "\n".join(card_texts(card))
    assert "01.04.2027" in shown
    assert "2027-04-01" not in shown


@pytest.mark.parametrize(("lang", "label"), [("nb", "Verdigrunnlag"), ("en", "Basis of the value")])
def test_the_intake_card_shows_the_value_basis_right_under_the_value(lang: str, label: str) -> None:
    card = intake_card(_report(start_date="2027-04-01", value_basis="Dagens avtale: 320 000 kr i året"), lang)
    facts = _facts(card)
    titles = [title for title, _ in facts]
    at = titles.index(label)
    assert facts[at][1] == "Dagens avtale: 320 000 kr i året"
    assert facts[at - 1][1] in ("1 300 000 kr", "NOK 1,300,000")  # the value, then its basis


def test_no_basis_no_empty_basis_line_and_the_receipt_stays_short() -> None:
    assert "Verdigrunnlag" not in [t for t, _ in _facts(intake_card(_report(start_date="2027-04-01"), "nb"))]
    receipt = summary_card(_report(start_date="2027-04-01", value_basis="Tre tilbud"), "nb")
    assert "Verdigrunnlag" not in [t for t, _ in _facts(receipt)]  # the sender knows how she estimated it


def test_a_start_that_is_not_an_iso_date_is_shown_as_given() -> None:
    card = intake_card(_report(start_date=""), "nb")
    validate_card(card)


@pytest.mark.parametrize(
    "shown",
    ["Avtalen utløper 2027-04-01.", "Frist: 2027-01-31", "(1999-12-31)"],
)
def test_an_iso_date_in_shown_text_is_a_card_problem(shown: str) -> None:
    card = render_card("notice", "nb", title="Påminnelse", body=shown)
    assert any("shows an ISO date" in p for p in card_problems(card)), card_problems(card)
    facts = {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "FactSet", "facts": [{"title": "Slutt", "value": shown}]}],
    }
    assert any("shows an ISO date" in p for p in card_problems(facts))


@pytest.mark.parametrize("shown", ["Avtalen utløper 01.04.2027.", "Referanse KAV-2024-0012", "Org.nr 974760673"])
def test_norwegian_dates_and_references_are_fine(shown: str) -> None:
    assert card_problems(render_card("notice", "nb", title="Påminnelse", body=shown)) == []


def test_input_date_values_stay_iso() -> None:
    card = {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "Input.Date", "id": "start_date", "label": "Oppstart", "value": "2027-04-01"}],
    }
    assert card_problems(card) == []
