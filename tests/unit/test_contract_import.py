from __future__ import annotations

import csv
import io
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procurement.contracts import import_cli as contract_import_cli
from procurement.contracts.form import validate_contract_form
from procurement.contracts.importing import columns
from procurement.contracts.importing.apply import (
    ContractUpsertPort,
    ImportSummary,
    apply_import,
    format_parse_report,
    format_summary,
)
from procurement.contracts.importing.columns import COLUMN_MAPPING_DOC, COLUMNS
from procurement.contracts.importing.files import ContractFileError
from procurement.contracts.importing.rows import (
    ParseReport,
    RowError,
    parse_contract_bytes,
    parse_contract_file,
)
from procurement.contracts.importing.values import (
    cpv_cell_text,
    parse_amount,
    parse_controls,
    parse_date_cell,
    parse_options_spec,
)
from procurement.contracts.model import (
    ContractData,
    ContractOption,
    PlannedControl,
    derive_option_deadlines,
)
from procurement.shared.dates import format_date

FIXTURES = Path(__file__).parents[1] / "fixtures"
CSV_FIXTURE = FIXTURES / "contracts_export.csv"
XLSX_FIXTURE = FIXTURES / "contracts_export.xlsx"

HEADER = [
    "Avtalenummer",
    "Leverandør",
    "Org.nr",
    "Avtalenavn",
    "Kategori",
    "Startdato",
    "Sluttdato",
    "Opsjoner",
    "Opsjonsfrist",
    "Avtaleverdi (eks. mva)",
    "Avtaletype",
    "Avtaleforvalter",
    "Risiko",
    "Kontroller",
    "Arkivsak",
    "Merknad",
]
GOOD = [
    "KAV-2024-0012",
    "Renhold Øst AS",
    "974760673",
    "Renholdstjenester",
    "Tjenester",
    "01.01.2025",
    "31.12.2026",
    "1+1",
    "30.09.2026",
    "1 250 000,00",
    "Rammeavtale",
    "kari.nordmann@kommune.no",
    "Høy",
    "2025-06-30 Lønnskontroll; 2026-01-15 HMS-kontroll",
    "24/01234",
    "Merknad",
]


# The same contract as the card submits it.
CARD = {
    "external_ref": "KAV-2024-0012",
    "title": "Renholdstjenester",
    "supplier_name": "Renhold Øst AS",
    "supplier_org_no": "974760673",
    "category": "services",
    "agreement_type": "framework",
    "start_date": "01.01.2025",
    "end_date": "31.12.2026",
    "options": "1+1",
    "option_notice": "30.09.2026",
    "value_nok": "1 250 000",
    "manager": "kari.nordmann@kommune.no",
    "risk_level": "high",
    "controls": "2025-06-30 Lønnskontroll; 2026-01-15 HMS-kontroll",
    "archive_case_no": "24/01234",
    "internal_notes": "Merknad",
}


def row(**changes: str) -> list[str]:
    values = dict(zip(HEADER, GOOD, strict=True))
    values.update({k.replace("_", " "): v for k, v in changes.items()})
    return [values[h] for h in HEADER]


def csv_bytes(
    rows: Sequence[Sequence[object]],
    *,
    delimiter: str = ";",
    encoding: str = "utf-8-sig",
    header: Sequence[str] = HEADER,
) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def parse_rows(rows: Sequence[Sequence[object]], **kwargs: object) -> ParseReport:
    return parse_contract_bytes(csv_bytes(rows, **kwargs), "export.csv")  # type: ignore[arg-type]


def only(report: ParseReport) -> ContractData:
    assert report.rejected == [], report.rejected
    [parsed] = report.rows
    return parsed.data


# -- the fixtures -----------------------------------------------------------------------


def test_csv_fixture() -> None:
    report = parse_contract_file(CSV_FIXTURE)
    assert report.file_format == "csv" and report.encoding == "utf-8-sig" and report.delimiter == ";"
    assert [(r.line_no, r.data.external_ref) for r in report.rows] == [
        (2, "KAV-2024-0012"),
        (3, "KAV-2024-0013"),
        (4, "KAV-2023-0101"),
        (9, "KAV-2025-0003"),
    ]
    assert [tuple(e) for e in report.rejected] == [
        (6, "Rad 6: sluttdato 31.02.2026 er ikke en gyldig dato"),
        (7, "Rad 7: organisasjonsnummer 974760674 har feil kontrollsiffer"),
        (8, "Rad 8: avtalenummer kav-2024-0012 står allerede i rad 2; raden er hoppet over"),
        (11, "Rad 11: kategori mangler"),
    ]
    assert [w.line_no for w in report.warnings] == [9]

    first = report.rows[0].data
    assert first.supplier_name == "Renhold Øst AS"
    assert first.supplier_org_no == "974760673"
    assert first.category == "services" and first.agreement_type == "framework" and first.risk_level == "high"
    assert first.value_nok == 1_250_000
    assert first.options == (
        ContractOption(1, 12, date(2026, 9, 30)),
        ContractOption(2, 12, date(2027, 9, 30)),
    )
    assert first.controls == (
        PlannedControl("wage_conditions", date(2025, 6, 30), "Lønnskontroll"),
        PlannedControl("hms", date(2026, 1, 15), "HMS-kontroll"),
    )
    assert first.archive_case_no == "24/01234"

    office = report.rows[1].data
    assert office.supplier_org_no == "987654325"  # "NO 987 654 325 MVA"
    assert office.category == "goods" and office.value_nok == 450_000
    # month-end notice deadline stays at month ends: 30 Nov 2025, then 30 Nov 2026
    assert [o.notice_deadline for o in office.options] == [date(2025, 11, 30), date(2026, 11, 30)]

    works = report.rows[2].data
    assert works.category == "works" and works.value_nok == 57_800_000
    assert works.manager_email == "ola.nordmann@kommune.no"  # from "Ola Nordmann <…>"
    assert works.internal_notes == "Dagmulkt avtalt.\nSluttoppgjør i 2027."  # multi-line cell
    assert works.controls[0].kind == "serious_employer"

    it = report.rows[3].data
    assert (it.start_date, it.end_date) == (date(2025, 1, 1), date(2026, 12, 31))  # two-digit years
    assert [o.months for o in it.options] == [12, 12]  # "12;12"


