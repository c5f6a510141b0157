"""Applying a parsed export to the register, and the printed report of an import or a check.

``apply_import`` hands every accepted row to a ``ContractUpsertPort``; the port decides
created/updated/unchanged by comparing ``ContractData.fingerprint()`` with what it has,
so importing the same file twice gives only "unchanged" the second time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from procurement.contracts.importing.rows import ParseReport, RowError, RowWarning
from procurement.contracts.model import ContractData
from procurement.shared.dates import format_date

Outcome = Literal["created", "updated", "unchanged"]


class ContractUpsertPort(Protocol):
    """Implemented by the store: insert or update one contract by ``external_ref``.

    Return ``"unchanged"`` when the stored contract's fingerprint equals
    ``data.fingerprint()``, else ``"created"`` or ``"updated"``.
    """

    async def upsert_contract(self, data: ContractData) -> Outcome: ...


@dataclass
class ImportSummary:
    source: str = ""
    created_refs: list[str] = field(default_factory=list)
    updated_refs: list[str] = field(default_factory=list)
    unchanged_refs: list[str] = field(default_factory=list)
    rejected: list[RowError] = field(default_factory=list)
    """Rows the file parser rejected (nothing stored)."""
    failed: list[RowError] = field(default_factory=list)
    """Accepted rows the store could not save."""
    warnings: list[RowWarning] = field(default_factory=list)

    @property
    def created(self) -> int:
        return len(self.created_refs)

    @property
    def updated(self) -> int:
        return len(self.updated_refs)

    @property
    def unchanged(self) -> int:
        return len(self.unchanged_refs)

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.failed


async def apply_import(port: ContractUpsertPort, report: ParseReport) -> ImportSummary:
    """Upsert every accepted row through ``port``, one at a time.

    A row the port fails on is recorded in ``failed`` and the rest continue.
    """
    summary = ImportSummary(source=report.source, rejected=list(report.rejected), warnings=list(report.warnings))
    buckets = {
        "created": summary.created_refs,
        "updated": summary.updated_refs,
        "unchanged": summary.unchanged_refs,
    }
    for line_no, data in report.rows:
        try:
            outcome = await port.upsert_contract(data)
        except Exception as exc:  # one row never stops the others
            detail = f"{type(exc).__name__}: {exc}"
            summary.failed.append(
                RowError(
                    line_no,
                    f"Rad {line_no}: {data.external_ref} kunne ikke lagres ({detail})",
                    f"Row {line_no}: {data.external_ref} could not be saved ({detail})",
                )
            )
            continue
        bucket = buckets.get(outcome)
        if bucket is None:
            summary.failed.append(
                RowError(
                    line_no,
                    f"Rad {line_no}: ukjent svar fra lageret: {outcome!r}",
                    f"Row {line_no}: unknown answer from the store: {outcome!r}",
                )
            )
            continue
        bucket.append(data.external_ref)
    return summary


_TEXTS: dict[str, dict[str, str]] = {
    "nb": {
        "title": "Import av avtaler fra {source}",
        "dry_title": "Kontroll av {source} (tørrkjøring, ingenting er lagret)",
        "created": "Opprettet",
        "updated": "Oppdatert",
        "unchanged": "Uendret",
        "rejected": "Avvist",
        "failed": "Feilet ved lagring",
        "warnings": "Advarsler",
        "accepted": "Godkjente rader",
        "would": "Disse ville blitt importert:",
        "ignored": "Ukjente kolonner (ignorert)",
        "format": "Format",
    },
    "en": {
        "title": "Contract import from {source}",
        "dry_title": "Check of {source} (dry run, nothing saved)",
        "created": "Created",
        "updated": "Updated",
        "unchanged": "Unchanged",
        "rejected": "Rejected",
        "failed": "Failed to save",
        "warnings": "Warnings",
        "accepted": "Accepted rows",
        "would": "These would be imported:",
        "ignored": "Unknown columns (ignored)",
        "format": "Format",
    },
}


def _texts(lang: str) -> dict[str, str]:
    return _TEXTS["en" if lang.lower().startswith("en") else "nb"]


def _problem_lines(items: Iterable[RowError], english: bool) -> list[str]:
    return [f"  {(e.reason_en or e.reason) if english else e.reason}" for e in items]


def _warning_lines(items: Iterable[RowWarning], english: bool) -> list[str]:
    return [f"  {(w.message_en or w.message) if english else w.message}" for w in items]


def format_summary(summary: ImportSummary, lang: str = "nb") -> str:
    """The printed result of an import, in Norwegian (``nb``) or English (``en``)."""
    t = _texts(lang)
    english = t is _TEXTS["en"]
    lines = [
        t["title"].format(source=summary.source or "fil"),
        f"{t['created']}: {summary.created}",
        f"{t['updated']}: {summary.updated}",
        f"{t['unchanged']}: {summary.unchanged}",
        f"{t['rejected']}: {len(summary.rejected)}",
    ]
    lines += _problem_lines(summary.rejected, english)
    if summary.failed:
        lines.append(f"{t['failed']}: {len(summary.failed)}")
        lines += _problem_lines(summary.failed, english)
    if summary.warnings:
        lines.append(f"{t['warnings']}: {len(summary.warnings)}")
        lines += _warning_lines(summary.warnings, english)
    return "\n".join(lines) + "\n"


def format_parse_report(report: ParseReport, lang: str = "nb") -> str:
    """The printed result of a dry run: what would be imported and what is rejected."""
    t = _texts(lang)
    english = t is _TEXTS["en"]
    fmt = report.file_format.upper()
    if report.file_format == "csv":
        delim = {";": "semikolon", ",": "komma", "\t": "tabulator"}.get(report.delimiter or "", report.delimiter)
        if english:
            delim = {";": "semicolon", ",": "comma", "\t": "tab"}.get(report.delimiter or "", report.delimiter)
        fmt = f"CSV, {report.encoding}, {delim}"
    lines = [
        t["dry_title"].format(source=report.source),
        f"{t['format']}: {fmt}",
        f"{t['accepted']}: {len(report.rows)}",
        f"{t['rejected']}: {len(report.rejected)}",
    ]
    lines += _problem_lines(report.rejected, english)
    if report.warnings:
        lines.append(f"{t['warnings']}: {len(report.warnings)}")
        lines += _warning_lines(report.warnings, english)
    if report.ignored_columns:
        lines.append(f"{t['ignored']}: {', '.join(report.ignored_columns)}")
    if report.rows:
        lines.append(t["would"])
        lines += [
            f"  {row.line_no}: {row.data.external_ref} – {row.data.title} "
            f"({row.data.supplier_name}, "
            f"{format_date(row.data.start_date)}–{format_date(row.data.end_date)})"
            for row in report.rows
        ]
    return "\n".join(lines) + "\n"
