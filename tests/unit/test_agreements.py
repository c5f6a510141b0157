"""Which framework agreements cover a needs report: real CPV groups, words, never the category."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from procurement.needs.agreements import (
    Agreement,
    best_cpv_match,
    default_cpv_names,
    load_cpv_names,
    match_agreement,
    match_agreements,
    same_word,
    stem,
    subject_words,
)
from procurement.needs.assessment import FrameworkAgreementHit, NeedsReportFacts, assess

TODAY = date(2026, 6, 1)


def agreement(ref: str, title: str, cpv: tuple[str, ...] = (), scope: str = "", **kw: Any) -> Agreement:
    kw.setdefault("category", "goods")
    kw.setdefault("start_date", date(2025, 1, 1))
    kw.setdefault("end_date", date(2027, 12, 31))
    return Agreement(contract_ref=ref, title=title, supplier=f"{title} AS", cpv_codes=cpv, scope=scope, **kw)


WORK_CLOTHES = agreement("RA-2024-001", "Arbeidsklær", ("18100000-0",), "Arbeidsklær og vernesko til ansatte")
OFFICE = agreement(
    "RA-2024-002", "Kontorrekvisita", ("30192000-1", "30197000"), "Papir, penner og småutstyr til kontor"
)
FOOD = agreement("RA-2024-003", "Matvarer", ("15800000-6",), "Tørrvarer og bakervarer til kjøkken i barnehager")
MEDICAL_BEDS = agreement(
    "RA-2025-010", "Sykehjemssenger", ("33192100",), "Elektriske pleiesenger og madrasser til institusjoner"
)
CLEANING_SERVICES = agreement(
    "RA-2024-020", "Renholdstjenester", ("90911200-8",), "Renhold av kommunale bygg", category="services"
)
GOODS_AGREEMENTS = [WORK_CLOTHES, OFFICE, FOOD]


def report(title: str, need: str = "", cpv: str | None = None, category: str = "goods") -> NeedsReportFacts:
    return NeedsReportFacts(estimated_value=400_000, category=category, title=title, need=need, cpv=cpv)


BEDS = report(
    "Elektriske senger til sykehjem",
    "Sykehjemmet trenger 40 elektriske senger som kan heves og senkes, med madrass.",
    cpv="33192000-2",
)


def refs(hits: list[FrameworkAgreementHit]) -> list[str]:
    return [h.contract_ref for h in hits]


def reasons_nb(hit: FrameworkAgreementHit) -> list[str]:
    return [r.text("nb") for r in hit.reasons]


# -- the case: beds are not clothes, paper or food -------------------------------------


def test_electric_beds_are_not_covered_by_clothes_office_supplies_or_food() -> None:
    assert match_agreements(BEDS, TODAY, GOODS_AGREEMENTS) == []
    # ... and the assessment then says nothing about agreements at all
    result = assess(BEDS, TODAY, match_agreements(BEDS, TODAY, GOODS_AGREEMENTS))
    assert "framework_agreement" not in result.codes
    assert not any("avtale" in c.text["nb"].split(":")[0] for c in result.consequences if c.code == "framework")


def test_electric_beds_are_covered_by_the_bed_agreement_and_told_why() -> None:
    [hit] = match_agreements(BEDS, TODAY, [*GOODS_AGREEMENTS, MEDICAL_BEDS])
    assert hit.contract_ref == "RA-2025-010"
    assert reasons_nb(hit)[0] == "samme CPV-kategori 33192 Medisinske møbler"
    assert "tittelen ligner" in reasons_nb(hit)
    assert hit.reasons[0].text("en") == "same CPV category 33192 Medical furniture"

    text = assess(BEDS, TODAY, [hit]).consequences[0].text
    assert "«Sykehjemssenger»" in text["nb"] and "samme CPV-kategori 33192 Medisinske møbler" in text["nb"]
    assert "Arbeidsklær" not in text["nb"] and "Kontorrekvisita" not in text["nb"]
    assert "same CPV category 33192 Medical furniture, the title is similar" in text["en"]


def test_office_supplies_report_matches_the_office_supplies_agreement_by_class() -> None:
    paper = report("Kopipapir og permer", "Papir til skriverne og arkivpermer.", cpv="30199000")
    [hit] = match_agreements(paper, TODAY, [*GOODS_AGREEMENTS, MEDICAL_BEDS])
    assert hit.contract_ref == OFFICE.contract_ref
    assert reasons_nb(hit)[0] == "samme CPV-klasse 3019 Diverse kontorutstyr og -rekvisita"


def test_the_deeper_the_cpv_match_the_stronger() -> None:
    office = report("Kontorrekvisita", cpv="30192000")
    same_category = match_agreement(office, OFFICE)
    same_class = match_agreement(office, agreement("RA-9", "Rekvisita", ("30190000",)))
    assert same_category is not None and same_class is not None
    assert same_category.strength > same_class.strength
    hits = match_agreements(office, TODAY, [agreement("RA-9", "Rekvisita", ("30190000",)), OFFICE])
    assert refs(hits) == [OFFICE.contract_ref, "RA-9"]


@pytest.mark.parametrize(
    ("report_code", "agreement_code", "prefix", "level", "alone"),
    [
        ("33192000", "33192100", "33192", "category", True),
        ("30192000", "30190000", "3019", "class", True),
        ("39130000", "39100000", "391", "group", True),  # the agreement holds the whole group
        ("33192000", "33141000", "331", "group", False),  # consumables and beds only meet in 331
        ("33192000", "33600000", "33", "division", False),  # medicines: division only
        ("15810000", "15800000", "158", "group", True),
        ("15800000", "15810000", "158", "group", False),  # the agreement holds only a part
    ],
)
def test_cpv_levels(report_code: str, agreement_code: str, prefix: str, level: str, alone: bool) -> None:
    found = best_cpv_match(report_code, [agreement_code])
    assert found is not None
    assert (found.prefix, found.level, found.alone) == (prefix, level, alone)


def test_a_division_alone_is_not_enough_but_with_a_word_it_is() -> None:
    medicines = agreement("RA-2024-030", "Legemidler", ("33600000",), "Legemidler til sykehjem og helsestasjoner")
    assert match_agreement(BEDS, medicines) is None  # same division 33, "sykehjem" only in the need
    beds_in_33 = agreement("RA-2024-031", "Senger og madrasser", ("33000000",))
    hit = match_agreement(BEDS, beds_in_33)
    assert hit is not None
    assert reasons_nb(hit)[0].startswith("samme CPV-divisjon 33 Medisinsk utstyr")
    assert "tittelen ligner" in reasons_nb(hit)


def test_title_only_match() -> None:
    paper = report("Kontorrekvisita til skolene", "Vi trenger penner og tusjer.")
    [hit] = match_agreements(paper, TODAY, [agreement("RA-1", "Kontorrekvisita"), WORK_CLOTHES, FOOD])
    assert hit.contract_ref == "RA-1"
    assert reasons_nb(hit) == ["tittelen ligner"]
    assert [r.text("en") for r in hit.reasons] == ["the title is similar"]


def test_scope_words_support_a_title_match_and_say_which() -> None:
    paper = report("Kontorrekvisita til skolene", "Vi trenger penner, papir og tusjer.")
    [hit] = match_agreements(paper, TODAY, [OFFICE])
    assert reasons_nb(hit) == ["tittelen ligner", "avtalen nevner «penner», «papir»"]


def test_words_from_the_need_alone_are_not_enough() -> None:
    # One shared word in the need ("papir") does not make a bed agreement an office agreement.
    assert match_agreement(report("Skrivere", "Skrivere med papir"), MEDICAL_BEDS) is None
    assert match_agreement(report("Skrivere", "Skrivere med papir"), OFFICE) is None


def test_report_without_cpv_is_matched_by_words_to_an_agreement_with_cpv() -> None:
    beds = report("Nye senger", "Sykehjemmet trenger elektriske senger med madrass.")
    [hit] = match_agreements(beds, TODAY, [*GOODS_AGREEMENTS, MEDICAL_BEDS])
    assert hit.contract_ref == MEDICAL_BEDS.contract_ref
    assert not any(r.kind == "cpv" for r in hit.reasons)
    assert "tittelen ligner" in reasons_nb(hit)


def test_the_category_alone_never_matches() -> None:
    # Same category, no shared code, no shared word: nothing.
    chairs = report("Kontorstoler", "Hev-senk-stoler til saksbehandlerne.", cpv="39112000")
    assert match_agreements(chairs, TODAY, GOODS_AGREEMENTS) == []
    # A hit without reasons (as the old category lookup made) is not shown either.
    bare = FrameworkAgreementHit("RA-2024-002", "Kontorrekvisita", "Kontor AS", "goods", date(2027, 12, 31))
    assert "framework_agreement" not in assess(chairs, TODAY, [bare]).codes


def test_describing_words_do_not_match_alone() -> None:
    cars = agreement("RA-2024-040", "Elektriske kjøretøy", ("34144900",))
    assert match_agreement(report("Elektriske senger"), cars) is None


def test_codes_of_different_divisions_need_more_than_a_similar_title() -> None:
    # Beds for the staff housing (furniture, 39) vs medical beds (33): titles alike, codes not.
    home_beds = agreement("RA-2024-050", "Senger", ("39143110",), category="goods")
    assert match_agreement(report("Senger", cpv="33192120"), home_beds) is None
    assert (
        match_agreement(
            report("Senger", "Senger og madrasser", cpv="33192120"),
            agreement("RA-2024-051", "Senger", ("39143110",), "Senger og madrasser til boliger"),
        )
        is not None
    )


def test_expired_future_and_single_contracts_are_ignored() -> None:
    expired = agreement("RA-2020-001", "Sykehjemssenger", ("33192100",), end_date=date(2026, 5, 31))
    future = agreement("RA-2027-001", "Sykehjemssenger", ("33192100",), start_date=date(2026, 6, 2))
    single = agreement("KAV-2025-001", "Sykehjemssenger", ("33192100",), agreement_type="single")
    last_day = agreement("RA-2021-001", "Sykehjemssenger", ("33192100",), end_date=TODAY)
    assert refs(match_agreements(BEDS, TODAY, [expired, future, single, last_day])) == ["RA-2021-001"]


def test_services_report_matched_across_categories_only_by_cpv_or_title() -> None:
    cleaning = report("Renhold av skoler", "Daglig renhold av tre skoler.", cpv="90911200", category="services")
    [hit] = match_agreements(cleaning, TODAY, [CLEANING_SERVICES, *GOODS_AGREEMENTS])
    assert hit.contract_ref == CLEANING_SERVICES.contract_ref
    assert reasons_nb(hit)[0] == "samme CPV-kategori 909112 Rengjøring av bygninger"


# -- words --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [("senger", "seng"), ("sengene", "seng"), ("sengen", "seng"), ("madrasser", "madras"), ("sykehjemmet", "sykehjem")],
)
def test_crude_stemming(word: str, expected: str) -> None:
    assert stem(word) == expected


def test_stop_words_generic_heads_and_compounds() -> None:
    assert [w.stem for w in subject_words("Rammeavtale for transporttjenester til og med 2027")] == ["transport"]
    assert [w.stem for w in subject_words("Matvarer")] == ["mat"]
    assert same_word("seng", "sykehjemsseng") and not same_word("mat", "automat")
    assert not same_word("kontorstol", "kontorrekvisit")
    # æ/ø/å and case folded: "MØBLER" and "møbler" are one word
    assert [w.stem for w in subject_words("MØBLER og møbler")] == ["mobl"]


# -- the CPV names --------------------------------------------------------------------------------


def test_cpv_names_are_dated_data_with_both_languages() -> None:
    names = default_cpv_names()
    assert names.edition == "cpv2008"
    assert names.name("33192", "nb") == "Medisinske møbler"
    assert names.name("3019", "en") == "Various office equipment and supplies"
    assert names.name("99999", "nb") == ""
    for code, both in names.names.items():
        assert len(code) == 8 and code.isdigit()
        assert both["nb"] and both["en"]
    # every division is named
    assert {c[:2] for c in names.names if c.endswith("000000")} >= {"03", "15", "18", "30", "33", "45", "85", "90"}
    assert load_cpv_names(on=date(2026, 1, 1)).edition == "cpv2008"


def test_unknown_code_is_shown_by_its_digits_only() -> None:
    odd = agreement("RA-2024-060", "Spesialutstyr", ("37535200",))
    hit = match_agreement(report("Lekeplassutstyr", cpv="37535210"), odd)
    assert hit is not None
    assert reasons_nb(hit)[0] == "samme CPV-kategori 375352"