def test_xlsx_fixture_with_date_cells_and_other_aliases() -> None:
    report = parse_contract_file(XLSX_FIXTURE)
    assert report.file_format == "xlsx"
    assert report.header_line == 2  # a title line above the header
    assert report.columns["external_ref"] == "Kontraktsnummer"
    assert report.ignored_columns == ["Intern kolonne"]
    assert [(r.line_no, r.data.external_ref) for r in report.rows] == [
        (3, "KAV-2024-0012"),
        (4, "KAV-2024-0030"),
        (7, "KAV-2025-0040"),
    ]
    assert [tuple(e) for e in report.rejected] == [(6, "Rad 6: sluttdato 30.02.2026 er ikke en gyldig dato")]
    works = report.rows[1].data
    assert works.category == "works" and works.supplier_name == "Entreprenør Innlandet AS"
    assert works.start_date == date(2024, 8, 1) and works.end_date == date(2027, 7, 31)
    assert works.value_nok == 3_400_001  # 3 400 000,5 rounded half up
    assert works.supplier_org_no == "923456783"  # an integer cell
    assert [o.months for o in works.options] == [12, 12]  # "2 x 1 år"
    assert [o.notice_deadline for o in works.options] == [date(2027, 1, 31), date(2028, 1, 31)]
    consultant = report.rows[2].data
    assert consultant.manager_email == "" and consultant.risk_level == "low"
    assert [w.line_no for w in report.warnings] == [7]


def test_same_contract_in_csv_and_xlsx_has_the_same_fingerprint() -> None:
    csv_first = parse_contract_file(CSV_FIXTURE).rows[0].data
    xlsx_first = parse_contract_file(XLSX_FIXTURE).rows[0].data
    assert csv_first == xlsx_first
    assert csv_first.fingerprint() == xlsx_first.fingerprint()


def test_xlsx_fixture_matches_its_generator(tmp_path: Path) -> None:
    sys.path.insert(0, str(FIXTURES))
    try:
        import make_contract_xlsx
    finally:
        sys.path.remove(str(FIXTURES))
    fresh = parse_contract_file(make_contract_xlsx.build(tmp_path / "fresh.xlsx"))
    stored = parse_contract_file(XLSX_FIXTURE)
    assert fresh.rows == stored.rows and fresh.rejected == stored.rejected


# -- encodings and delimiters -----------------------------------------------------------


@pytest.mark.parametrize(
    ("delimiter", "encoding", "expected_encoding"),
    [
        (";", "utf-8-sig", "utf-8-sig"),
        (";", "utf-8", "utf-8"),
        (",", "utf-8-sig", "utf-8-sig"),
        (",", "utf-8", "utf-8"),
        (";", "cp1252", "cp1252"),
        (",", "cp1252", "cp1252"),
        ("\t", "utf-16", "utf-16"),
    ],
)
def test_csv_variants(delimiter: str, encoding: str, expected_encoding: str) -> None:
    report = parse_rows([GOOD], delimiter=delimiter, encoding=encoding)
    assert report.delimiter == delimiter and report.encoding == expected_encoding
    data = only(report)
    assert data.supplier_name == "Renhold Øst AS"
    assert data.value_nok == 1_250_000
    assert report.columns["supplier_name"] == "Leverandør"


def test_latin1_fallback_when_not_cp1252() -> None:
    # 0x81 is undefined in Windows-1252; such a file is read as Latin-1
    data = csv_bytes([row(Merknad="x")], encoding="latin-1").replace(b";x\r\n", b";x\x81\r\n")
    report = parse_contract_bytes(data, "export.csv")
    assert report.encoding == "latin-1"
    assert only(report).supplier_name == "Renhold Øst AS"


def test_bom_with_broken_utf8_falls_back() -> None:
    data = b"\xef\xbb\xbf" + csv_bytes([GOOD], encoding="cp1252")
    report = parse_contract_bytes(data, "export.csv")
    assert only(report).supplier_name == "Renhold Øst AS"


# -- header aliases ---------------------------------------------------------------------

SAMPLE = {
    "external_ref": "KAV-1",
    "supplier_name": "Leverandør AS",
    "supplier_org_no": "974760673",
    "title": "Avtale",
    "category": "Varer",
    "start_date": "01.01.2025",
    "end_date": "31.12.2026",
    "options": "1+1",
    "option_notice": "30.09.2026",
    "value_nok": "100 000",
    "agreement_type": "Rammeavtale",
    "manager": "a@b.no",
    "risk_level": "Høy",
    "controls": "2026-01-01 HMS",
    "archive_case_no": "24/1",
    "internal_notes": "hei",
    "cpv_codes": "33192000-2; 33192100",
    "scope": "Senger og madrasser",
}
REQUIRED = ["external_ref", "supplier_name", "title", "category", "start_date", "end_date"]
DEFAULT_HEADER = {
    "external_ref": "Avtalenummer",
    "supplier_name": "Leverandør",
    "title": "Avtalenavn",
    "category": "Kategori",
    "start_date": "Startdato",
    "end_date": "Sluttdato",
}


