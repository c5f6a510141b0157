"""The suggested procedure per value band (at the thresholds) and the competition timeline."""

from __future__ import annotations

import copy
import json
import re
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procurement.competitions.procedure import (
    DEFAULT_PROCEDURES_PATH,
    PERIOD_IDS,
    ProcedureDataError,
    default_procedures,
    load_procedures,
    procedures_from_dict,
    suggest_procedure,
)
from procurement.competitions.timeline import MILESTONES, earliest_start, plan_timeline
from procurement.needs.rules import DEFAULT_RULES_PATH, rules_from_dict
from procurement.shared.calendar import is_working_day
from procurement.shared.dates import format_date

TODAY = date(2026, 10, 1)


def _data() -> dict[str, Any]:
    return json.loads(DEFAULT_PROCEDURES_PATH.read_text(encoding="utf-8"))


# -- bands at the thresholds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "category", "band"),
    [
        (99_999, "goods", "below"),
        (100_000, "goods", "part_i"),
        (1_299_999, "services", "part_i"),
        (1_300_000, "services", "part_ii"),
        (1_300_001, "services", "part_ii"),
        (2_299_999, "goods", "part_ii"),
        (2_300_000, "goods", "part_iii"),
        (2_300_001, "services", "part_iii"),
        # building and construction has its own, much higher EEA threshold
        (2_300_000, "works", "part_ii"),
        (57_799_999, "works", "part_ii"),
        (57_800_000, "works", "part_iii"),
    ],
)
def test_band_at_and_around_the_thresholds(value: int, category: str, band: str) -> None:
    assert suggest_procedure(value, category, TODAY).band == band


def test_each_band_says_where_to_announce_and_what_to_suggest() -> None:
    below = suggest_procedure(50_000, "goods", TODAY)
    part_i = suggest_procedure(600_000, "goods", TODAY)
    part_ii = suggest_procedure(1_500_000, "goods", TODAY)
    part_iii = suggest_procedure(3_000_000, "goods", TODAY)
    assert "eHandel" in below.options[0].name["nb"]
    assert part_i.part == {"nb": "Del I", "en": "Part I"}
    assert "ikke påkrevd" in part_i.announce["nb"] and "500 000 kr" in part_i.announce["nb"]
    assert part_ii.announce["nb"] == "Kunngjøres i Doffin." and "TED" not in part_ii.announce["en"]
    assert "Doffin og TED" in part_iii.announce["nb"]
    assert [o.name["nb"] for o in part_ii.recommended] == ["Åpen tilbudskonkurranse"]
    names = [o.name["nb"] for o in part_iii.options]
    assert names[0] == "Åpen anbudskonkurranse"
    assert {"Konkurranse med forhandling", "Konkurransepreget dialog", "Innovasjonspartnerskap"} <= set(names)
    for proc in (below, part_i, part_ii, part_iii):
        for lang in ("nb", "en"):
            for text in (proc.summary[lang], proc.announce[lang], proc.advice[lang]):
                assert text and "{" not in text and "–" not in text  # every placeholder filled
    assert "2 300 000 kr" in part_iii.summary["nb"] and "NOK 2,300,000" in part_iii.summary["en"]
    assert "57 800 000 kr" in suggest_procedure(60_000_000, "works", TODAY).summary["nb"]


def test_lower_and_upper_thresholds_of_the_band() -> None:
    part_ii = suggest_procedure(1_500_000, "services", TODAY)
    assert part_ii.lower is not None and part_ii.lower.id == "national"
    assert part_ii.upper is not None and part_ii.upper.id == "eea_goods_services"
    part_iii = suggest_procedure(3_000_000, "services", TODAY)
    assert part_iii.upper is None and part_iii.lower is not None and part_iii.lower.amount == 2_300_000


def test_the_bands_follow_the_dated_thresholds_of_the_needs_rules() -> None:
    # A later national threshold of 1 500 000 moves 1 400 000 from Part II to Part I from that date on.
    data = json.loads(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))
    data["thresholds"].append({"id": "national", "amount": 1_500_000, "valid_from": "2027-07-01", "source": "test"})
    rules = rules_from_dict(data)
    assert suggest_procedure(1_400_000, "goods", date(2027, 6, 30), rules=rules).band == "part_ii"
    assert suggest_procedure(1_400_000, "goods", date(2027, 7, 1), rules=rules).band == "part_i"


