"""“Avvik for <leverandør>”: counts, open first, average time to closure; the CSV export for
Excel; and every catalog key the deviation domain names."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import UTC, date, datetime, timedelta

from cards.strings import STRINGS, text
from procurement.deviations import fields
from procurement.deviations.record import STATUSES, SUPPLIER_NOTICE_CHOICES, DeviationReport
from procurement.deviations.summary import (
    CSV_COLUMNS,
    csv_rows,
    export_csv,
    export_file_name,
    same_supplier,
    supplier_summary,
)

START = datetime(2026, 3, 1, 8, tzinfo=UTC)


def report(
    n: int, *, status: str = "reported", severity: str = "low", category: str = "delivery", **changes: object
) -> DeviationReport:
    base = DeviationReport(
        ref=f"AV-2026-{n:04d}",
        status=status,
        reporter_aad_id=f"reporter-{n}",
        reporter_name=f"Hemmelig Melder {n}",
        category=category,
        severity=severity,
        description=f"Avvik nummer {n}",
        occurred_on=date(2026, 3, 1),
        created_at=START + timedelta(days=n),
        supplier_name="Renhold Øst AS",
        contract_ref="KAV-2024-017",
        contract_title="Renhold av skoler",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def closed(n: int, days: float, **changes: object) -> DeviationReport:
    created = START + timedelta(days=n)
    done = dataclasses.replace(
        report(n), status="closed", closed_at=created + timedelta(days=days), closing_justification="Rettet."
    )
    return dataclasses.replace(done, **changes)  # type: ignore[arg-type]


REPORTS = [
    closed(1, 10, category="quality"),
    report(2, severity="medium"),
    report(3, severity="critical", category="wage_conditions", status="in_progress"),
    closed(4, 5, severity="high"),
    report(5, severity="critical", category="hms"),
    report(6, severity="low", status="received"),
]


def test_counts_by_category_and_severity_with_zeros() -> None:
    summary = supplier_summary("Renhold Øst AS", REPORTS)
    assert (summary.total, summary.open_count) == (6, 4)
    assert dict(summary.by_category) == {
        "delivery": 3,
        "quality": 1,
        "price_invoice": 0,
        "wage_conditions": 1,
        "hms": 1,
        "environment": 0,
        "ethics": 0,
        "apprentices": 0,
        "other": 0,
    }
    assert [c for c, _ in summary.by_category] == list(fields.CATEGORIES)
    assert summary.by_severity == (("critical", 2), ("high", 1), ("medium", 1), ("low", 2))


def test_open_ones_first_most_serious_then_oldest_then_closed_newest_first() -> None:
    summary = supplier_summary("Renhold Øst AS", REPORTS)
    assert [r.ref[-1] for r in summary.reports] == ["3", "5", "2", "6", "4", "1"]
    assert [r.ref[-1] for r in summary.open_reports] == ["3", "5", "2", "6"]


def test_average_time_to_closure_in_days() -> None:
    assert supplier_summary("x", REPORTS).average_days_to_closure == 7.5
    assert supplier_summary("x", [closed(1, 1.25), closed(2, 2)]).average_days_to_closure == 1.6  # one decimal
    empty = supplier_summary("x", [report(1)])
    assert empty.average_days_to_closure is None
    assert supplier_summary("x", []).total == 0


def test_same_supplier_folds_case_letters_and_company_form() -> None:
    assert same_supplier("Renhold Øst AS", "renhold ost")
    assert same_supplier("Renhold Øst AS", "  RENHOLD  øst, as ")
    assert not same_supplier("Renhold Øst AS", "Renhold Vest AS")
    assert not same_supplier("AS", "as")  # nothing left to compare


def label_nb(key: str) -> str:
    return text("nb", key)


def parse(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    body = data.decode("utf-8-sig")
    assert "\r\n" in body
    return list(csv.reader(io.StringIO(body, newline=""), delimiter=";"))


def test_csv_is_utf8_with_bom_semicolons_and_norwegian_labels() -> None:
    rows = parse(export_csv(REPORTS, label_nb))
    assert rows[0][:3] == ["Referanse", "Status", "Meldt dato"]
    assert len(rows) == 1 + len(REPORTS) and all(len(r) == len(CSV_COLUMNS) for r in rows)
    first = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert first["ref"] == "AV-2026-0001"
    assert first["status"] == "Lukket"
    assert first["created"] == "02.03.2026" and first["closed"] == "12.03.2026"
    assert first["category"] == "Kvalitet" and first["severity"] == "Lav"
    assert first["contract"] == "KAV-2024-017 Renhold av skoler"
    assert first["supplier"] == "Renhold Øst AS"


def test_csv_never_names_the_reporter() -> None:
    data = export_csv(REPORTS, label_nb).decode("utf-8-sig")
    assert "Hemmelig Melder" not in data and "reporter-" not in data


def test_csv_neutralises_formulas_and_keeps_semicolons_and_lines_inside_cells() -> None:
    hostile = report(
        9,
        description='=HYPERLINK("http://x";"klikk")',
        location="+47 999",
        breached_clause="-1; punkt 2\nlinje to",
        financial_impact=12500,
    )
    [row] = parse(export_csv([hostile], label_nb))[1:]
    values = dict(zip(CSV_COLUMNS, row, strict=True))
    assert values["description"] == '\'=HYPERLINK("http://x";"klikk")'
    assert values["location"] == "'+47 999"
    assert values["breached_clause"] == "'-1; punkt 2\nlinje to"
    assert values["financial_impact"] == "12500"


def test_csv_in_english() -> None:
    rows = csv_rows(REPORTS[:1], lambda key: text("en", key))
    assert rows[0][0] == "Reference" and rows[1][1] == "Closed"


def test_export_file_name_is_plain() -> None:
    assert export_file_name("Renhold Øst AS", START) == "avvik-renhold-ost-as-2026-03-01.csv"
    assert export_file_name("../../«»", START) == "avvik-leverandor-2026-03-01.csv"


def test_every_catalog_key_the_domain_names_exists_in_both_languages() -> None:
    keys = [f"dv_label_{f}" for f in fields.FORM_FIELDS]
    keys += [f"dv_category_{c}" for c in fields.CATEGORIES]
    keys += [f"dv_severity_{s}" for s in fields.SEVERITIES] + [f"dv_severity_{s}_help" for s in fields.SEVERITIES]
    keys += [f"dv_status_{s}" for s in STATUSES] + [f"dv_csv_{c}" for c in CSV_COLUMNS]
    keys += [f"dv_supplier_notice_{c}" for c in SUPPLIER_NOTICE_CHOICES]
    keys += [f"dv_notify_{s}" for s in ("reported", "received", "in_progress", "deadline_moved")]
    keys += ["dv_notify_sanction_assessed", "dv_notify_closed", "dv_attachments_limits"]
    for lang in ("nb", "en"):
        missing = [k for k in keys if k not in STRINGS[lang]]
        assert missing == [], lang
    assert "JPEG" in text(
        "nb", "dv_attachments_limits", types=fields.ALLOWED_SUMMARY, size_mb=10, count=fields.MAX_ATTACHMENTS
    )
