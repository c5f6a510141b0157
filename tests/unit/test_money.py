"""parse_nok / format_nok: Norwegian ways of writing money, and precise refusals."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procurement.shared.money import MAX_NOK, NBSP, format_nok, parse_nok

ACCEPTED = [
    ("1 300 000", 1_300_000),
    ("1300000", 1_300_000),
    ("1300000 kr", 1_300_000),
    ("kr 1.300.000,-", 1_300_000),
    ("kr. 1.300.000,-", 1_300_000),
    ("1.300.000", 1_300_000),
    ("1 300 000,-", 1_300_000),
    ("1,3 mill", 1_300_000),
    ("1,3 millioner", 1_300_000),
    ("1.3 mill", 1_300_000),
    ("1,3 mill.", 1_300_000),
    ("1,25 mill", 1_250_000),
    ("250'", 250_000),
    ("250 '", 250_000),
    ("250\u2019", 250_000),  # typographic apostrophe
    ("250k", 250_000),
    ("250 tusen", 250_000),
    ("250 000,00", 250_000),
    ("250 000,0", 250_000),
    ("2 MNOK", 2_000_000),
    ("2 mnok", 2_000_000),
    ("MNOK 2,5", 2_500_000),
    ("NOK 2 mill.", 2_000_000),
    ("2 mill. kr", 2_000_000),
    ("2 millioner kroner", 2_000_000),
    ("1,5 mrd", 1_500_000_000),
    ("1,5 milliarder", 1_500_000_000),
    ("1\u00a0300\u00a0000", 1_300_000),  # non-breaking spaces
    ("1\u2009300\u2009000", 1_300_000),  # thin spaces
    ("1\u202f300\u202f000 kr", 1_300_000),  # narrow non-breaking spaces
    ("1 300 000 eks. mva", 1_300_000),
    ("1 300 000 kr eks mva", 1_300_000),
    ("1 300 000 ekskl. mva.", 1_300_000),
    ("1 000 000 + mva", 1_000_000),
    ("1,300,000", 1_300_000),  # English grouping, consistent
    ("1,300,000.00", 1_300_000),
    ("1.300.000,00", 1_300_000),
    ("ca. 500 000", 500_000),
    ("  500000  ", 500_000),
    ("NOK 1,300,000", 1_300_000),  # format_nok(…, "en") reads back
    ("999", 999),
    ("1", 1),
    ("1 000 000 000 000", MAX_NOK),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepts_norwegian_ways_of_writing_money(text: str, expected: int) -> None:
    result = parse_nok(text)
    assert result.ok, result.messages
    assert result.value == expected
    assert result.code is None


REFUSED = [
    ("", "empty", "Skriv inn anslått verdi"),
    ("   ", "empty", "Skriv inn anslått verdi"),
    ("1.300", "ambiguous", "«1.300» kan bety både 1 300 kr og 1,3 mill"),
    ("1,300", "ambiguous", "Skriv 1 300 for"),
    ("12.500", "ambiguous", "12,5 mill"),
    ("1,300 mill", "ambiguous", "Skriv 1,3 mill"),
    ("NOK 1,300", "ambiguous", "kan bety"),
    ("250 000,50", "ore", "hele kroner uten øre, for eksempel 250 000"),
    ("1,3", "ore", "Mente du 1,3 mill"),
    ("1,0000005 mill", "ore", "ikke et helt antall kroner"),
    ("-500 000", "negative", "kan ikke være negativt"),
    ("\u2212500 000", "negative", "kan ikke være negativt"),
    ("kr -500", "negative", "kan ikke være negativt"),
    ("minus 5", "negative", "kan ikke være negativt"),
    ("0", "zero", "større enn 0"),
    ("0 kr", "zero", "større enn 0"),
    ("0,00", "zero", "større enn 0"),
    ("abc", "invalid", "Vi forstod ikke beløpet"),
    ("fem hundre tusen", "invalid", "for eksempel 1 300 000"),
    ("2 billioner", "invalid", "Vi forstod ikke"),
    ("1 000 000 000 001", "too_large", "urimelig stort"),
    ("5000 mrd", "too_large", "urimelig stort"),
    ("9" * 60, "too_large", "urimelig stort"),
    ("1" * 65, "too_long", "for langt"),
    ("1300 000", "grouping", "tallgrupperingen"),
    ("1 30 000", "grouping", "tallgrupperingen"),
    ("1,300.000,5", "grouping", "tallgrupperingen"),
    ("1.3.000", "grouping", "tallgrupperingen"),
    ("1 300.000.000", "grouping", "tallgrupperingen"),
    ("500 000 - 800 000", "range", "ikke et spenn"),
    ("1-2 mill", "range", "ikke et spenn"),
    ("1 300 000 inkl. mva", "vat", "eksklusive merverdiavgift"),
    ("1 300 000 mva", "vat", "eksklusive merverdiavgift"),
    ("mnok 2 mill", "invalid", "enheten står to ganger"),
]


@pytest.mark.parametrize(("text", "code", "nb_fragment"), REFUSED)
def test_refuses_with_a_precise_message(text: str, code: str, nb_fragment: str) -> None:
    result = parse_nok(text)
    assert not result.ok
    assert result.value is None
    assert result.code == code
    assert nb_fragment in result.messages["nb"]
    assert result.messages["en"] and result.messages["en"] != result.messages["nb"]
    assert result.message("en") == result.messages["en"]


def test_ambiguous_message_names_both_readings_exactly() -> None:
    result = parse_nok("1.300")
    nb = result.messages["nb"]
    assert nb == (
        "«1.300» kan bety både 1 300 kr og 1,3 mill (1 300 000 kr). "
        "Skriv 1 300 for 1 300 kr, eller 1,3 mill for 1 300 000 kr."
    )
    en = result.messages["en"]
    assert "NOK 1,300" in en and "NOK 1,300,000" in en


def test_input_that_is_neither_text_nor_a_number_is_refused_not_raised() -> None:
    for value in (None, True, ["1"], {"a": 1}):
        result = parse_nok(value)  # type: ignore[arg-type]
        assert result.code == "invalid"


@pytest.mark.parametrize(
    ("value", "code", "rounded"),
    [
        (5, None, 5),
        (1_250_000, None, 1_250_000),
        (1_250_000.0, None, 1_250_000),
        (Decimal("1250000.00"), None, 1_250_000),
        (1_250_000.49, "ore", 1_250_000),
        (3_400_000.5, "ore", 3_400_001),
        (1.5, "ore", None),
        (0, "zero", None),
        (-5, "negative", None),
        (float("nan"), "invalid", None),
        (float("inf"), "invalid", None),
        (Decimal("Infinity"), "invalid", None),
        (10**13, "too_large", None),
    ],
)
def test_numbers_from_cells_follow_the_same_rules(value: float, code: str | None, rounded: int | None) -> None:
    strict = parse_nok(value)
    assert strict.code == code
    assert strict.value == (None if code else value)
    lenient = parse_nok(value, ore="round")
    assert lenient.value == rounded
    assert lenient.ok == (rounded is not None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 250 000,50", 1_250_001),
        ("1 250 000,49", 1_250_000),
        ("1 250 000,00", 1_250_000),
        ("1,250,000.50", 1_250_001),
        ("kr 1 250 000,-", 1_250_000),
        ("1 250 000 (eks. mva)", 1_250_000),
        ("1000,5", 1001),
        ("1,0000005 mill", 1_000_001),
        ("1,25 mill", 1_250_000),
    ],
)
def test_round_mode_rounds_ore_half_up(text: str, expected: int) -> None:
    assert parse_nok(text, ore="round").value == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("1,3", "ore"),
        ("999,5", "ore"),
        ("1.300", "ambiguous"),
        ("0", "zero"),
        ("0,4", "ore"),
        ("-1 000,5", "negative"),
    ],
)
def test_round_mode_still_refuses_what_is_not_a_clear_amount(text: str, code: str) -> None:
    # "1,3" is more likely a forgotten "mill" than 1 kr; "1.300" may mean 1 300 or 1,3 mill.
    assert parse_nok(text, ore="round").code == code


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_round_mode_accepts_everything_the_strict_mode_accepts(text: str) -> None:
    strict = parse_nok(text)
    if strict.ok:
        assert parse_nok(text, ore="round").value == strict.value


def test_format_nok_nb() -> None:
    assert format_nok(1_300_000) == "1 300 000 kr"
    assert format_nok(999) == "999 kr"
    assert format_nok(100_000, "nb") == "100 000 kr"
    assert format_nok(1_300_000, nbsp=True) == "1\u00a0300\u00a0000\u00a0kr"
    assert format_nok(1_300_000, nbsp=True).replace(NBSP, " ") == "1 300 000 kr"


def test_format_nok_en() -> None:
    assert format_nok(1_300_000, "en") == "NOK 1,300,000"
    assert format_nok(57_800_000, "en") == "NOK 57,800,000"
    assert format_nok(5, "en") == "NOK 5"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_parse_nok_never_raises_on_any_text(text: str) -> None:
    result = parse_nok(text)
    assert result.ok or (result.code and result.messages["nb"] and result.messages["en"])
    if result.ok:
        assert result.value is not None and 0 < result.value <= MAX_NOK


_money_alphabet = st.sampled_from(
    [*"0123456789 .,'-kKrRmMnNoOillæøå\u00a0\u2009\u2212+~", "mill", "mrd", "kr", "eks. mva", ",-"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_money_alphabet, max_size=20).map("".join))
def test_parse_nok_never_raises_on_money_like_text(text: str) -> None:
    result = parse_nok(text)
    assert result.ok or result.code is not None
    if result.ok:
        assert result.value is not None and 0 < result.value <= MAX_NOK


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=10**11), st.booleans())
def test_format_then_parse_round_trips_nb(n: int, nbsp: bool) -> None:
    assert parse_nok(format_nok(n, "nb", nbsp=nbsp)).value == n


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.integers(min_value=1, max_value=999), st.integers(min_value=10**6, max_value=10**11)))
def test_format_then_parse_round_trips_en(n: int) -> None:
    # NOK 1,000 … NOK 999,999 ("NOK 1,300") is deliberately refused as ambiguous.
    assert parse_nok(format_nok(n, "en")).value == n


def test_en_format_with_one_group_is_ambiguous_by_design() -> None:
    assert parse_nok(format_nok(1_300, "en")).code == "ambiguous"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(), st.floats(), st.decimals()), st.sampled_from(["refuse", "round"]))
def test_parse_nok_never_raises_on_any_number(value: float, ore: Literal["refuse", "round"]) -> None:
    result = parse_nok(value, ore=ore)
    assert result.ok or (result.code and result.messages["nb"] and result.messages["en"])
    if result.ok:
        assert result.value is not None and 0 < result.value <= MAX_NOK