def test_the_procedure_data_repeats_no_threshold_figure() -> None:
    text = DEFAULT_PROCEDURES_PATH.read_text(encoding="utf-8")
    for amount in (100_000, 500_000, 1_300_000, 2_300_000, 57_800_000):
        for shape in (str(amount), f"{amount:,}".replace(",", " "), f"{amount:,}"):
            assert shape not in text, shape


# -- periods --------------------------------------------------------------------------------------


def test_part_iii_has_the_legal_minimum_periods() -> None:
    proc = suggest_procedure(3_000_000, "goods", TODAY)
    assert proc.periods["tender"].days == 35 and proc.periods["tender"].is_minimum
    assert proc.tender_period(electronic=True).days == 30
    assert proc.tender_period(electronic=False).days == 35
    assert proc.periods["standstill"].days == 10 and proc.periods["standstill"].is_minimum


@pytest.mark.parametrize("value", [600_000, 1_500_000])
def test_parts_i_and_ii_use_the_municipalitys_defaults(value: int) -> None:
    proc = suggest_procedure(value, "goods", TODAY)
    assert set(PERIOD_IDS) <= set(proc.periods)
    assert all(p.kind == "default" for p in proc.periods.values())
    assert proc.tender_period(electronic=True) is proc.periods["tender"]  # no shorter electronic period


def test_configuration_changes_defaults_and_may_lengthen_but_not_shorten_a_minimum() -> None:
    proc = suggest_procedure(1_500_000, "goods", TODAY, overrides={"part_ii.tender": 28, "part_iii.tender": 40})
    assert proc.periods["tender"].days == 28
    assert proc.periods["tender"].source == "Kommunens konfigurasjon"
    longer = suggest_procedure(3_000_000, "goods", TODAY, overrides={"part_iii.standstill": 15})
    assert longer.periods["standstill"].days == 15 and longer.periods["standstill"].is_minimum
    with pytest.raises(ProcedureDataError, match="legal minimum"):
        suggest_procedure(3_000_000, "goods", TODAY, overrides={"part_iii.tender_electronic": 20})
    with pytest.raises(ProcedureDataError, match="expected"):
        suggest_procedure(3_000_000, "goods", TODAY, overrides={"tender": 20})


def test_shipped_procedure_file_loads_and_is_checked() -> None:
    assert load_procedures() == default_procedures()
    broken = _data()
    broken["bands"][1]["summary"]["nb"] = "Verdien er over {terskel}."
    with pytest.raises(ProcedureDataError, match="unknown placeholder"):
        procedures_from_dict(broken)
    broken = _data()
    broken["bands"] = [b for b in broken["bands"] if b["id"] != "part_ii"]
    with pytest.raises(ProcedureDataError, match="part_ii"):
        procedures_from_dict(broken)
    broken = _data()
    broken["periods"] = [p for p in broken["periods"] if (p["band"], p["id"]) != ("part_i", "evaluation")]
    with pytest.raises(ProcedureDataError, match="evaluation"):
        procedures_from_dict(broken)
    broken = _data()
    del broken["bands"][0]["part"]["en"]
    with pytest.raises(ProcedureDataError, match="'en'"):
        procedures_from_dict(broken)


def test_a_later_dated_entry_replaces_the_earlier_one_from_its_date() -> None:
    data = _data()
    newer = copy.deepcopy(next(p for p in data["periods"] if (p["band"], p["id"]) == ("part_ii", "tender")))
    newer.update(days=25, valid_from="2027-01-01")
    data["periods"].append(newer)
    procedures = procedures_from_dict(data)
    before = suggest_procedure(1_500_000, "goods", date(2026, 12, 31), procedures=procedures)
    after = suggest_procedure(1_500_000, "goods", date(2027, 1, 1), procedures=procedures)
    assert (before.periods["tender"].days, after.periods["tender"].days) == (21, 25)


# -- timeline -------------------------------------------------------------------------------------


