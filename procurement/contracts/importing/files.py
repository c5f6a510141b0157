"""Reading an export file into rows of cells: CSV (delimiter and encoding sniffed) or XLSX.

* CSV: ``;``, ``,`` or tab separated, chosen by which one finds the best header row;
  UTF-8 with or without BOM, UTF-16 with BOM, else Windows-1252, else Latin-1.
* XLSX: the first sheet; formulas are read as their last computed value. Old ``.xls``
  files are refused with a hint.
* The header row is the first row, among the first ten non-empty rows, that contains an
  external-reference column (e.g. "Avtalenummer") and at least two other known columns;
  a title line above it is skipped.
* A row's number is the row number as a spreadsheet shows it; in a CSV file it is the
  line on which the record starts (a quoted cell may span lines).
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from procurement.contracts.importing.cells import Cells, is_blank
from procurement.contracts.importing.columns import SPEC_BY_FIELD, header_fields

NumberedRow = tuple[int, Cells]
"""(the row's number as the user sees it, its cells)"""


class ContractFileError(Exception):
    """The file as a whole cannot be read (no rows are imported)."""

    def __init__(self, message_nb: str, message_en: str = "") -> None:
        super().__init__(message_nb)
        self.message_nb = message_nb
        self.message_en = message_en or message_nb


@dataclass(frozen=True)
class Table:
    """The rows of a file and where its header is."""

    file_format: Literal["csv", "xlsx"]
    rows: list[NumberedRow]
    header_index: int
    encoding: str | None = None
    delimiter: str | None = None


def read_table(data: bytes, filename: str) -> Table:
    """The rows of an export held in memory; raises ``ContractFileError``."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".xls" or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ContractFileError(
            "Gamle Excel-filer (.xls) støttes ikke; lagre som .xlsx eller CSV.",
            "Old Excel files (.xls) are not supported; save as .xlsx or CSV.",
        )
    if suffix in (".xlsx", ".xlsm") or data.startswith(b"PK\x03\x04"):
        rows = _xlsx_rows(data)
        found = _find_header(rows)
        if found is None:
            raise _no_header_error()
        return Table("xlsx", rows, found[0])
    text, encoding = _decode(data)
    delimiter, csv_rows, header_index = _sniff_csv(text)
    return Table("csv", csv_rows, header_index, encoding=encoding, delimiter=delimiter)


def read_file(path: str | Path) -> tuple[str, bytes]:
    """(the file's name, its bytes); raises ``ContractFileError`` if it cannot be read."""
    p = Path(path)
    try:
        return p.name, p.read_bytes()
    except OSError as exc:
        raise ContractFileError(
            f"Filen {p} kan ikke leses: {exc.strerror or exc}",
            f"The file {p} cannot be read: {exc.strerror or exc}",
        ) from exc


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(codecs.BOM_UTF8):
        body = data[len(codecs.BOM_UTF8) :]
        try:
            return body.decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            data = body
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def _csv_rows(text: str, delimiter: str) -> list[NumberedRow]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[NumberedRow] = []
    start = 1
    for record in reader:
        rows.append((start, list(record)))
        start = reader.line_num + 1
    return rows


def _xlsx_rows(data: bytes) -> list[NumberedRow]:
    # openpyxl takes ~0.15 s to import; only an XLSX file needs it.
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ContractFileError(f"Excel-filen kan ikke leses: {exc}", f"The Excel file cannot be read: {exc}") from exc
    try:
        if not wb.worksheets:
            raise ContractFileError("Excel-filen har ingen ark", "The Excel file has no sheets")
        ws = wb.worksheets[0]
        rows: list[NumberedRow] = []
        for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
            rows.append((number, list(values)))
        return rows
    finally:
        wb.close()


def _find_header(rows: Sequence[NumberedRow]) -> tuple[int, int] | None:
    """(index in rows, score) of the header row, looking at the first ten non-empty rows."""
    seen = 0
    for index, (_line, cells) in enumerate(rows):
        if is_blank(cells):
            continue
        fields = [f for f in header_fields(cells) if f]
        if "external_ref" in fields and len(set(fields)) >= 3:
            return index, len(set(fields))
        seen += 1
        if seen >= 10:
            break
    return None


def _sniff_csv(text: str) -> tuple[str, list[NumberedRow], int]:
    """(delimiter, rows, index of the header row): the delimiter that finds the best header."""
    best: tuple[int, str] | None = None  # (score, delimiter); ";" wins ties (Norwegian Excel)
    head = "\n".join(text.splitlines()[:40])
    for delimiter in (";", ",", "\t"):
        found = _find_header(_csv_rows(head, delimiter))
        if found and (best is None or found[1] > best[0]):
            best = (found[1], delimiter)
    if best is None:
        raise _no_header_error()
    delimiter = best[1]
    rows = _csv_rows(text, delimiter)
    found = _find_header(rows)
    assert found is not None
    return delimiter, rows, found[0]


def _no_header_error() -> ContractFileError:
    names = "/".join(SPEC_BY_FIELD["external_ref"].aliases[:3])
    return ContractFileError(
        f"Fant ingen overskriftsrad med kolonnen «{names}» og minst to andre kjente kolonner "
        "blant de første ti radene. Er dette en eksport fra kontraktsadministrasjonsverktøyet?",
        f"No header row with a column «{names}» and at least two other known columns in the first "
        "ten rows. Is this an export from the contract administration tool?",
    )