@pytest.mark.parametrize(("field", "alias"), [(s.field, a) for s in COLUMNS for a in s.aliases])
def test_every_alias_maps_to_its_field(field: str, alias: str) -> None:
    extra = ["options", "option_notice"] if field in ("options", "option_notice") else [field]
    fields = list(dict.fromkeys([*REQUIRED, *extra]))
    headers = [alias if f == field else DEFAULT_HEADER.get(f, f"X-{f}") for f in fields]
    # the helper names the optional columns with their first alias unless under test
    headers = [
        h if not h.startswith("X-") else next(s.aliases[0] for s in COLUMNS if s.field == h[2:]) for h in headers
    ]
    report = parse_contract_bytes(csv_bytes([[SAMPLE[f] for f in fields]], header=headers), "a.csv")
    assert report.columns[field] == alias
    data = only(report)
    checks: dict[str, Callable[[], bool]] = {
        "external_ref": lambda: data.external_ref == "KAV-1",
        "supplier_name": lambda: data.supplier_name == "Leverandør AS",
        "supplier_org_no": lambda: data.supplier_org_no == "974760673",
        "title": lambda: data.title == "Avtale",
        "category": lambda: data.category == "goods",
        "start_date": lambda: data.start_date == date(2025, 1, 1),
        "end_date": lambda: data.end_date == date(2026, 12, 31),
        "options": lambda: [o.months for o in data.options] == [12, 12],
        "option_notice": lambda: data.options[0].notice_deadline == date(2026, 9, 30),
        "value_nok": lambda: data.value_nok == 100_000,
        "agreement_type": lambda: data.agreement_type == "framework",
        "manager": lambda: data.manager_email == "a@b.no",
        "risk_level": lambda: data.risk_level == "high",
        "controls": lambda: data.controls == (PlannedControl("hms", date(2026, 1, 1), "HMS"),),
        "archive_case_no": lambda: data.archive_case_no == "24/1",
        "internal_notes": lambda: data.internal_notes == "hei",
        "cpv_codes": lambda: data.cpv_codes == ("33192000", "33192100"),
        "scope": lambda: data.scope == "Senger og madrasser",
    }
    assert checks[field]()


@pytest.mark.parametrize("header", [" AVTALENUMMER ", "avtale-id", "Avtale ID", "kontraktsnummer:"])
def test_header_matching_ignores_case_blanks_and_punctuation(header: str) -> None:
    report = parse_rows([GOOD], header=[header, *HEADER[1:]])
    assert report.columns["external_ref"] == header.strip()
    assert only(report).external_ref == "KAV-2024-0012"


def test_header_without_norwegian_letters() -> None:
    report = parse_rows([GOOD], header=["Avtalenummer", "Leverandor", *HEADER[2:]])
    assert only(report).supplier_name == "Renhold Øst AS"


def test_mapping_doc_lists_every_alias() -> None:
    for spec in COLUMNS:
        assert f"`{spec.field}`" in COLUMN_MAPPING_DOC
        for alias in spec.aliases:
            assert f"`{alias}`" in COLUMN_MAPPING_DOC
    assert COLUMN_MAPPING_DOC in (columns.__doc__ or "")
    assert COLUMN_MAPPING_DOC.count("\n|") == len(COLUMNS) + 1  # header, rule and one line per column


def test_readme_shows_the_mapping_the_import_uses() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert COLUMN_MAPPING_DOC in readme, "update the README's table from columns.COLUMN_MAPPING_DOC"


# -- values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "text", "field", "expected"),
    [
        ("Kategori", "Vare", "category", "goods"),
        ("Kategori", "Varer", "category", "goods"),
        ("Kategori", "varer", "category", "goods"),
        ("Kategori", "Tjeneste", "category", "services"),
        ("Kategori", "Tjenester", "category", "services"),
        ("Kategori", "Bygg og anlegg", "category", "works"),
        ("Kategori", "BA", "category", "works"),
        ("Kategori", "Bygg- og anleggsarbeid", "category", "works"),
        ("Kategori", "works", "category", "works"),
        ("Risiko", "Lav", "risk_level", "low"),
        ("Risiko", "Middels", "risk_level", "medium"),
        ("Risiko", "Høy", "risk_level", "high"),
        ("Risiko", "HØY", "risk_level", "high"),
        ("Risiko", "hoy", "risk_level", "high"),
        ("Risiko", "", "risk_level", "medium"),
    ],
)
def test_category_and_risk_words(column: str, text: str, field: str, expected: str) -> None:
    assert getattr(only(parse_rows([row(**{column: text})])), field) == expected


def test_unknown_category_is_rejected() -> None:
    report = parse_rows([row(Kategori="Mat")])
    assert report.rejected[0].reason == ("Rad 2: kategori «Mat» er ukjent (bruk Varer, Tjenester eller Bygg og anlegg)")


