"""Rules: dated thresholds, boundaries (>=), order of consequences, category rules."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procurement.needs.agreements import Agreement, match_agreements
from procurement.needs.assessment import (
    CoverReason,
    FrameworkAgreementHit,
    NeedsReportFacts,
    assess,
    detect_cleaning,
    detect_fossil_vehicles,
)
from procurement.needs.rules import (
    CATEGORIES,
    DEFAULT_RULES_PATH,
    SEVERITIES,
    RulesError,
    default_rules,
    load_rules,
    rules_from_dict,
)
from procurement.shared.money import format_nok

TODAY = date(2026, 6, 1)


def facts(value: int, category: str = "goods", **kw: Any) -> NeedsReportFacts:
    kw.setdefault("title", "Kontorrekvisita")
    kw.setdefault("need", "Vi trenger rekvisita til kontorene")
    kw.setdefault("duration_months", 24)
    return NeedsReportFacts(estimated_value=value, category=category, **kw)


def codes(value: int, category: str = "goods", on: date = TODAY, **kw: Any) -> list[str]:
    return assess(facts(value, category, **kw), on).codes


def nb(value: int, code: str, category: str = "goods", on: date = TODAY, **kw: Any) -> str:
    consequence = assess(facts(value, category, **kw), on).get(code)
    assert consequence is not None, code
    return consequence.text["nb"]


# -- the shipped data -------------------------------------------------------------------------


def test_shipped_rules_load_and_hold_the_dated_figures() -> None:
    rules = load_rules()
    assert rules.thresholds_on(TODAY).amounts() == {
        "report_required": 100_000,
        "kgv": 500_000,
        "national": 1_300_000,
        "eea_goods_services": 2_300_000,
        "eea_works": 57_800_000,
        "climate_min_weight": 30,
        "apprentice_min_months": 3,
        "apprentice_min_share": 10,
    }
    national = rules.thresholds_on(TODAY)["national"]
    assert national.valid_from == date(2018, 4, 6)
    assert national.source
    assert load_rules(DEFAULT_RULES_PATH) == rules
    assert default_rules() is default_rules()


def test_thresholds_on_respects_valid_from() -> None:
    rules = load_rules()
    assert rules.thresholds_on(date(2018, 4, 5)).amount("national") is None
    assert rules.thresholds_on(date(2018, 4, 6)).amount("national") == 1_300_000
    assert rules.thresholds_on(date(2024, 3, 13)).amount("eea_goods_services") is None
    assert rules.thresholds_on(date(2024, 3, 14)).amount("eea_works") == 57_800_000
    assert "apprentice_min_share" not in rules.thresholds_on(date(2025, 7, 31))
    assert rules.thresholds_on(date(2025, 8, 1)).amount("apprentice_min_share") == 10


# -- boundaries, exactly -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "category", "code", "present"),
    [
        (99_999, "goods", "below_reporting_threshold", True),
        (99_999, "goods", "run_by_procurement", False),
        (100_000, "goods", "below_reporting_threshold", False),
        (100_000, "goods", "run_by_procurement", True),
        (499_999, "goods", "kgv", False),
        (500_000, "goods", "kgv", True),
        (1_299_999, "goods", "doffin", False),
        (1_300_000, "goods", "doffin", True),
        (1_299_999, "services", "competition_strategy", False),
        (1_300_000, "services", "competition_strategy", True),
        (1_299_999, "works", "climate_weight", False),
        (1_300_000, "works", "climate_weight", True),
        (2_299_999, "goods", "ted", False),
        (2_300_000, "goods", "ted", True),
        (2_299_999, "services", "ted", False),
        (2_300_000, "services", "ted", True),
        (2_300_000, "works", "ted", False),
        (57_799_999, "works", "ted", False),
        (57_800_000, "works", "ted", True),
    ],
)
def test_threshold_boundaries(value: int, category: str, code: str, present: bool) -> None:
    assert (code in codes(value, category)) is present


def test_below_100_000_says_no_report_needed_and_points_to_ehandel() -> None:
    text = nb(99_999, "below_reporting_threshold")
    assert "under 100 000 kr" in text
    assert "eHandel" in text
    assert codes(99_999) == ["below_reporting_threshold"]
    assert assess(facts(99_999), TODAY).get("below_reporting_threshold").severity == "info"  # type: ignore[union-attr]


def test_texts_interpolate_amounts_with_format_nok() -> None:
    doffin = assess(facts(1_300_000), TODAY).get("doffin")
    assert doffin is not None
    assert f"nasjonal terskelverdi ({format_nok(1_300_000)})" in doffin.text["nb"]
    assert f"national threshold ({format_nok(1_300_000, 'en')})" in doffin.text["en"]
    assert nb(1_300_000, "doffin").startswith("Verdien er på eller over nasjonal terskelverdi (1 300 000 kr)")
    assert "(57 800 000 kr)" in nb(60_000_000, "ted", "works")
    assert "bygg og anlegg" in nb(60_000_000, "ted", "works")
    assert "(2 300 000 kr)" in nb(2_300_000, "ted", "services")
    assert "minst 30 %" in nb(1_300_000, "climate_weight")
    assert "Verdien (150 000 kr) er 100 000 kr eller mer" in nb(150_000, "run_by_procurement")


def test_kgv_text_changes_at_the_national_threshold() -> None:
    assert "500 000 kr eller mer" in nb(500_000, "kgv")
    assert "påkrevd" not in nb(500_000, "kgv")
    assert "krever regelverket" in nb(1_300_000, "kgv")


def test_lots_suggested_from_national_and_justified_from_eea() -> None:
    assert "lots" not in codes(1_299_999)
    suggest = assess(facts(1_300_000), TODAY).get("lots")
    assert suggest is not None and suggest.severity == "info"
    assert "små og lokale" in suggest.text["nb"]
    justify = assess(facts(2_300_000), TODAY).get("lots")
    assert justify is not None and justify.severity == "required"
    assert "begrunnes" in justify.text["nb"]
    # Works between the national and the EEA works threshold: suggestion only.
    works = assess(facts(10_000_000, "works"), TODAY).get("lots")
    assert works is not None and works.severity == "info"


# -- dating: a future change applies only from its date ----------------------------------------


def _rules_file(tmp_path: Path, extra: list[dict[str, Any]]) -> Path:
    data = json.loads(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))
    data["thresholds"].extend(extra)
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_future_dated_threshold_applies_only_from_its_date(tmp_path: Path) -> None:
    path = _rules_file(
        tmp_path,
        [
            {
                "id": "report_required",
                "amount": 300_000,
                "valid_from": "2027-01-01",
                "source": "Prop. 147 L (2024–2025), if adopted",
            }
        ],
    )
    rules = load_rules(path)
    report = facts(200_000)
    before = assess(report, date(2026, 12, 31), rules=rules)
    after = assess(report, date(2027, 1, 1), rules=rules)
    assert "run_by_procurement" in before.codes
    assert "below_reporting_threshold" not in before.codes
    assert after.codes[0] == "below_reporting_threshold"
    assert "run_by_procurement" not in after.codes
    assert "300 000 kr" in after.consequences[0].text["nb"]
    assert before.thresholds["report_required"] == 100_000
    assert after.thresholds["report_required"] == 300_000
    assert [e.amount for e in rules.history("report_required")] == [100_000, 300_000]
    # The boundary is exact on the new date too.
    assert "run_by_procurement" in assess(facts(300_000), date(2027, 1, 1), rules=rules).codes
    assert "run_by_procurement" not in assess(facts(299_999), date(2027, 1, 1), rules=rules).codes


def test_new_eea_threshold_from_its_date(tmp_path: Path) -> None:
    path = _rules_file(
        tmp_path,
        [
            {
                "id": "eea_goods_services",
                "amount": 2_500_000,
                "valid_from": "2028-01-01",
                "source": "test",
            }
        ],
    )
    rules = load_rules(path)
    assert "ted" in assess(facts(2_400_000), date(2027, 12, 31), rules=rules).codes
    assert "ted" not in assess(facts(2_400_000), date(2028, 1, 1), rules=rules).codes


def test_rule_without_an_entry_on_the_date_is_off() -> None:
    # Before 2024-03-14 the file holds no EEA threshold: no TED consequence is invented.
    assert "ted" not in codes(5_000_000, on=date(2024, 3, 13))
    assert "ted" in codes(5_000_000, on=date(2024, 3, 14))


# -- the rule file is checked on load ---------------------------------------------------------


def _data() -> dict[str, Any]:
    return json.loads(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))


def test_rule_file_errors_are_reported() -> None:
    data = _data()
    del data["consequences"]["doffin"]
    with pytest.raises(RulesError, match="doffin"):
        rules_from_dict(data)
    data = _data()
    data["consequences"]["doffin"]["nb"] = "Over {nasjonal}"
    with pytest.raises(RulesError, match="placeholder"):
        rules_from_dict(data)
    data = _data()
    data["thresholds"][0]["valid_from"] = "6.4.2018"
    with pytest.raises(RulesError, match="yyyy-mm-dd"):
        rules_from_dict(data)
    data = _data()
    data["thresholds"].append(dict(data["thresholds"][0]))
    with pytest.raises(RulesError, match="two entries"):
        rules_from_dict(data)
    data = _data()
    data["thresholds"][0]["amount"] = "100 000"
    with pytest.raises(RulesError, match="whole number"):
        rules_from_dict(data)
    with pytest.raises(RulesError):
        load_rules("/nonexistent/thresholds.json")


# -- framework agreements first ------------------------------------------------------------------


def hit(
    category: str = "goods",
    end: date | None = date(2027, 12, 31),
    title: str = "Kontorrekvisita",
    reasons: tuple[CoverReason, ...] = (CoverReason("title"),),
) -> FrameworkAgreementHit:
    """A hit as the matcher (procurement/needs/agreements.py) returns it: with its reasons."""
    return FrameworkAgreementHit(
        contract_ref="RA-2024-017",
        title=title,
        supplier="Kontorleverandøren AS",
        category=category,
        end_date=end,
        reasons=reasons,
    )


def test_framework_agreement_comes_first() -> None:
    for value in (50_000, 150_000, 3_000_000):
        result = assess(facts(value), TODAY, [hit()])
        assert result.codes[0] == "framework_agreement"
        first = result.consequences[0]
        assert first.severity == "warning"
        assert "eHandel" in first.text["nb"]
        assert "trekke tilbake" in first.text["nb"]
        assert (
            "«Kontorrekvisita» (Kontorleverandøren AS, avtale RA-2024-017, gjelder til 31.12.2027): tittelen ligner"
            in first.text["nb"]
        )
        assert "valid until 31 December 2027): the title is similar" in first.text["en"]
        assert "Delmål 3" in first.source


def test_framework_agreement_without_reasons_or_expired_is_ignored() -> None:
    # The category is no reason: a hit the matcher found no reason for covers nothing.
    assert "framework_agreement" not in assess(facts(150_000), TODAY, [hit(reasons=())]).codes
    # A services agreement with a reason is shown for a goods report (the CPV code said so).
    assert "framework_agreement" in assess(facts(150_000), TODAY, [hit("services")]).codes
    assert "framework_agreement" not in assess(facts(150_000), TODAY, [hit(end=date(2026, 5, 31))]).codes
    assert "framework_agreement" in assess(facts(150_000), TODAY, [hit(end=TODAY)]).codes
    assert "framework_agreement" in assess(facts(150_000), TODAY, [hit(end=None)]).codes


def test_the_assessment_names_only_the_agreements_that_cover_the_report() -> None:
    def agreement(ref: str, title: str, cpv: str) -> Agreement:
        return Agreement(ref, title, f"{title} AS", "goods", date(2025, 1, 1), date(2027, 12, 31), cpv_codes=(cpv,))

    register = [
        agreement("RA-1", "Arbeidsklær", "18100000"),
        agreement("RA-2", "Kontorrekvisita", "30192000"),
        agreement("RA-3", "Matvarer", "15800000"),
    ]
    beds = facts(150_000, title="Elektriske senger til sykehjem", need="Senger som kan heves", cpv="33192000-2")
    assert "framework_agreement" not in assess(beds, TODAY, match_agreements(beds, TODAY, register)).codes
    paper = facts(150_000, cpv="30192000")
    result = assess(paper, TODAY, match_agreements(paper, TODAY, register))
    text = result.consequences[0].text["nb"]
    assert result.codes[0] == "framework_agreement"
    assert "«Kontorrekvisita»" in text and "samme CPV-kategori 30192 Kontorrekvisita" in text
    assert "Arbeidsklær" not in text and "Matvarer" not in text


def test_many_agreements_are_summarised() -> None:
    hits = [hit(title=f"Avtale {i}") for i in range(5)]
    text = assess(facts(150_000), TODAY, hits).consequences[0].text["nb"]
    assert "Avtale 2" in text and "Avtale 3" not in text and "og 2 til" in text


def test_hostile_agreement_titles_are_data_not_templates() -> None:
    evil = hit(title='{value} ${x} {{oops}} **bold** "quote"')
    text = assess(facts(150_000), TODAY, [evil]).consequences[0].text["nb"]
    assert '{value} ${x} {{oops}} **bold** "quote"' in text


# -- category-dependent consequences --------------------------------------------------------------


def test_goods_have_no_wage_or_serious_employer_requirements() -> None:
    result = codes(3_000_000, "goods")
    assert "wage_conditions" not in result
    assert "serious_employer" not in result
    assert "apprentices" not in result


def test_services_have_wage_conditions() -> None:
    result = assess(facts(500_000, "services"), TODAY)
    wage = result.get("wage_conditions")
    assert wage is not None and wage.severity == "required"
    assert "lønns- og arbeidsvilkår" in wage.text["nb"] and "kontroller" in wage.text["nb"]
    assert "serious_employer" not in result.codes
    # Below the reporting limit it is advice only.
    small = assess(facts(50_000, "services"), TODAY).get("wage_conditions")
    assert small is not None and small.severity == "info"


def test_works_have_wage_and_serious_employer_requirements() -> None:
    result = assess(facts(3_000_000, "works", title="Rehabilitering av skolebygg"), TODAY)
    assert "wage_conditions" in result.codes
    serious = result.get("serious_employer")
    assert serious is not None
    assert "HMS-kort" in serious.text["nb"]


def test_cleaning_services_get_serious_employer_requirements() -> None:
    by_word = assess(facts(800_000, "services", title="Renhold av barnehager", need="Daglig renhold"), TODAY)
    serious = by_word.get("serious_employer")
    assert serious is not None and "renholdsregister" in serious.text["nb"]
    by_cpv = assess(facts(800_000, "services", title="Rammeavtale", need="x", cpv="90911200-8"), TODAY)
    assert "serious_employer" in by_cpv.codes
    # Cleaning products are goods, not a cleaning contract.
    assert "serious_employer" not in codes(800_000, "goods", title="Renholdsartikler", need="Såpe")
    assert "serious_employer" not in codes(800_000, "services", title="Rådgivning", need="x", cleaning=False)
    assert "serious_employer" in codes(800_000, "services", title="Rådgivning", need="x", cleaning=True)


@pytest.mark.parametrize(
    ("title", "need", "cpv", "warned"),
    [
        ("Leasing av biler", "Tjenestebiler til hjemmetjenesten", None, True),
        ("Varebiler", "Fire varebiler til vaktmestere", None, True),
        ("Kjøretøy", "x", None, True),
        ("Skoleskyss", "Buss til elever", None, True),
        ("Rammeavtale", "x", "34110000-1", True),
        ("Rammeavtale", "x", "60100000-9", True),
        ("Aggregat", "Dieseldrevet nødstrømsaggregat", None, True),
        ("Elbiler", "Leasing av elbiler", None, False),
        ("Transport", "Fossilfri transport med elektriske varebiler", None, False),
        ("Biler", "Elbil eller dieselbil", None, True),  # a fossil fuel named outright
        ("Mobiltelefoner", "Nye mobiler og bilder av utstyr", None, False),
        ("Hybride møter", "Utstyr for hybride møterom", None, False),  # hybrid without a vehicle
        ("Hybridbiler", "x", None, True),
        ("Kontorrekvisita", "Papir og penner", "30192000-1", False),
    ],
)
def test_fossil_vehicle_detection(title: str, need: str, cpv: str | None, warned: bool) -> None:
    report = facts(400_000, "goods", title=title, need=need, cpv=cpv)
    assert (detect_fossil_vehicles(report) is not None) is warned
    assert ("fossil_vehicles" in assess(report, TODAY).codes) is warned


def test_fossil_vehicle_warning_explains_why() -> None:
    text = nb(400_000, "fossil_vehicles", title="Varebiler", need="Diesel")
    assert "ordet «diesel»" in text
    assert "Strategi for grønne anskaffelser" in text
    by_cpv = nb(400_000, "fossil_vehicles", title="Avtale", need="x", cpv="34110000-1")
    assert "CPV-kode 34110000" in by_cpv
    severity = assess(facts(400_000, title="Biler", need="x"), TODAY).get("fossil_vehicles")
    assert severity is not None and severity.severity == "warning"
    assert "fossil_vehicles" not in codes(400_000, title="Biler", need="x", fossil_vehicles=False)


def test_cleaning_detection_reason() -> None:
    found = detect_cleaning(facts(1, "services", title="Skolerenhold", need="x"))
    assert found is not None and found.reason("nb") == "ordet «skolerenhold»"


# -- apprentices --------------------------------------------------------------------------------


def test_apprentices_before_and_after_2025_08_01() -> None:
    report = facts(2_300_000, "services", duration_months=24)
    before = assess(report, date(2025, 7, 31)).get("apprentices")
    after = assess(report, date(2025, 8, 1)).get("apprentices")
    assert before is not None and after is not None
    assert "godkjent lærebedrift" in before.text["nb"] and "%" not in before.text["nb"]
    assert "godkjent lærebedrift" in after.text["nb"] and "minst 10 % av arbeidet" in after.text["nb"]
    assert "at least 10 % of the work" in after.text["en"]


@pytest.mark.parametrize(
    ("value", "category", "duration", "options", "required"),
    [
        (2_299_999, "services", 24, 0, False),
        (2_300_000, "services", 24, 0, True),
        (2_300_000, "goods", 24, 0, False),
        (2_300_000, "services", 3, 0, False),  # not more than 3 months
        (2_300_000, "services", 4, 0, True),
        (2_300_000, "services", 2, 2, True),  # options count towards the duration
        (57_799_999, "works", 24, 0, False),
        (57_800_000, "works", 24, 0, True),
    ],
)
def test_apprentice_threshold_and_duration(
    value: int, category: str, duration: int, options: int, required: bool
) -> None:
    result = codes(value, category, duration_months=duration, option_months=options)
    assert ("apprentices" in result) is required


# -- planning prompts --------------------------------------------------------------------------


def test_market_dialogue() -> None:
    assert "market_dialogue" not in codes(1_299_999)
    assert "vurdere" in nb(1_300_000, "market_dialogue")
    assert "Dere ønsker markedsdialog" in nb(150_000, "market_dialogue", innovation=True)
    assert "Dere ønsker markedsdialog" in nb(50_000, "market_dialogue", innovation=True)


def test_faggruppe_and_staff_representatives() -> None:
    assert "Foreslå gjerne" in nb(150_000, "faggruppe")
    assert "2 personer" in nb(150_000, "faggruppe", faggruppe=("Kari", "Ola"))
    assert "faggruppe" not in codes(99_999)
    assert "staff_representatives" in codes(150_000, "services")
    assert "staff_representatives" in codes(150_000, "works")
    assert "staff_representatives" not in codes(150_000, "goods")
    assert "staff_representatives" in codes(150_000, "goods", title="Arbeidstøy til hjemmetjenesten")
    assert "verneombud" in nb(150_000, "staff_representatives", "services")


# -- order and shape ------------------------------------------------------------------------------


def test_full_order_for_a_large_service() -> None:
    report = facts(
        3_000_000,
        "services",
        title="Renhold",
        need="Renhold av skoler",
        faggruppe=("Kari",),
        duration_months=36,
        option_months=12,
    )
    assert assess(report, TODAY, [hit("services")]).codes == [
        "framework_agreement",
        "run_by_procurement",
        "kgv",
        "doffin",
        "competition_strategy",
        "climate_weight",
        "ted",
        "lots",
        "wage_conditions",
        "serious_employer",
        "apprentices",
        "market_dialogue",
        "faggruppe",
        "staff_representatives",
    ]


def test_assessment_to_dict_is_json() -> None:
    result = assess(facts(3_000_000, "works"), TODAY, [hit("works")])
    data = json.loads(json.dumps(result.to_dict()))
    assert data["on"] == "2026-06-01"
    assert data["value"] == 3_000_000
    assert data["consequences"][0]["code"] == "framework_agreement"
    assert set(data["consequences"][0]) == {"code", "severity", "text", "source"}
    assert data["thresholds"]["national"] == 1_300_000


def test_unknown_category_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="category"):
        assess(replace(facts(1), category="food"), TODAY)


_facts = st.builds(
    NeedsReportFacts,
    estimated_value=st.integers(min_value=0, max_value=10**12),
    category=st.sampled_from(CATEGORIES),
    title=st.text(max_size=40),
    need=st.text(max_size=80),
    cpv=st.one_of(st.none(), st.from_regex(r"\A[0-9]{8}(-[0-9])?\Z"), st.text(max_size=12)),
    duration_months=st.integers(min_value=0, max_value=240),
    option_months=st.integers(min_value=0, max_value=240),
    innovation=st.booleans(),
    faggruppe=st.lists(st.text(min_size=1, max_size=10), max_size=5).map(tuple),
)


@settings(max_examples=150, deadline=None)
@given(
    _facts,
    st.dates(min_value=date(2015, 1, 1), max_value=date(2035, 12, 31)),
    st.lists(
        st.builds(
            FrameworkAgreementHit,
            st.text(max_size=10),
            st.text(max_size=30),
            st.text(max_size=20),
            st.sampled_from(CATEGORIES),
            st.one_of(st.none(), st.dates()),
            reasons=st.lists(
                st.builds(
                    CoverReason,
                    st.sampled_from(["cpv", "title", "words"]),
                    code=st.from_regex(r"\A[0-9]{2,8}\Z"),
                    level=st.sampled_from(["division", "group", "class", "category", ""]),
                    name_nb=st.text(max_size=20),
                    words=st.lists(st.text(max_size=10), max_size=3).map(tuple),
                ),
                max_size=3,
            ).map(tuple),
        ),
        max_size=4,
    ),
)
def test_assess_properties(report: NeedsReportFacts, on: date, hits: list[FrameworkAgreementHit]) -> None:
    result = assess(report, on, hits)
    found = result.codes
    assert len(found) == len(set(found)), found
    if "framework_agreement" in found:
        assert found[0] == "framework_agreement"
    for c in result.consequences:
        assert c.severity in SEVERITIES and c.source
        assert c.text["nb"] and c.text["en"]
    th = default_rules().thresholds_on(on)
    national = th.amount("national")
    if national is not None:
        assert ("doffin" in found) is (report.estimated_value >= national)
    required = th.amount("report_required")
    if required is not None:
        assert ("run_by_procurement" in found) is (report.estimated_value >= required)
        assert ("below_reporting_threshold" in found) is (report.estimated_value < required)
