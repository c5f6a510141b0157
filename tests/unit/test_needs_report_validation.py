"""Server-side validation of the needs-report card: refusals, verbatim text, never raising."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cards.strings import text
from procurement.needs.assessment import NeedsReportFacts, assess
from procurement.needs.fields import (
    LIMITS,
    MAX_FAGGRUPPE_MEMBERS,
    MAX_MONTHS,
    NEEDS_REPORT_FIELDS,
    SERVICE_AREAS,
)
from procurement.needs.model import NeedsReportInput, contract_value, validate_needs_report
from procurement.needs.rules import CATEGORIES
from procurement.shared.money import MAX_NOK
from tests.needs_forms import FORM_FIELDS

TODAY = date(2026, 6, 1)


def valid(**changes: Any) -> dict[str, Any]:
    """What a card submit sends for a complete form (Toggle values are strings)."""
    raw: dict[str, Any] = {
        "title": "Renhold av barnehager",
        "need": "Barnehagene i sør trenger daglig renhold fra høsten.",
        "service_area": "oppvekst",
        "estimated_value": "1,3 mill",
        "value_basis": "Dagens avtale: 300 000 kr per år",
        "category": "services",
        "cpv": "90911200-8",
        "agreement_type": "framework",
        "start_date": "2026-09-01",
        "duration_months": "24",
        "option_months": "24",
        "replaces_contract": "RA-2022-004",
        "budget_secured": "true",
        "faggruppe": "Kari Nordmann, Ola Nordmann",
        "risk_notes": "Lønns- og arbeidsvilkår i renholdsbransjen",
        "innovation": "false",
        "token": "card-instance-1",
        "verb": "needs_report.submit",
    }
    raw.update(changes)
    return raw


def errors_for(**changes: Any) -> dict[str, dict[str, str]]:
    return validate_needs_report(valid(**changes), TODAY).errors


def only_error(field: str, **changes: Any) -> dict[str, str]:
    errors = errors_for(**changes)
    assert set(errors) == {field}, errors
    message = errors[field]
    assert message["nb"] and message["en"]
    return message


# -- the happy path -------------------------------------------------------------------------


def test_valid_submit_is_normalised_and_typed() -> None:
    result = validate_needs_report(valid(), TODAY)
    assert result.ok and result.errors == {}
    v = result.value
    assert v is not None
    assert v.title == "Renhold av barnehager"
    assert v.estimated_value == 1_300_000
    assert v.start_date == date(2026, 9, 1)
    assert (v.duration_months, v.option_months, v.total_months) == (24, 24, 48)
    assert v.budget_secured is True and v.innovation is False
    assert v.faggruppe == ("Kari Nordmann", "Ola Nordmann")
    assert v.cpv == "90911200-8"
    assert v.replaces_contract == "RA-2022-004"
    assert contract_value(v) == 1_300_000


def test_facts_feed_the_rules() -> None:
    result = validate_needs_report(valid(), TODAY)
    facts = result.facts()
    assert isinstance(facts, NeedsReportFacts)
    assert facts.estimated_value == 1_300_000 and facts.category == "services"
    assert facts.faggruppe == ("Kari Nordmann", "Ola Nordmann")
    assessment = assess(facts, TODAY)
    assert "doffin" in assessment.codes and "serious_employer" in assessment.codes


def test_input_is_json_storable() -> None:
    value = validate_needs_report(valid(), TODAY).value
    assert value is not None
    data = dataclasses.asdict(value)
    data["start_date"] = data["start_date"].isoformat()
    assert json.loads(json.dumps(data))["faggruppe"] == ["Kari Nordmann", "Ola Nordmann"]


def test_optional_fields_may_be_missing_and_unknown_keys_are_ignored() -> None:
    raw = {
        k: v
        for k, v in valid().items()
        if k
        not in (
            "value_basis",
            "cpv",
            "option_months",
            "replaces_contract",
            "budget_secured",
            "faggruppe",
            "risk_notes",
            "innovation",
        )
    }
    raw.update({"extra": {"nested": ["junk"]}, "__proto__": "x", "": None})
    result = validate_needs_report(raw, TODAY)
    assert result.ok, result.errors
    v = result.value
    assert v is not None
    assert (v.value_basis, v.cpv, v.option_months, v.replaces_contract) == ("", None, 0, None)
    assert (v.budget_secured, v.faggruppe, v.risk_notes, v.innovation) == (False, (), "", False)


def test_native_types_are_accepted() -> None:
    result = validate_needs_report(
        valid(
            estimated_value=2_000_000,
            duration_months=12.0,
            option_months=0,
            budget_secured=True,
            innovation=True,
            start_date=date(2026, 9, 1),
        ),
        TODAY,
    )
    assert result.ok, result.errors
    assert result.value is not None and result.value.estimated_value == 2_000_000
    assert result.value.duration_months == 12 and result.value.innovation is True


def test_today_as_datetime_is_tolerated() -> None:
    assert validate_needs_report(valid(), datetime(2026, 6, 1, 12, 0)).ok


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    ["title", "need", "service_area", "estimated_value", "category", "agreement_type", "start_date", "duration_months"],
)
@pytest.mark.parametrize("missing", [None, "", "   ", "_absent_"])
def test_each_required_field_is_refused_when_missing(field: str, missing: Any) -> None:
    raw = valid()
    if missing == "_absent_":
        del raw[field]
    else:
        raw[field] = missing
    errors = validate_needs_report(raw, TODAY).errors
    assert set(errors) == {field}
    assert errors[field]["nb"] and errors[field]["en"]


def test_everything_missing_lists_every_required_field() -> None:
    raws: list[Any] = [{}, None, [], "junk", 42]
    for raw in raws:
        result = validate_needs_report(raw, TODAY)
        assert not result.ok and result.value is None and result.facts() is None
        assert set(result.errors) == {
            "title",
            "need",
            "service_area",
            "estimated_value",
            "category",
            "agreement_type",
            "start_date",
            "duration_months",
        }


def test_start_date_in_the_past_is_refused_today_is_fine() -> None:
    message = only_error("start_date", start_date="2026-05-31")
    assert "tilbake i tid" in message["nb"] and "01.06.2026" in message["nb"]
    assert validate_needs_report(valid(start_date="2026-06-01"), TODAY).ok


@pytest.mark.parametrize(
    "bad",
    ["01.09.2026", "2026-9-1", "2026-13-01", "2026-02-30", "i morgen", "2026-09-01T00:00:00", 20260901, ["2026-09-01"]],
)
def test_start_date_must_be_iso(bad: Any) -> None:
    message = only_error("start_date", start_date=bad)
    # Shown at the date picker: an example as the user reads dates, never ISO.
    assert message["nb"] == "Velg en gyldig dato i datofeltet, for eksempel 01.09.2026."
    assert "2026-09-01" not in message["en"]


def test_start_date_more_than_ten_years_ahead_is_refused() -> None:
    assert "fram i tid" in only_error("start_date", start_date="2037-01-01")["nb"]
    assert validate_needs_report(valid(start_date="2036-06-01"), TODAY).ok


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("0", "større enn 0"),
        (0, "større enn 0"),
        ("-500 000", "negativt"),
        (-5, "negativt"),
        ("1.300", "kan bety både"),
        ("1,300", "kan bety både"),
        ("250 000,50", "uten øre"),
        (1.5, "ikke et helt antall kroner"),
        (float("nan"), "Vi forstod ikke"),
        (True, "Vi forstod ikke"),
        ({"amount": 5}, "Vi forstod ikke"),
        ("mange penger", "Vi forstod ikke"),
        ("1 300 000 inkl. mva", "eksklusive merverdiavgift"),
        (10**13, "urimelig stort"),
        (10**400, "urimelig stort"),
        ("1" * 100_000, "for langt"),
    ],
)
def test_bad_values_are_refused_with_a_message(value: Any, fragment: str) -> None:
    message = only_error("estimated_value", estimated_value=value)
    assert fragment in message["nb"]


@pytest.mark.parametrize(
    ("duration", "options", "field", "fragment"),
    [
        ("241", "0", "duration_months", "20 år"),
        ("0", "0", "duration_months", "minst 1"),
        ("-3", "0", "duration_months", "minst 1"),
        ("12.5", "0", "duration_months", "helt antall"),
        ("tolv", "0", "duration_months", "helt antall"),
        (True, "0", "duration_months", "helt antall"),
        ("24", "-1", "option_months", "negative"),
        ("24", -1, "option_months", "Skriv 0"),
        ("24", "241", "option_months", "240"),
        ("200", "41", "option_months", "til sammen"),
        ("24", "1.5", "option_months", "helt antall"),
    ],
)
def test_durations(duration: Any, options: Any, field: str, fragment: str) -> None:
    message = only_error(field, duration_months=duration, option_months=options)
    assert fragment in message["nb"]


def test_exactly_twenty_years_is_allowed() -> None:
    result = validate_needs_report(valid(duration_months="200", option_months="40"), TODAY)
    assert result.ok and result.value is not None and result.value.total_months == MAX_MONTHS
    assert validate_needs_report(valid(duration_months=240, option_months=""), TODAY).ok


@pytest.mark.parametrize("field", sorted(LIMITS))
def test_over_long_text_is_refused_at_the_limit(field: str) -> None:
    limit = LIMITS[field]
    at_limit = "a" * limit
    assert validate_needs_report(valid(**{field: at_limit}), TODAY).ok
    message = only_error(field, **{field: "a" * (limit + 1)})
    assert str(limit) in message["nb"] and str(limit + 1) in message["nb"]
    huge = only_error(field, **{field: "x" * 100_000})
    assert "for lang" in huge["nb"]


def test_choices_must_come_from_the_list() -> None:
    assert "listen" in only_error("service_area", service_area="Helse og mestring")["nb"]
    assert "listen" in only_error("category", category="food")["nb"]
    assert "listen" in only_error("agreement_type", agreement_type=["framework"])["nb"]


@pytest.mark.parametrize("bad", ["4500000", "45000000-77", "45 000 000", "CPV45000000", 4500000.5])
def test_cpv_format(bad: Any) -> None:
    assert "8 siffer" in only_error("cpv", cpv=bad)["nb"]


def test_cpv_with_and_without_check_digit() -> None:
    for cpv in ("45000000", "45000000-7", " 03000000-1 "):
        result = validate_needs_report(valid(cpv=cpv), TODAY)
        assert result.ok and result.value is not None and result.value.cpv == cpv.strip()


@pytest.mark.parametrize("field", ["budget_secured", "innovation"])
def test_toggles(field: str) -> None:
    for given_value, expected in (
        ("true", True),
        ("false", False),
        ("TRUE", True),
        (True, True),
        (False, False),
        (None, False),
        ("", False),
    ):
        result = validate_needs_report(valid(**{field: given_value}), TODAY)
        assert result.value is not None and getattr(result.value, field) is expected
    assert "ja eller nei" in only_error(field, **{field: "kanskje"})["nb"]
    assert field in errors_for(**{field: 1})


def test_faggruppe_is_split_deduplicated_and_capped() -> None:
    result = validate_needs_report(valid(faggruppe=" Kari ; Ola,Kari,\n Per ,, "), TODAY)
    assert result.value is not None and result.value.faggruppe == ("Kari", "Ola", "Per")
    listed = validate_needs_report(valid(faggruppe=["id-1", "id-2"]), TODAY)
    assert listed.value is not None and listed.value.faggruppe == ("id-1", "id-2")
    twenty = ",".join(f"p{i}" for i in range(MAX_FAGGRUPPE_MEMBERS))
    assert validate_needs_report(valid(faggruppe=twenty), TODAY).ok
    message = only_error("faggruppe", faggruppe=twenty + ",p20")
    assert "20" in message["nb"] and "21" in message["nb"]
    assert "faggruppe" in errors_for(faggruppe=[{"id": 1}])


@pytest.mark.parametrize("bad", ["a\x00b", "a\x1bb", "a\x7fb", "a\ud800b"])
def test_control_characters_are_refused(bad: str) -> None:
    assert "kontrolltegn" in only_error("title", title=bad)["nb"]
    assert "kontrolltegn" in only_error("need", need=bad)["nb"]


def test_non_text_in_text_fields_is_refused() -> None:
    assert "tekst" in only_error("title", title={"$ne": ""})["nb"]
    assert "tekst" in only_error("need", need=["a", "b"])["nb"]
    assert "tekst" in only_error("risk_notes", risk_notes=True)["nb"]
    # A plain number is text enough for a title.
    result = validate_needs_report(valid(title=2026), TODAY)
    assert result.value is not None and result.value.title == "2026"


# -- hostile text is kept verbatim ---------------------------------------------------------------

HOSTILE = [
    "Kontor \"stoler\" & <bord> 'enkelt'",
    "{{title}} {% if x %} ${x} {0} {value} %s %(x)s",
    "**fet** _kursiv_ [lenke](https://evil.example) ![img](x) `kode` # Overskrift",
    "Emoji 🚗🧹✅ og æøå ÆØÅ",
    '"}], "type": "Action.OpenUrl", "url": "https://evil.example',
    "<script>alert(1)</script>",
    "Robert'); DROP TABLE needs_reports;--",
    "Linje 1\nLinje 2\r\n\tinnrykk",
    "\u202eRTL override\u200b zero-width",
    "\\u0000 \\n backslashes \\",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_are_accepted_verbatim(text: str) -> None:
    raw = valid(title=text[:120], need=text, value_basis=text, risk_notes=text, replaces_contract=text[:100])
    result = validate_needs_report(raw, TODAY)
    assert result.ok, result.errors
    v = result.value
    assert v is not None
    assert v.title == text[:120].strip()
    assert v.need == text
    assert v.value_basis == text
    assert v.risk_notes == text
    assert v.replaces_contract == text[:100].strip()


def test_outer_whitespace_is_trimmed_inner_kept() -> None:
    result = validate_needs_report(valid(title="  To  mellomrom  ", need="\n a \n b \n"), TODAY)
    assert result.value is not None
    assert result.value.title == "To  mellomrom"
    assert result.value.need == "a \n b"


# -- constants the card shows ------------------------------------------------------------------


def test_field_ids_labels_and_limits() -> None:
    assert list(NEEDS_REPORT_FIELDS) == FORM_FIELDS
    for field in FORM_FIELDS:
        assert text("nb", f"nr_label_{field}") and text("en", f"nr_label_{field}")
    assert "inkl. opsjoner" in text("nb", "nr_label_estimated_value")
    assert "eks. mva" in text("nb", "nr_label_estimated_value")
    assert LIMITS == {
        "title": 120,
        "need": 4000,
        "value_basis": 1000,
        "risk_notes": 2000,
        "replaces_contract": 100,
        "faggruppe": 2000,
    }
    assert [v for v in SERVICE_AREAS] == [
        "helse_mestring",
        "oppvekst",
        "kultur",
        "teknisk",
        "okonomi",
        "organisasjon",
        "samfunnsutvikling",
        "eiendom",
        "innkjop",
    ]
    assert text("nb", "service_area_okonomi") == "Økonomi og virksomhetsstyring"


# -- property tests --------------------------------------------------------------------------------

_junk = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=50),
        st.dates().map(date.isoformat),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)

# Near-valid submits: every field present, mostly from its valid domain and otherwise just
# outside it (boundaries, wrong choices), so that a good share validates and the invariants
# on valid results are really exercised. (hypothesis' one_of picks branches about evenly;
# repeating a branch weights it.)
_safe_chars = st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\n\t")


def _text_field(limit: int, required: bool) -> st.SearchStrategy[str]:
    good = st.text(_safe_chars, min_size=1 if required else 0, max_size=limit)
    edge = st.one_of(st.text(max_size=limit + 5), st.text(_safe_chars, min_size=limit - 2, max_size=limit + 2))
    return st.one_of(good, good, good, edge)


_near_valid = {
    "title": _text_field(120, True),
    "need": _text_field(300, True),
    "service_area": st.sampled_from([v for v in SERVICE_AREAS] + ["ukjent"]),
    "estimated_value": st.one_of(
        st.sampled_from(
            [
                "1 300 000",
                "1,3 mill",
                "250'",
                "99 999",
                "2 MNOK",
                "0",
                "1.300",
                "-1",
                "kr 1.300.000,-",
                "1 000 000 000 000",
                "1 000 000 000 001",
            ]
        ),
        st.integers(min_value=-10, max_value=10**13),
        st.integers(min_value=1, max_value=10**12).map(lambda n: f"{n:,}".replace(",", " ")),
    ),
    "category": st.sampled_from([*CATEGORIES, *CATEGORIES, "food"]),
    "cpv": st.one_of(st.none(), st.just(""), st.from_regex(r"\A[0-9]{8}(-[0-9])?\Z"), st.text(max_size=12)),
    "agreement_type": st.sampled_from(["framework", "single", "framework", "single", "other"]),
    "start_date": st.dates(min_value=TODAY - timedelta(days=10), max_value=TODAY + timedelta(days=3700)).map(
        date.isoformat
    ),
    "duration_months": st.one_of(st.integers(1, 120), st.integers(1, 120).map(str), st.integers(-2, 250)),
    "option_months": st.one_of(st.none(), st.integers(0, 120).map(str), st.integers(-2, 250)),
    "replaces_contract": _text_field(100, False),
    "budget_secured": st.sampled_from(["true", "false", True, False, None]),
    "faggruppe": st.one_of(
        st.text(alphabet="abc ,;", max_size=80), st.lists(st.text(_safe_chars, max_size=8), max_size=22)
    ),
    "risk_notes": _text_field(2000, False),
    "innovation": st.sampled_from(["true", "false", None]),
}


def _check_invariants(raw: Any) -> None:
    result = validate_needs_report(raw, TODAY)
    for field, message in result.errors.items():
        assert field in NEEDS_REPORT_FIELDS
        assert isinstance(message["nb"], str) and message["nb"]
        assert isinstance(message["en"], str) and message["en"]
    if result.errors:
        assert result.value is None
        return
    v = result.value
    assert isinstance(v, NeedsReportInput)
    assert 0 < v.estimated_value <= MAX_NOK
    assert v.start_date >= TODAY
    assert 1 <= v.duration_months <= MAX_MONTHS
    assert 0 <= v.option_months and v.duration_months + v.option_months <= MAX_MONTHS
    for field, limit in LIMITS.items():
        value = getattr(v, field)
        text = ",".join(value) if isinstance(value, tuple) else (value or "")
        assert len(text) <= limit, field
    assert v.title.strip() and v.need.strip()
    assert len(v.faggruppe) <= MAX_FAGGRUPPE_MEMBERS
    assert v.category in CATEGORIES
    assert v.agreement_type in ("framework", "single")
    assert v.service_area in {a for a in SERVICE_AREAS}
    assert isinstance(v.budget_secured, bool) and isinstance(v.innovation, bool)
    assert v.facts().estimated_value == v.estimated_value
    assess(v.facts(), TODAY)  # whatever validates can be assessed


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.one_of(st.sampled_from(FORM_FIELDS), st.text(max_size=10)), _junk, max_size=20))
def test_random_dicts_never_raise(raw: dict[str, Any]) -> None:
    _check_invariants(raw)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries(_near_valid))
def test_near_valid_submits_never_raise_and_valid_ones_satisfy_the_rules(raw: dict[str, Any]) -> None:
    _check_invariants(raw)


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({}, optional={k: st.one_of(v, _junk) for k, v in _near_valid.items()}))
def test_partial_junk_submits_never_raise(raw: dict[str, Any]) -> None:
    _check_invariants(raw)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(FORM_FIELDS), _junk)
def test_one_junk_field_in_a_valid_form(field: str, junk: Any) -> None:
    _check_invariants(valid(**{field: junk}))
