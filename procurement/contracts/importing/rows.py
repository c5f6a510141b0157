"""From the rows of an export to contracts: every data row becomes a ``ContractData`` or a
precise reason, in Norwegian and English, why not. One bad row never stops the others.

* "Rad N" is the row number as a spreadsheet shows it (see ``files``).
* A second row with an external reference already seen in the file (ignoring case) is
  rejected; the first one counts.
* Unknown columns are ignored and listed in the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal, NamedTuple, TypeVar

from procurement.contracts.importing.cells import cell_text, is_blank
from procurement.contracts.importing.columns import COLUMNS, header_fields
from procurement.contracts.importing.files import (
    ContractFileError,
    NumberedRow,
    read_file,
    read_table,
)
from procurement.contracts.importing.values import (
    CellError,
    agreement_type_of,
    category_of,
    cpv_cell_text,
    find_emails,
    is_case_no,
    parse_amount,
    parse_controls,
    parse_options_spec,
    read_date_cell,
    risk_level_of,
)
from procurement.contracts.model import (
    AgreementType,
    Category,
    ContractData,
    ContractOption,
    PlannedControl,
    RiskLevel,
    cpv_problem,
    derive_option_deadlines,
    is_aad_object_id,
    is_email,
    normalize_org_no,
    org_no_problem,
    parse_cpv_codes,
    validate_contract,
)
from procurement.shared.dates import format_date

Msg = tuple[str, str]  # (nb, en)
T = TypeVar("T")


class ParsedRow(NamedTuple):
    line_no: int
    data: ContractData


@dataclass(frozen=True)
class RowError:
    """A rejected row. Unpacks as ``(line_no, reason)``; ``reason`` is Norwegian."""

    line_no: int
    reason: str
    reason_en: str = ""

    def __iter__(self) -> Iterator[object]:
        return iter((self.line_no, self.reason))


@dataclass(frozen=True)
class RowWarning:
    line_no: int
    message: str
    message_en: str = ""


@dataclass
class ParseReport:
    source: str
    file_format: Literal["csv", "xlsx"]
    rows: list[ParsedRow] = field(default_factory=list)
    rejected: list[RowError] = field(default_factory=list)
    warnings: list[RowWarning] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    """field → the header as written in the file"""
    ignored_columns: list[str] = field(default_factory=list)
    header_line: int = 1
    encoding: str | None = None
    delimiter: str | None = None


def parse_contract_file(path: str | Path) -> ParseReport:
    """Parse a CSV or XLSX export.

    Raises ``ContractFileError`` when the file as a whole cannot be read (missing,
    unreadable, no header row, required columns missing).
    """
    name, data = read_file(path)
    return parse_contract_bytes(data, name)


def parse_contract_bytes(data: bytes, filename: str) -> ParseReport:
    """Parse an export held in memory (e.g. a file uploaded in Teams).

    Raises ``ContractFileError`` when the file as a whole cannot be read.
    """
    table = read_table(data, filename)
    report = ParseReport(
        source=Path(filename).name,
        file_format=table.file_format,
        encoding=table.encoding,
        delimiter=table.delimiter,
    )
    return parse_rows(report, table.rows, table.header_index)


def parse_rows(report: ParseReport, rows: Sequence[NumberedRow], header_index: int) -> ParseReport:
    """Fill ``report`` from ``rows``, whose header row is ``rows[header_index]``."""
    header_line, header_cells = rows[header_index]
    report.header_line = header_line
    positions = _column_positions(report, header_cells)
    seen_refs: dict[str, int] = {}
    for line_no, cells in rows[header_index + 1 :]:
        if is_blank(cells):
            continue
        mapped = {name: (cells[pos] if pos < len(cells) else None) for name, pos in positions.items()}
        parser = _RowParser(mapped)
        data = parser.parse()
        ref = cell_text(mapped.get("external_ref"))
        first_line = seen_refs.setdefault(ref.casefold(), line_no) if ref else line_no
        errors = list(parser.errors)
        if first_line != line_no:
            errors.insert(
                0,
                (
                    f"avtalenummer {ref} står allerede i rad {first_line}; raden er hoppet over",
                    f"contract number {ref} already appears in row {first_line}; row skipped",
                ),
            )
        if errors or data is None:
            report.rejected.append(
                RowError(
                    line_no,
                    f"Rad {line_no}: " + "; ".join(nb for nb, _ in errors),
                    f"Row {line_no}: " + "; ".join(en for _, en in errors),
                )
            )
            continue
        report.rows.append(ParsedRow(line_no, data))
        for nb, en in parser.warnings:
            report.warnings.append(RowWarning(line_no, f"Rad {line_no}: {nb}", f"Row {line_no}: {en}"))
    return report


def _column_positions(report: ParseReport, header_cells: Sequence[object]) -> dict[str, int]:
    """field → its column; records the columns in ``report``; refuses a doubled or missing one."""
    positions: dict[str, int] = {}
    for position, (name, cell) in enumerate(zip(header_fields(header_cells), header_cells, strict=True)):
        shown = cell_text(cell)
        if name is None:
            if shown:
                report.ignored_columns.append(shown)
            continue
        if name in positions:
            first = report.columns[name]
            raise ContractFileError(
                f"Kolonnene «{first}» og «{shown}» betyr begge {name}; fjern den ene.",
                f"The columns «{first}» and «{shown}» both mean {name}; remove one.",
            )
        positions[name] = position
        report.columns[name] = shown
    missing = [s for s in COLUMNS if s.required and s.field not in positions]
    if missing:
        names_nb = "; ".join(f"{s.aliases[0]} (eller {', '.join(s.aliases[1:3])})" for s in missing)
        names_en = "; ".join(s.aliases[0] for s in missing)
        raise ContractFileError(f"Påkrevde kolonner mangler: {names_nb}.", f"Required columns missing: {names_en}.")
    return positions


_LABELS: dict[str, Msg] = {
    "external_ref": ("avtalenummer", "contract number"),
    "supplier_name": ("leverandør", "supplier"),
    "title": ("avtalenavn", "title"),
    "category": ("kategori", "category"),
    "start_date": ("startdato", "start date"),
    "end_date": ("sluttdato", "end date"),
    "option_notice": ("opsjonsfrist", "option notice deadline"),
}


class _RowParser:
    """Turns the mapped cells of one row into ContractData, collecting every problem."""

    def __init__(self, cells: dict[str, object]) -> None:
        self.cells = cells
        self.errors: list[Msg] = []
        self.warnings: list[Msg] = []

    def error(self, nb: str, en: str) -> None:
        self.errors.append((nb, en))

    def warn(self, nb: str, en: str) -> None:
        self.warnings.append((nb, en))

    def text(self, name: str) -> str:
        return cell_text(self.cells.get(name))

    def required_text(self, name: str) -> str:
        value = self.text(name)
        if not value:
            nb, en = _LABELS[name]
            self.error(f"{nb} mangler", f"{en} is missing")
        return value

    def date_value(self, name: str, *, required: bool) -> date | None:
        shown = self.text(name)
        nb, en = _LABELS[name]
        if not shown:
            if required:
                self.error(f"{nb} mangler", f"{en} is missing")
            return None
        value, recognised = read_date_cell(self.cells.get(name))
        if value is None:
            hint = "" if recognised else " (skriv f.eks. 31.12.2026)"
            hint_en = "" if recognised else " (write e.g. 31.12.2026)"
            self.error(
                f"{nb} {shown} er ikke en gyldig dato{hint}",
                f"{en} {shown} is not a valid date{hint_en}",
            )
        return value

    def attempt(self, parse: Callable[[], T], en: str, failed: T) -> T:
        """``parse()``, or ``failed`` with its problem recorded."""
        try:
            return parse()
        except CellError as exc:
            self.error(exc.message_nb, exc.message_en)
        except ValueError as exc:
            self.error(str(exc), en)
        return failed

    def parse(self) -> ContractData | None:
        ref = self.required_text("external_ref")
        supplier = self.required_text("supplier_name")
        title = self.required_text("title")
        category = self._category()
        start = self.date_value("start_date", required=True)
        end = self.date_value("end_date", required=True)
        org_no = self._org_no()
        value = self.attempt(lambda: parse_amount(self.cells.get("value_nok")), "", None)
        agreement = self._agreement_type()
        email, aad_id = self._manager()
        risk = self._risk()
        controls: list[PlannedControl] = self.attempt(
            lambda: parse_controls(self.text("controls")),
            f"controls {self.text('controls')!r} cannot be read",
            [],
        )
        months: list[int] = self.attempt(
            lambda: parse_options_spec(self.text("options")),
            f"options {self.text('options')!r} cannot be read",
            [],
        )
        notice = self.date_value("option_notice", required=False)
        cpv_codes = self._cpv_codes()
        case_no = self.text("archive_case_no")
        if case_no and not is_case_no(case_no):
            self.warn(
                f"arkivsak «{case_no}» har uvanlig form (ventet f.eks. 24/01234)",
                f"case number «{case_no}» has an unusual form (expected e.g. 24/01234)",
            )
        if self.errors or start is None or end is None or category is None or risk is None:
            return None
        options = self._options(months, notice, end)
        if self.errors:
            return None
        data = ContractData(
            external_ref=ref,
            supplier_name=supplier,
            supplier_org_no=org_no,
            title=title,
            category=category,
            start_date=start,
            end_date=end,
            options=options,
            value_nok=value,
            agreement_type=agreement,
            manager_email=email,
            manager_aad_id=aad_id,
            risk_level=risk,
            controls=controls,
            archive_case_no=case_no,
            internal_notes=str(self.cells.get("internal_notes") or ""),
            cpv_codes=cpv_codes,
            scope=self.text("scope"),
        )
        for problem in validate_contract(data):
            self.error(problem.message_nb, problem.message_en)
        return None if self.errors else data

    def _cpv_codes(self) -> tuple[str, ...]:
        # Refused like on the contract card (the card accepts what the import accepts).
        codes, bad = parse_cpv_codes(cpv_cell_text(self.cells.get("cpv_codes")))
        if (problem := cpv_problem(bad)) is not None:
            self.error(*problem)
        return codes

    def _category(self) -> Category | None:
        raw = self.required_text("category")
        if not raw:
            return None
        found = category_of(raw)
        if found is None:
            self.error(
                f"kategori «{raw}» er ukjent (bruk Varer, Tjenester eller Bygg og anlegg)",
                f"category «{raw}» is unknown (use goods, services or works)",
            )
        return found

    def _org_no(self) -> str:
        raw = self.text("supplier_org_no")
        if not raw:
            return ""
        problem = org_no_problem(raw)
        if problem:
            self.error(problem, f"organisation number {raw} is not valid")
        return normalize_org_no(raw)

    def _agreement_type(self) -> AgreementType:
        raw = self.text("agreement_type")
        found, known = agreement_type_of(raw)
        if not known:
            self.warn(
                f"avtaletype «{raw}» er ukjent; lagret som enkeltkontrakt",
                f"agreement type «{raw}» is unknown; stored as a single contract",
            )
        return found

    def _manager(self) -> tuple[str, str | None]:
        raw = self.text("manager")
        if not raw:
            self.warn(
                "avtaleforvalter mangler; påminnelser går til Innkjøpsseksjonen",
                "no contract manager; reminders go to the procurement section",
            )
            return "", None
        if is_aad_object_id(raw):
            return "", raw.lower()
        if is_email(raw):
            return raw.lower(), None
        found = find_emails(raw)
        if not found:
            self.error(
                f"avtaleforvalter «{raw}» er ikke en e-postadresse",
                f"contract manager «{raw}» is not an e-mail address",
            )
            return "", None
        if len(found) > 1:
            self.warn(
                f"flere e-postadresser hos avtaleforvalter; bruker {found[0]}",
                f"several e-mail addresses for the contract manager; using {found[0]}",
            )
        return found[0].lower(), None

    def _risk(self) -> RiskLevel | None:
        raw = self.text("risk_level")
        if not raw:
            return "medium"
        found = risk_level_of(raw)
        if found is None:
            self.error(
                f"risiko «{raw}» er ukjent (bruk Lav, Middels eller Høy)",
                f"risk «{raw}» is unknown (use low, medium or high)",
            )
        return found

    def _options(self, months: list[int], notice: date | None, end: date) -> list[ContractOption]:
        if not months:
            if notice is not None:
                self.warn(
                    "opsjonsfrist er oppgitt, men ingen opsjoner; fristen er ikke lagret",
                    "an option notice deadline is given but no options; it is ignored",
                )
            return []
        if notice is None:
            self.warn(
                f"opsjonsfrist mangler; slutten av forrige periode ({format_date(end)} for opsjon 1) brukes som frist",
                "option notice deadline missing; the end of the preceding period "
                f"({end.isoformat()} for option 1) "
                "is used",
            )
            notice = end
        if notice > end:
            self.error(
                f"opsjonsfrist {format_date(notice)} er etter sluttdato {format_date(end)}",
                f"option notice deadline {notice.isoformat()} is after the end date {end.isoformat()}",
            )
            return []
        return derive_option_deadlines(end, months, notice)
