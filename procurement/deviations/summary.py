"""“Avvik for <leverandør>”: a supplier's deviations counted and ordered, and the CSV export for
the supplier follow-up meeting. Pure over records the service has already filtered by access.

The CSV is made for Excel as Norwegian offices open it: UTF-8 with a byte order mark (without
it Excel reads æøå as Windows-1252), semicolon as separator (the list separator of the
Norwegian locale, because the comma is the decimal sign), CRLF line ends, dates dd.mm.yyyy,
amounts as plain digits so they stay numbers. Text that a spreadsheet would run as a formula
(starting with = + - @, tab or CR) is prefixed with an apostrophe. The reporter is not in the
export: it may be shown to the supplier, and the reporter's identity never goes there.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from procurement.deviations.fields import CATEGORIES, SEVERITIES, SEVERITY_RANK
from procurement.deviations.record import DeviationReport
from procurement.shared.dates import format_date
from procurement.shared.text import fold


@dataclass(frozen=True)
class SupplierSummary:
    supplier: str
    total: int
    open_count: int
    by_category: tuple[tuple[str, int], ...]  # every category, in form order, zeros included
    by_severity: tuple[tuple[str, int], ...]  # critical first
    reports: tuple[DeviationReport, ...]  # open first (most serious, then oldest), then closed (newest)
    average_days_to_closure: float | None  # None when none is closed

    @property
    def open_reports(self) -> tuple[DeviationReport, ...]:
        return self.reports[: self.open_count]


def same_supplier(name: str, query: str) -> bool:
    """Whether a report's supplier is the one asked for: case, æøå, spaces and the company
    form ("AS", "ASA") folded away, so "renhold as" finds "Renhold AS"."""
    return _supplier_key(name) == _supplier_key(query) != ""


def _supplier_key(name: str) -> str:
    words = fold(name).replace(".", " ").replace(",", " ").split()
    while words and words[-1] in ("as", "asa", "ans", "da", "sa", "ba", "enk", "nuf"):
        words.pop()
    return " ".join(words)


def _order_key(report: DeviationReport) -> tuple[int, int, float]:
    if report.is_open:  # most serious first, then the oldest (waiting longest)
        return (0, -SEVERITY_RANK.get(report.severity, 0), report.created_at.timestamp())
    return (1, 0, -report.created_at.timestamp())


def supplier_summary(supplier: str, reports: Iterable[DeviationReport]) -> SupplierSummary:
    items = sorted(reports, key=_order_key)
    categories = Counter(r.category for r in items)
    severities = Counter(r.severity for r in items)
    durations = [d for r in items if (d := r.days_to_closure()) is not None]
    return SupplierSummary(
        supplier=supplier,
        total=len(items),
        open_count=sum(1 for r in items if r.is_open),
        by_category=tuple((c, categories.get(c, 0)) for c in CATEGORIES),
        by_severity=tuple((s, severities.get(s, 0)) for s in reversed(SEVERITIES)),
        reports=tuple(items),
        average_days_to_closure=round(sum(durations) / len(durations), 1) if durations else None,
    )


# -- CSV ------------------------------------------------------------------------------------------

CSV_COLUMNS: tuple[str, ...] = (
    "ref",
    "status",
    "created",
    "occurred_on",
    "supplier",
    "contract",
    "category",
    "severity",
    "description",
    "location",
    "breached_clause",
    "financial_impact",
    "remedy_deadline",
    "closed",
    "closing_justification",
)
CSV_DELIMITER = ";"
CSV_BOM = "\ufeff"
# Catalog key of each column's header and of the coded values: `dv_csv_<column>`,
# `dv_status_<status>`, `dv_category_<category>`, `dv_severity_<severity>`.
Label = Callable[[str], str]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _date(value: datetime | None) -> str:
    return format_date(value) if value is not None else ""


def csv_rows(reports: Iterable[DeviationReport], label: Label) -> list[list[str]]:
    """The header and one row per report; `label(key)` gives the catalog text in the reader's
    language (the domain has no catalogs)."""
    rows = [[label(f"dv_csv_{c}") for c in CSV_COLUMNS]]
    for r in reports:
        contract = r.contract_ref or ""
        if r.contract_ref and r.contract_title:
            contract = f"{r.contract_ref} {r.contract_title}"
        row = [
            r.ref,
            label(f"dv_status_{r.status}"),
            _date(r.created_at),
            format_date(r.occurred_on),
            r.supplier_name,
            contract,
            label(f"dv_category_{r.category}"),
            label(f"dv_severity_{r.severity}"),
            r.description,
            r.location,
            r.breached_clause or "",
            str(r.financial_impact) if r.financial_impact is not None else "",
            format_date(r.remedy_deadline) if r.remedy_deadline else "",
            _date(r.closed_at),
            r.closing_justification or "",
        ]
        rows.append([_cell(v) for v in row])
    return rows


def export_csv(reports: Iterable[DeviationReport], label: Label) -> bytes:
    """The export file's bytes (see the module docstring for the format)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=CSV_DELIMITER, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerows(csv_rows(reports, label))
    return (CSV_BOM + out.getvalue()).encode("utf-8")


def export_file_name(supplier: str, now: datetime) -> str:
    """avvik-renhold-as-2026-09-01.csv: a plain, safe name for the file sent in the chat."""
    key = "-".join(fold(supplier).replace("&", " ").split())
    slug = "".join(ch for ch in key if ch.isascii() and (ch.isalnum() or ch == "-")).strip("-")[:60]
    return f"avvik-{slug or 'leverandor'}-{now:%Y-%m-%d}.csv"