@pytest.mark.parametrize(
    ("text", "expected", "warns"),
    [
        ("Rammeavtale", "framework", False),
        ("rammeavtale", "framework", False),
        ("", "single", False),
        ("Enkeltkontrakt", "single", False),
        ("Enkeltavtale", "single", False),
        ("Noe annet", "single", True),
    ],
)
def test_agreement_types(text: str, expected: str, warns: bool) -> None:
    report = parse_rows([row(Avtaletype=text)])
    assert only(report).agreement_type == expected
    assert bool(report.warnings) == warns


def test_unknown_risk_is_rejected() -> None:
    assert "risiko «Kritisk» er ukjent" in parse_rows([row(Risiko="Kritisk")]).rejected[0].reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 250 000", 1_250_000),
        ("1.250.000", 1_250_000),
        ("1 250 000,00", 1_250_000),
        ("kr 1 250 000,-", 1_250_000),
        ("1\u00a0250\u00a0000", 1_250_000),
        ("NOK 1250000", 1_250_000),
        ("1250000", 1_250_000),
        ("1 250 000,50", 1_250_001),
        ("1,250,000.00", 1_250_000),
        ("1,3 mill", 1_300_000),
        ("1 250 000 kr", 1_250_000),
        ("1 250 000 (eks. mva)", 1_250_000),
        ("", None),
        (None, None),
        (1250000, 1_250_000),
        (1250000.49, 1_250_000),
        (3400000.5, 3_400_001),
        ("0", None),
        (0, None),
    ],
)
def test_parse_amount(text: object, expected: int | None) -> None:
    assert parse_amount(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "mye",
        "1 2 3,4,5",
        "-100",
        "12..3",
        "kr",
        True,
        float("nan"),
        float("inf"),
        "1" * 30,
        -5,
        "1.300",
        "1,3",
        datetime(2026, 1, 1),
    ],
)
def test_parse_amount_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_amount(text)


@pytest.mark.parametrize("text", ["1 250 000,50", "kr 1 250 000,-", "1,25 mill", "1.300", "1,3", "0", "mye"])
def test_the_card_and_the_import_read_amounts_alike(text: str) -> None:
    form = validate_contract_form({**CARD, "value_nok": text}, today=date(2024, 12, 1))
    try:
        imported = parse_amount(text)
    except ValueError:
        assert "value_nok" in form.errors
    else:
        if imported is None:  # "0": no value in a file, but the card asks for one
            assert "value_nok" in form.errors
        else:
            assert form.value is not None and form.value.value_nok == imported


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("31.12.2026", date(2026, 12, 31)),
        ("31.12.26", date(2026, 12, 31)),
        ("2026-12-31", date(2026, 12, 31)),
        ("31/12/2026", date(2026, 12, 31)),
        ("31-12-2026", date(2026, 12, 31)),
        ("1.1.2027", date(2027, 1, 1)),
        (" 31.12.2026 ", date(2026, 12, 31)),
        ("2026-12-31 00:00:00", date(2026, 12, 31)),
        ("31.12.2026 14:30", date(2026, 12, 31)),
        ("2026-12-31T00:00:00", date(2026, 12, 31)),
        (datetime(2026, 12, 31, 0, 0), date(2026, 12, 31)),
        (date(2026, 12, 31), date(2026, 12, 31)),
        (46387, date(2026, 12, 31)),
        (46387.0, date(2026, 12, 31)),
        ("29.02.2028", date(2028, 2, 29)),
        ("31.02.2026", None),
        ("29.02.2027", None),
        ("2026-13-01", None),
        ("31.12", None),
        ("i morgen", None),
        ("", None),
        (None, None),
        (2026, None),
        (True, None),
        ("31.12/2026", None),
        ("00.01.2026", None),
    ],
)
def test_parse_date_cell(value: object, expected: date | None) -> None:
    assert parse_date_cell(value) == expected


@given(
    st.one_of(
        st.text(),
        st.text(alphabet="0123456789./- :T", max_size=25),
        st.integers(),
        st.floats(),
        st.none(),
        st.booleans(),
    )
)
def test_parse_date_cell_never_raises(value: object) -> None:
    result = parse_date_cell(value)
    assert result is None or isinstance(result, date)


@given(st.dates(min_value=date(1970, 1, 1), max_value=date(2199, 12, 31)))
def test_parse_date_cell_round_trips(d: date) -> None:
    assert parse_date_cell(format_date(d)) == d
    assert parse_date_cell(d.isoformat()) == d
    assert parse_date_cell(d.strftime("%d/%m/%Y")) == d
    if 2000 <= d.year < 2070:
        assert parse_date_cell(d.strftime("%d.%m.%y")) == d


@given(st.one_of(st.text(max_size=40), st.text(alphabet="0123456789 .,-+x;kr", max_size=40)))
def test_free_text_parsers_raise_only_value_error(text: str) -> None:
    for parser in (parse_amount, parse_options_spec, parse_controls):
        try:
            parser(text)
        except ValueError:
            pass


