"""The register lists as configuration, and a record's row: column config checks, the restricted
split, typed values as Graph takes them, and the comparison sync uses."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procurement.records.lists import (
    DEFAULT_LISTS_PATH,
    NOTE_MAX,
    TEXT_MAX,
    Column,
    ListConfigError,
    build_fields,
    cell_value,
    comparable,
    differences,
    load_list_config,
    parse_list_config,
)
from procurement.records.rows import READERS

RAW: dict[str, Any] = json.loads(DEFAULT_LISTS_PATH.read_text(encoding="utf-8"))


def test_the_four_registers_with_norwegian_titles() -> None:
    config = load_list_config()
    assert {e: s.title for e, s in config.lists.items()} == {
        "needs_report": "Behovsmeldinger",
        "competition": "Konkurranser",
        "contract": "Kontrakter",
        "deviation": "Avvik",
    }
    for spec in config.lists.values():
        assert spec.key_column.indexed and spec.key_column.source == "ref"
        # Every source the configuration names is a value the read model gives.
        assert spec.entity in READERS


def test_restricted_columns_never_reach_the_open_site() -> None:
    config = load_list_config()
    contract = config.lists["contract"]
    open_names = {c.name for c in contract.for_site("open").columns}
    all_names = {c.name for c in contract.for_site("restricted").columns}
    assert "Kontraktsverdi" in all_names and "InterneNotater" in all_names
    assert "Kontraktsverdi" not in open_names and "InterneNotater" not in open_names
    assert open_names < all_names
    deviation_open = {c.source for c in config.lists["deviation"].for_site("open").columns}
    assert not deviation_open & {"description", "financial_impact", "breached_clause", "location", "reporter_name"}
    for spec in config.lists.values():
        assert spec.key in {c.name for c in spec.for_site("open").columns}
    needs = config.lists["needs_report"].for_site("open")
    fields = build_fields(needs, {"ref": "BM-2026-0001", "estimated_value": 1_300_000, "decision_note": "intern"})
    assert "EstimertVerdi" not in fields and "Vurderingsnotat" not in fields


def _broken(change: Any) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    change(raw)
    return raw


@pytest.mark.parametrize(
    "change, says",
    [
        (lambda r: r["lists"]["contract"]["columns"][0].update(type="money"), "type must be one of"),
        (lambda r: r["lists"]["contract"]["columns"][1].update(name="Tittel med mellomrom"), "internal name"),
        (lambda r: r["lists"]["contract"]["columns"][0].update(indexed=False), "must be text, indexed"),
        (lambda r: r["lists"]["contract"]["columns"][0].update(restricted=True), "must be text, indexed"),
        (lambda r: r["lists"]["contract"].update(key="Finnes"), "not among the columns"),
        (lambda r: r["lists"]["contract"]["columns"].append({**r["lists"]["contract"]["columns"][1]}), "two columns"),
        (lambda r: r["lists"]["deviation"].update(title="Kontrakter"), "unique"),
        (lambda r: r["lists"]["contract"]["columns"][4].update(choices={}), "needs its choices"),
        (lambda r: r["lists"]["contract"]["columns"][1].update(choices={"a": "b"}), "only on a choice column"),
        (lambda r: r.pop("valid_from"), "valid_from"),
    ],
)
def test_a_broken_configuration_is_refused_with_the_place(change: Any, says: str) -> None:
    with pytest.raises(ListConfigError, match=says):
        parse_list_config(_broken(change))


def test_values_as_graph_takes_them() -> None:
    config = load_list_config()
    spec = config.lists["contract"].for_site("restricted")
    fields = build_fields(
        spec,
        {
            "ref": "KAV-2026-17",
            "title": "Renhold\tav  skoler\n og barnehager",
            "supplier_name": "Renhold AS",
            "category": "services",
            "agreement_type": "framework",
            "start_date": date(2026, 1, 1),
            "end_date": date(2029, 12, 31),
            "risk_level": "extreme",  # not configured: written as it is
            "updated_at": datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC),
            "value_nok": 1_300_000,
            "internal_notes": "Linje 1\r\nLinje 2\x00",
            "supplier_org_no": "",
            "competition_ref": None,
        },
    )
    assert fields["InnkjopRef"] == "KAV-2026-17"
    assert fields["Title"] == "Renhold av skoler og barnehager"
    assert fields["Kategori"] == "Tjenester" and fields["Avtaletype"] == "Rammeavtale"
    assert fields["Risiko"] == "extreme"
    assert fields["Startdato"] == "2026-01-01T00:00:00Z" and fields["Sluttdato"] == "2029-12-31T00:00:00Z"
    assert fields["Endret"] == "2026-03-01T12:30:05Z"
    assert fields["Kontraktsverdi"] == 1_300_000
    assert fields["InterneNotater"] == "Linje 1\nLinje 2"
    assert fields["Organisasjonsnummer"] is None and fields["KonkurranseRef"] is None
    assert fields["Arkivsak"] is None  # not given: cleared


def test_numbers_dates_and_flags() -> None:
    number = Column("N", "Tall", "number", "n")
    assert cell_value(number, Decimal("12.50")) == 12.5
    assert cell_value(number, 3.0) == 3 and isinstance(cell_value(number, 3.0), int)
    assert cell_value(number, "1 300 000") == 1_300_000
    assert cell_value(number, "ikke et tall") is None
    assert cell_value(number, True) is None
    flag = Column("B", "Flagg", "boolean", "b")
    assert cell_value(flag, True) is True and cell_value(flag, "Nei") is False
    day = Column("D", "Dato", "date", "d")
    # A late evening in Oslo is that day, though UTC has the day before.
    assert cell_value(day, datetime(2026, 6, 30, 22, 30, tzinfo=UTC)) == "2026-07-01T00:00:00Z"
    assert cell_value(day, "2026-02-30") is None
    stamp = Column("T", "Tid", "dateTime", "t")
    assert cell_value(stamp, date(2026, 1, 15)) == "2026-01-14T23:00:00Z"  # midnight in Oslo


def test_comparison_ignores_how_sharepoint_or_a_csv_hands_values_back() -> None:
    spec = load_list_config().lists["contract"].for_site("restricted")
    wanted = build_fields(
        spec,
        {"ref": "K-1", "title": "A", "value_nok": 1_300_000, "start_date": date(2026, 3, 1), "category": "goods"},
    )
    graph_like = {
        **wanted,
        "Kontraktsverdi": 1300000.0,
        "Startdato": "2026-02-28T23:00:00Z",  # SharePoint's midnight in Oslo, in UTC
        "Arkivsak": "",
    }
    assert differences(spec, wanted, graph_like) == []
    csv_like = {k: "" if v is None else str(v) for k, v in wanted.items()}
    assert differences(spec, wanted, csv_like) == []
    assert differences(spec, wanted, {**graph_like, "Title": "B", "Kontraktsverdi": 1}) == ["Title", "Kontraktsverdi"]


@given(st.text(max_size=400))
def test_text_is_one_clean_line_within_sharepoints_limit(text: str) -> None:
    value = cell_value(Column("X", "X", "text", "x"), text)
    assert value is None or (isinstance(value, str) and 0 < len(value) <= TEXT_MAX)
    assert value is None or not any(ch in value for ch in "\n\r\t\x00")


@given(st.text(max_size=200).map(lambda t: t * 80))
def test_notes_are_bounded(text: str) -> None:
    value = cell_value(Column("X", "X", "note", "x"), text)
    assert value is None or (isinstance(value, str) and len(value) <= NOTE_MAX)


@given(st.one_of(st.none(), st.integers(-(10**12), 10**12), st.dates(), st.booleans(), st.text(max_size=30)))
def test_a_written_value_compares_equal_to_itself(value: object) -> None:
    for kind in ("text", "note", "number", "currency", "date", "dateTime", "boolean"):
        column = Column("X", "X", kind, "x")
        written = cell_value(column, value)
        # As Graph hands it back (the same JSON value) and as a CSV cell (its text).
        assert comparable(column, written) == comparable(column, None if written is None else str(written))