def test_timeline_back_from_the_wished_start() -> None:
    proc = suggest_procedure(3_000_000, "goods", TODAY)
    tl = plan_timeline(date(2027, 9, 1), proc, TODAY)
    assert tl.feasible and tl.start == date(2027, 9, 1)
    assert [m.key for m in tl.milestones] == list(MILESTONES)
    d = {m.key: m.on for m in tl.milestones}
    assert d["contract_start"] == date(2027, 9, 1)
    assert (d["tender_deadline"] - d["announced"]).days >= 30
    assert (d["contract_signed"] - d["award"]).days >= 11  # standstill from the day after the notice
    assert all(is_working_day(m.on) for m in tl.milestones if m.key != "contract_start")
    assert tl.message["nb"].startswith("Tidsplanen regner bakover fra ønsket oppstart 01.09.2027")
    assert format_date(d["strategy_approved"]) in tl.message["nb"]
    assert tl.slack_days == (d["strategy_approved"] - TODAY).days > 0
    assert "Doffin og TED" in tl.get("announced").note["nb"]
    assert "30 dager (lovens minstefrist)" in tl.get("announced").note["nb"]


def test_without_electronic_tenders_part_iii_needs_35_days() -> None:
    proc = suggest_procedure(3_000_000, "goods", TODAY)
    tl = plan_timeline(date(2027, 9, 1), proc, TODAY, electronic=False)
    assert (tl.get("tender_deadline").on - tl.get("announced").on).days >= 35
    assert "35 dager" in tl.get("announced").note["nb"]


def test_milestones_avoid_public_holidays() -> None:
    # Starts from March to August 2027 put milestones on Easter (25.–29.03), 1 and 17 May,
    # Ascension and Whitsun; each must be moved to a working day before.
    proc = suggest_procedure(1_500_000, "goods", date(2026, 1, 5))
    for offset in range(0, 180):
        tl = plan_timeline(date(2027, 3, 1) + timedelta(days=offset), proc, date(2026, 1, 5))
        assert all(is_working_day(m.on) for m in tl.milestones[:-1])


def test_too_close_start_is_said_plainly() -> None:
    today = date(2027, 1, 15)
    proc = suggest_procedure(3_000_000, "goods", today)
    tl = plan_timeline(date(2027, 3, 1), proc, today)
    assert not tl.feasible
    assert tl.message["nb"].startswith("Ønsket oppstart 01.03.2027 er for tidlig: ")
    assert tl.message["en"].startswith("The wished start 01.03.2027 is too early: ")
    assert f"Tidligste realistiske oppstart er {format_date(tl.start)}" in tl.message["nb"]
    assert tl.start == earliest_start(proc, today) > date(2027, 3, 1)
    # the plan shown is drawn back from the earliest start, and starts no earlier than today
    assert tl.get("contract_start").on == tl.start
    assert tl.get("strategy_approved").on >= today
    assert "ønsket: 01.03.2027" in tl.get("contract_start").note["nb"]


def test_earliest_start_is_the_first_that_fits() -> None:
    today = date(2026, 12, 18)  # Christmas ahead
    proc = suggest_procedure(1_500_000, "services", today)
    first = earliest_start(proc, today)
    assert plan_timeline(first, proc, today).feasible
    assert not plan_timeline(first - timedelta(days=1), proc, today).feasible


@settings(max_examples=150, deadline=None)
@given(
    today=st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 31)),
    offset=st.integers(min_value=-30, max_value=600),
    value=st.sampled_from([150_000, 800_000, 1_500_000, 3_000_000]),
    electronic=st.booleans(),
)
def test_timeline_invariants(today: date, offset: int, value: int, electronic: bool) -> None:
    proc = suggest_procedure(value, "goods", today)
    wished = today + timedelta(days=offset)
    tl = plan_timeline(wished, proc, today, electronic=electronic)
    dates = [m.on for m in tl.milestones]
    assert dates == sorted(dates)
    assert dates[0] >= today
    assert tl.feasible == (tl.start == wished)
    if not tl.feasible:
        assert tl.start > wished and tl.message["nb"].startswith(f"Ønsket oppstart {format_date(wished)} er for tidlig")
    d = {m.key: m.on for m in tl.milestones}
    p = proc.periods
    assert (d["documents_ready"] - d["strategy_approved"]).days >= p["preparation"].days
    assert (d["tender_deadline"] - d["announced"]).days >= proc.tender_period(electronic).days
    assert (d["award"] - d["tender_deadline"]).days >= p["evaluation"].days
    gap = p["standstill"].days + 1 if p["standstill"].days else 0
    assert (d["contract_signed"] - d["award"]).days >= gap
    assert (d["contract_start"] - d["contract_signed"]).days >= p["mobilisation"].days
    assert re.fullmatch(r"\d{2}\.\d{2}\.\d{4}", tl.milestones[0].date_text)