def test_invalid_dates_give_precise_reasons() -> None:
    report = parse_rows([row(Sluttdato="31.02.2026"), row(Avtalenummer="KAV-2", Startdato="snart")])
    assert [e.reason for e in report.rejected] == [
        "Rad 2: sluttdato 31.02.2026 er ikke en gyldig dato",
        "Rad 3: startdato snart er ikke en gyldig dato (skriv f.eks. 31.12.2026)",
    ]
    assert report.rejected[0].reason_en == "Row 2: end date 31.02.2026 is not a valid date"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1+1", [12, 12]),
        ("1+1+1", [12, 12, 12]),
        ("2x12 mnd", [12, 12]),
        ("2 x 12 mnd", [12, 12]),
        ("2×12", [12, 12]),
        ("2 x 1 år", [12, 12]),
        ("12;12", [12, 12]),
        ("12, 6", [12, 6]),
        ("1 år + 6 mnd", [12, 6]),
        ("12 mnd", [12]),
        ("6 måneder", [6]),
        ("2 år", [24]),
        ("Ingen", []),
        ("", []),
        ("0", []),
        ("-", []),
        ("1 + 1 opsjonsår", [12, 12]),
        ("Opsjoner: 1+1", [12, 12]),
    ],
)
def test_parse_options_spec(text: str, expected: list[int]) -> None:
    assert parse_options_spec(text) == expected


@pytest.mark.parametrize("text", ["12", "ja", "1+x", "200 mnd", "11x12", "0 mnd"])
def test_parse_options_spec_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_options_spec(text)


def test_lone_number_of_options_is_rejected_as_ambiguous() -> None:
    report = parse_rows([row(Opsjoner="12")])
    assert report.rejected[0].reason == (
        "Rad 2: opsjoner «12» er tvetydig: skriv enheten, f.eks. «12 mnd» eller «1 år»"
    )


def test_option_deadlines_in_days_when_not_whole_months() -> None:
    options = derive_option_deadlines(date(2026, 6, 30), [12, 12], date(2026, 3, 15))
    # 107 days before the end of each period
    assert [o.notice_deadline for o in options] == [date(2026, 3, 15), date(2027, 3, 15)]
    # 107 days before 15 Dec 2026, the end of the 6-month option 1
    options = derive_option_deadlines(date(2026, 6, 15), [6, 12], date(2026, 2, 28))
    assert [o.notice_deadline for o in options] == [date(2026, 2, 28), date(2026, 8, 30)]


def test_option_deadlines_in_months() -> None:
    options = derive_option_deadlines(date(2027, 2, 28), [12, 6], date(2026, 11, 30))
    assert [(o.number, o.months, o.notice_deadline) for o in options] == [
        (1, 12, date(2026, 11, 30)),
        (2, 6, date(2027, 11, 30)),
    ]
    options = derive_option_deadlines(date(2026, 12, 15), [12], date(2026, 9, 15))
    assert options[0].notice_deadline == date(2026, 9, 15)


def test_missing_option_notice_warns_and_uses_period_end() -> None:
    report = parse_rows([row(Opsjonsfrist="")])
    data = only(report)
    assert [o.notice_deadline for o in data.options] == [date(2026, 12, 31), date(2027, 12, 31)]
    assert report.warnings[0].message.startswith("Rad 2: opsjonsfrist mangler")


def test_notice_after_end_is_rejected() -> None:
    report = parse_rows([row(Opsjonsfrist="01.01.2027")])
    assert report.rejected[0].reason == "Rad 2: opsjonsfrist 01.01.2027 er etter sluttdato 31.12.2026"


def test_notice_without_options_warns() -> None:
    report = parse_rows([row(Opsjoner="")])
    assert only(report).options == ()
    assert "ingen opsjoner" in report.warnings[0].message


def test_controls() -> None:
    assert parse_controls(
        "2025-06-30 Lønnskontroll; 2026-01-15 HMS-kontroll\n30.06.2026 Miljø | Lærlinger 01.09.2026"
    ) == [
        PlannedControl("wage_conditions", date(2025, 6, 30), "Lønnskontroll"),
        PlannedControl("hms", date(2026, 1, 15), "HMS-kontroll"),
        PlannedControl("environment", date(2026, 6, 30), "Miljø"),
        PlannedControl("apprentices", date(2026, 9, 1), "Lærlinger"),
    ]
    assert parse_controls("2026-03-01") == [PlannedControl("other", date(2026, 3, 1), "Kontroll")]
    assert parse_controls("") == []
    with pytest.raises(ValueError, match="Lønnskontroll i juni"):
        parse_controls("Lønnskontroll i juni")


def test_bad_control_rejects_the_row() -> None:
    report = parse_rows([row(Kontroller="2025-06-31 Lønnskontroll")])
    assert report.rejected[0].reason.startswith("Rad 2: kontroll «2025-06-31 Lønnskontroll» har ingen gyldig dato")


@pytest.mark.parametrize(
    ("text", "email", "aad_id"),
    [
        ("Kari.Nordmann@Kommune.no", "kari.nordmann@kommune.no", None),
        ("Kari Nordmann <kari.nordmann@kommune.no>", "kari.nordmann@kommune.no", None),
        ("0F8FAD5B-D9CB-469F-A165-70867728950E", "", "0f8fad5b-d9cb-469f-a165-70867728950e"),
    ],
)
def test_manager(text: str, email: str, aad_id: str | None) -> None:
    data = only(parse_rows([row(Avtaleforvalter=text)]))
    assert (data.manager_email, data.manager_aad_id) == (email, aad_id)


def test_manager_that_is_not_an_address_is_rejected() -> None:
    report = parse_rows([row(Avtaleforvalter="Kari Nordmann")])
    assert report.rejected[0].reason == "Rad 2: avtaleforvalter «Kari Nordmann» er ikke en e-postadresse"


def test_too_long_values_are_rejected_before_they_reach_the_store() -> None:
    report = parse_rows([row(Avtalenummer="K" * 65, Arkivsak="24/" + "1" * 40)])
    assert report.rejected[0].reason == (
        "Rad 2: avtalenummeret er lengre enn 64 tegn; arkivsaksnummeret er lengre enn 32 tegn"
    )


def test_unusual_case_number_warns_but_is_kept() -> None:
    report = parse_rows([row(Arkivsak="sak 1234")])
    assert only(report).archive_case_no == "sak 1234"
    assert "arkivsak «sak 1234»" in report.warnings[0].message


# -- rows -------------------------------------------------------------------------------


def test_bad_rows_do_not_stop_good_rows_and_list_every_problem() -> None:
    report = parse_rows(
        [
            row(Avtalenummer="KAV-1"),
            row(Avtalenummer="KAV-2", **{"Org.nr": "123"}, Sluttdato="31.02.2026", Avtalenavn=""),
            row(Avtalenummer="KAV-3", Startdato="01.01.2027"),
            row(Avtalenummer="KAV-4", **{"Avtaleverdi (eks. mva)": "mange penger"}),
            row(Avtalenummer="KAV-5"),
        ]
    )
    assert [r.data.external_ref for r in report.rows] == ["KAV-1", "KAV-5"]
    assert [e.reason for e in report.rejected] == [
        "Rad 3: avtalenavn mangler; sluttdato 31.02.2026 er ikke en gyldig dato; "
        "organisasjonsnummer 123 må ha 9 siffer",
        "Rad 4: sluttdato 31.12.2026 er før startdato 01.01.2027",
        "Rad 5: verdien «mange penger»: Vi forstod ikke beløpet. Skriv det i hele kroner, "
        "for eksempel 1 300 000, 1300000 kr, 1,3 mill eller 250' (= 250 000 kr)",
    ]


def test_duplicate_external_ref_rejects_the_later_row() -> None:
    report = parse_rows([row(), row(Avtalenavn="Annen"), row(Avtalenummer="kav-2024-0012")])
    assert [r.line_no for r in report.rows] == [2]
    assert report.rows[0].data.title == "Renholdstjenester"
    assert [e.reason for e in report.rejected] == [
        "Rad 3: avtalenummer KAV-2024-0012 står allerede i rad 2; raden er hoppet over",
        "Rad 4: avtalenummer kav-2024-0012 står allerede i rad 2; raden er hoppet over",
    ]


def test_blank_rows_are_skipped_and_short_rows_padded() -> None:
    data = csv_bytes([GOOD]) + b"\r\n;;;;\r\n" + b"KAV-9;Lev AS;;Tittel;Varer;01.01.2025;31.12.2025\r\n"
    report = parse_contract_bytes(data, "x.csv")
    assert [(r.line_no, r.data.external_ref) for r in report.rows] == [
        (2, "KAV-2024-0012"),
        (5, "KAV-9"),
    ]


def test_row_error_unpacks_as_line_and_reason() -> None:
    error = RowError(7, "Rad 7: x", "Row 7: x")
    line_no, reason = error
    assert (line_no, reason) == (7, "Rad 7: x")


# -- file-level problems ----------------------------------------------------------------


def test_missing_required_columns() -> None:
    with pytest.raises(ContractFileError) as info:
        parse_contract_bytes(csv_bytes([GOOD[:4]], header=HEADER[:4]), "x.csv")
    assert info.value.message_nb.startswith("Påkrevde kolonner mangler: Kategori (eller Anskaffelseskategori")
    assert "Startdato" in info.value.message_nb and "Sluttdato" in info.value.message_nb


def test_no_header_row() -> None:
    with pytest.raises(ContractFileError, match="Fant ingen overskriftsrad"):
        parse_contract_bytes(b"a;b;c\r\n1;2;3\r\n", "x.csv")
    with pytest.raises(ContractFileError):
        parse_contract_bytes(b"", "x.csv")


def test_two_columns_for_one_field() -> None:
    with pytest.raises(ContractFileError, match="«Avtalenummer» og «Avtale-ID» betyr begge"):
        parse_contract_bytes(csv_bytes([[*GOOD, "X"]], header=[*HEADER, "Avtale-ID"]), "x.csv")


def test_old_excel_and_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ContractFileError, match=r"\.xls"):
        parse_contract_bytes(b"\xd0\xcf\x11\xe0rest", "avtaler.xls")
    with pytest.raises(ContractFileError, match="kan ikke leses"):
        parse_contract_file(tmp_path / "missing.csv")
    with pytest.raises(ContractFileError, match="Excel-filen kan ikke leses"):
        parse_contract_bytes(b"PK\x03\x04 not really a zip", "avtaler.xlsx")


# -- applying ---------------------------------------------------------------------------


class FakePort:
    """The store's side of the Protocol: unchanged when the fingerprint matches."""

    def __init__(self, fail_on: str = "") -> None:
        self.fingerprints: dict[str, str] = {}
        self.fail_on = fail_on

    async def upsert_contract(self, data: ContractData) -> Literal["created", "updated", "unchanged"]:
        if data.external_ref == self.fail_on:
            raise RuntimeError("database is locked")
        old = self.fingerprints.get(data.external_ref)
        self.fingerprints[data.external_ref] = data.fingerprint()
        if old is None:
            return "created"
        return "unchanged" if old == data.fingerprint() else "updated"


def test_fake_port_satisfies_the_protocol() -> None:
    port: ContractUpsertPort = FakePort()
    assert port is not None


async def test_import_then_reimport_is_unchanged() -> None:
    port = FakePort()
    first = await apply_import(port, parse_contract_file(CSV_FIXTURE))
    assert (first.created, first.updated, first.unchanged) == (4, 0, 0)
    assert len(first.rejected) == 4 and not first.ok
    again = await apply_import(port, parse_contract_file(CSV_FIXTURE))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    # the Excel export of the same contract is the same contract
    xlsx = await apply_import(port, parse_contract_file(XLSX_FIXTURE))
    assert (xlsx.created, xlsx.updated, xlsx.unchanged) == (2, 0, 1)


async def test_changed_row_is_updated() -> None:
    port = FakePort()
    await apply_import(port, parse_rows([row(), row(Avtalenummer="KAV-2")]))
    summary = await apply_import(port, parse_rows([row(Sluttdato="31.12.2027"), row(Avtalenummer="KAV-2")]))
    assert (summary.created, summary.updated, summary.unchanged) == (0, 1, 1)
    assert summary.updated_refs == ["KAV-2024-0012"] and summary.ok


async def test_store_failure_on_one_row_does_not_stop_the_rest() -> None:
    port = FakePort(fail_on="KAV-2")
    summary = await apply_import(
        port,
        parse_rows([row(Avtalenummer="KAV-1"), row(Avtalenummer="KAV-2"), row(Avtalenummer="KAV-3")]),
    )
    assert summary.created_refs == ["KAV-1", "KAV-3"]
    assert [tuple(f) for f in summary.failed] == [
        (3, "Rad 3: KAV-2 kunne ikke lagres (RuntimeError: database is locked)"),
    ]


def test_format_summary_nb_and_en() -> None:
    summary = ImportSummary(
        source="avtaler.csv",
        created_refs=["A"],
        unchanged_refs=["B", "C"],
        rejected=[
            RowError(
                7,
                "Rad 7: sluttdato 31.02.2026 er ikke en gyldig dato",
                "Row 7: end date 31.02.2026 is not a valid date",
            )
        ],
    )
    assert format_summary(summary) == (
        "Import av avtaler fra avtaler.csv\n"
        "Opprettet: 1\nOppdatert: 0\nUendret: 2\nAvvist: 1\n"
        "  Rad 7: sluttdato 31.02.2026 er ikke en gyldig dato\n"
    )
    english = format_summary(summary, lang="en")
    assert "Created: 1" in english and "Row 7: end date 31.02.2026 is not a valid date" in english


def test_format_parse_report() -> None:
    text = format_parse_report(parse_contract_file(CSV_FIXTURE))
    assert "Format: CSV, utf-8-sig, semikolon" in text
    assert "Godkjente rader: 4" in text and "Avvist: 4" in text
    assert "  Rad 6: sluttdato 31.02.2026 er ikke en gyldig dato" in text
    assert "  2: KAV-2024-0012 – Renholdstjenester for skoler" in text


# -- command line -----------------------------------------------------------------------


def run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = contract_import_cli.main(args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_dry_run() -> None:
    code, out, err = run_cli([str(CSV_FIXTURE), "--dry-run"])
    assert code == 1 and err == ""
    assert "tørrkjøring" in out and "Rad 11: kategori mangler" in out
    code, out, _ = run_cli([str(XLSX_FIXTURE), "--dry-run", "--lang", "en"])
    assert code == 1 and "Accepted rows: 3" in out


def test_cli_unreadable_file_and_missing_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run_cli([str(tmp_path / "none.csv"), "--dry-run"])
    assert code == 2 and "kan ikke leses" in err
    # No URL: the bot's settings decide; without a register to open, it says how to import.
    monkeypatch.delenv("DATABASE_URL", raising=False)
    code, _, err = run_cli([str(CSV_FIXTURE)])
    assert code == 2 and "innkjop-import-contracts" in err


def test_cli_without_register_says_so() -> None:
    code, out, err = run_cli([str(CSV_FIXTURE), "--database-url", "sqlite+aiosqlite:///:memory:"])
    assert code == 2 and out == ""
    assert "innkjop-import-contracts" in err


def test_cli_reports_a_database_that_cannot_be_opened() -> None:
    @asynccontextmanager
    async def open_store(database_url: str) -> AsyncIterator[FakePort]:
        raise ConnectionRefusedError("connection refused")
        yield FakePort()  # pragma: no cover

    out, err = io.StringIO(), io.StringIO()
    code = contract_import_cli.main(
        [str(CSV_FIXTURE), "--database-url", "postgresql+asyncpg://x/y"],
        out=out,
        err=err,
        open_store=open_store,
    )
    assert code == 2 and "databasen kunne ikke åpnes (ConnectionRefusedError)" in err.getvalue()
    assert "connection refused" not in err.getvalue()  # a driver's text may carry the URL


def test_cli_imports_through_open_store() -> None:
    port = FakePort()
    urls: list[str] = []

    @asynccontextmanager
    async def open_store(database_url: str) -> AsyncIterator[FakePort]:
        urls.append(database_url)
        yield port

    def cli(args: list[str]) -> tuple[int, str]:
        out = io.StringIO()
        return contract_import_cli.main(args, out=out, err=io.StringIO(), open_store=open_store), out.getvalue()

    # Without --database-url the register opens the bot's own database (settings decide).
    code, out = cli([str(XLSX_FIXTURE)])
    assert code == 1  # one row rejected
    assert urls == [""]
    assert "Opprettet: 3" in out and "Avvist: 1" in out
    code, out = cli([str(XLSX_FIXTURE), "--database-url", "sqlite+aiosqlite:///x.db"])
    assert "Opprettet: 0" in out and "Uendret: 3" in out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["KAV-1", "KAV-2", "kav-1", "KAV-3"]), min_size=1, max_size=6))
def test_duplicates_property(refs: list[str]) -> None:
    report = parse_rows([row(Avtalenummer=r) for r in refs])
    accepted = [r.data.external_ref.casefold() for r in report.rows]
    assert len(accepted) == len(set(accepted)) == len({r.casefold() for r in refs})
    assert len(report.rows) + len(report.rejected) == len(refs)


def test_the_card_and_the_import_make_the_same_contract() -> None:
    typed = validate_contract_form(CARD, today=date(2024, 12, 1))
    assert typed.errors == {}
    assert typed.value == only(parse_rows([GOOD]))


# -- what an agreement covers: CPV codes and scope --------------------------------------------


def test_fixtures_carry_cpv_codes_and_scope() -> None:
    csv_first = parse_contract_file(CSV_FIXTURE).rows[0].data
    assert csv_first.cpv_codes == ("90911200",)  # "90911200-8": the check digit is not kept
    assert csv_first.scope == "Renhold av skoler og barnehager"
    office = parse_contract_file(CSV_FIXTURE).rows[1].data
    assert office.cpv_codes == ("30192000",)  # the name after the code is ignored
    xlsx = parse_contract_file(XLSX_FIXTURE)
    assert xlsx.rows[0].data.cpv_codes == ("90911200",)  # a number cell
    assert xlsx.columns["cpv_codes"] == "CPV-koder" and xlsx.columns["scope"] == "Beskrivelse"
    assert xlsx.rows[1].data.cpv_codes == ("45214000", "45453000")  # two codes on two lines


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("33192000-2, 33192100", ("33192000", "33192100")),
        ("33192000;33192100\n30192000", ("33192000", "33192100", "30192000")),
        ("33192000-2 33192000", ("33192000",)),  # the same code twice
        ("33192000-2 - Medisinske møbler", ("33192000",)),
        ("", ()),
    ],
)
def test_cpv_column_reads_several_codes(cell: str, expected: tuple[str, ...]) -> None:
    report = parse_rows([[*GOOD, cell]], header=[*HEADER, "CPV-kode"])
    assert only(report).cpv_codes == expected


def test_excel_number_cell_gets_its_leading_zero_back() -> None:
    assert cpv_cell_text(3000000) == "03000000"  # 03000000 typed as a number
    assert cpv_cell_text(33192000.0) == "33192000"
    assert cpv_cell_text("33192000-2") == "33192000-2"


@pytest.mark.parametrize("cell", ["3319", "33192000-22", "Medisinske møbler", "33192000, 1234567"])
def test_bad_cpv_code_rejects_the_row_with_the_reason(cell: str) -> None:
    report = parse_rows([[*GOOD, cell]], header=[*HEADER, "CPV"])
    assert report.rows == []
    [rejected] = report.rejected
    assert "er ikke gyldig: en CPV-kode har 8 siffer" in rejected.reason
    assert "8 digits" in rejected.reason_en


def test_scope_column_and_the_card_make_the_same_contract() -> None:
    imported = only(
        parse_rows([[*GOOD, "33192000-2; 33192100", "Senger til sykehjem"]], header=[*HEADER, "CPV", "Omfang"])
    )
    typed = validate_contract_form(
        {**CARD, "cpv": "33192000-2, 33192100", "scope": "Senger til sykehjem"}, date(2024, 12, 1)
    )
    assert typed.errors == {} and typed.value == imported
    assert imported.scope == "Senger til sykehjem"
    assert typed.value.fingerprint() == imported.fingerprint()


def test_card_reports_a_bad_cpv_code_at_its_field() -> None:
    result = validate_contract_form({**CARD, "cpv": "33192000, 3319", "scope": "Senger"}, date(2024, 12, 1))
    assert result.value is None and set(result.errors) == {"cpv"}
    assert result.errors["cpv"]["nb"].startswith("CPV-koden «3319» er ikke gyldig")
    assert result.errors["cpv"]["en"].startswith("The CPV code “3319” is not valid")


def test_card_reports_too_many_codes_and_a_long_scope() -> None:
    many = ", ".join(f"3319{n:04d}" for n in range(21))
    result = validate_contract_form({**CARD, "cpv": many, "scope": "x" * 2001}, date(2024, 12, 1))
    assert set(result.errors) == {"cpv", "scope"}
    assert "høyst 20 CPV-koder" in result.errors["cpv"]["nb"]
    assert "2000 tegn" in result.errors["scope"]["nb"]


def test_coverage_changes_the_fingerprint_but_a_contract_without_it_keeps_its_own() -> None:
    plain = only(parse_rows([GOOD]))
    assert "cpv_codes" not in plain.normalized() and "scope" not in plain.normalized()
    with_cpv = only(parse_rows([[*GOOD, "33192000"]], header=[*HEADER, "CPV"]))
    with_scope = only(parse_rows([[*GOOD, "Senger"]], header=[*HEADER, "Omfang"]))
    assert len({plain.fingerprint(), with_cpv.fingerprint(), with_scope.fingerprint()}) == 3
    # the same codes in another spelling are the same contract
    spelled = only(parse_rows([[*GOOD, "33192000-2"]], header=[*HEADER, "CPV"]))
    assert spelled.fingerprint() == with_cpv.fingerprint()
