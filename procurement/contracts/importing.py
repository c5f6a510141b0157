"""Import of contract exports from the contract administration tool (KAV).

Reads a CSV file (``;``, ``,`` or tab separated, sniffed from the header; UTF-8 with or
without BOM, UTF-16 with BOM, else Windows-1252, else Latin-1) or an Excel workbook
(``.xlsx``: the first sheet; formulas are read as their last computed value) and turns
every data row into a ``ContractData`` or a precise Norwegian reason why not. One bad
row never stops the others.

* The header row is the first row, among the first ten non-empty rows, that contains an
  external-reference column (e.g. "Avtalenummer") and at least two other known columns;
  a title line above it is skipped. Header names are matched ignoring case, surrounding
  blanks, punctuation and æ/ø/å versus ae/o/a ("Org.nr", "Org nr", "ORGNR" are the same).
  Unknown columns are ignored and listed in the report.
* "Rad N" is the row number as a spreadsheet shows it (the header is usually row 1); in
  a CSV file it is the line on which the record starts.
* A second row with an external reference already seen in the file (ignoring case) is
  rejected; the first one counts.
* ``apply_import`` hands every accepted row to a ``ContractUpsertPort``; the port decides
  created/updated/unchanged by comparing ``ContractData.fingerprint()`` with what it has,
  so importing the same file twice gives only "unchanged" the second time.

The column mapping (also in ``COLUMN_MAPPING_DOC``, ready for the README):
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Literal, NamedTuple, Protocol

from procurement.contracts.model import (
    ContractData,
    ContractOption,
    PlannedControl,
    is_aad_object_id,
    is_email,
    normalize_org_no,
    org_no_problem,
    validate_contract,
)
from procurement.shared.calendar import add_months, is_month_end

Outcome = Literal["created", "updated", "unchanged"]
Msg = tuple[str, str]  # (nb, en)


# -- column mapping ---------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnSpec:
    field: str
    aliases: tuple[str, ...]
    required: bool
    values: str


COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("external_ref", ("Avtalenummer", "Kontraktsnummer", "Avtale-ID", "Avtalenr", "Kontraktsnr",
                                "Kontrakt-ID", "Contract number", "External ref"), True,
               "Text, unique in the file and the register, e.g. `KAV-2024-0012` (max 64 characters)"),
    ColumnSpec("supplier_name", ("Leverandør", "Leverandørnavn", "Leverandørens navn", "Supplier"), True,
               "Text"),
    ColumnSpec("supplier_org_no", ("Org.nr", "Organisasjonsnummer", "Leverandørens org.nr", "Org.nr leverandør",
                                   "Organization number"), False,
               "9 digits with a valid MOD11 check digit; blanks, dots, `NO` and `MVA` are ignored "
               "(`NO 974 760 673 MVA`); empty allowed (foreign supplier)"),
    ColumnSpec("title", ("Avtalenavn", "Tittel", "Kontraktsnavn", "Avtale", "Title"), True, "Text"),
    ColumnSpec("category", ("Kategori", "Anskaffelseskategori", "Category"), True,
               "`Vare`/`Varer` → goods; `Tjeneste`/`Tjenester` → services; "
               "`Bygg og anlegg`/`BA`/`Bygg- og anleggsarbeid` → works (also goods/services/works)"),
    ColumnSpec("start_date", ("Startdato", "Fra", "Fra dato", "Gyldig fra", "Start date"), True, "Date"),
    ColumnSpec("end_date", ("Sluttdato", "Til", "Til dato", "Gyldig til", "Utløpsdato", "End date"), True,
               "Date: the end of the current period (options not included)"),
    ColumnSpec("options", ("Opsjoner", "Opsjon", "Options"), False,
               "Options not yet used. `1+1` = two options of 12 months (numbers joined by `+` are years); "
               "`2x12 mnd` = two of 12 months; `12;12` = months; units `år`/`mnd` may be written out "
               "(`1 år + 6 mnd`); empty, `0`, `-`, `Ingen` = none. A lone number without a unit is rejected "
               "as ambiguous"),
    ColumnSpec("option_notice", ("Opsjonsfrist", "Varslingsfrist opsjon", "Frist opsjon", "Frist for opsjon",
                                 "Option notice deadline"), False,
               "Date: notice deadline of the *first* option (on or before the end date). Each later option's "
               "deadline lies the same distance before the end of the previous option period (whole months "
               "when the first one is whole months before the end date, else days). Missing while there are "
               "options: the end of the preceding period is used, with a warning"),
    ColumnSpec("value_nok", ("Verdi", "Avtaleverdi (eks. mva)", "Avtaleverdi (ekskl. mva)", "Avtaleverdi",
                             "Estimert verdi", "Estimert verdi (eks. mva)", "Kontraktsverdi", "Value"), False,
               "Whole NOK excl. VAT: `1 250 000`, `1.250.000`, `1 250 000,00`, `kr 1 250 000,-`, "
               "`1,25 mill`; decimals are rounded; empty allowed"),
    ColumnSpec("agreement_type", ("Avtaletype", "Kontraktstype", "Agreement type"), False,
               "`Rammeavtale` → framework; `Enkeltkontrakt`/empty/anything else → single (unknown text warns)"),
    ColumnSpec("manager", ("Avtaleforvalter", "Avtaleforvalter e-post", "Kontraktsforvalter",
                           "Contract manager"), False,
               "E-mail address (also `Name <e-mail>`) or an Entra object id; empty warns (reminders then go "
               "to Innkjøpsseksjonen)"),
    ColumnSpec("risk_level", ("Risiko", "Risikonivå", "Risk"), False,
               "`Lav`/`Middels`/`Høy` (also low/medium/high); empty → medium"),
    ColumnSpec("controls", ("Kontroller", "Planlagte kontroller", "Kontroll", "Controls"), False,
               "`2025-06-30 Lønnskontroll; 2026-01-15 HMS-kontroll`: items separated by `;`, `\\|` or line "
               "breaks, each a date (first or last) and a description; the kind is read from keywords "
               "(lønn → wage_conditions, HMS, miljø → environment, seriøsitet → serious_employer, "
               "lærling → apprentices, else other)"),
    ColumnSpec("archive_case_no", ("Arkivsak", "Saksnummer", "Arkivsaksnummer", "Saksnr", "Case number"), False,
               "Case number such as `24/01234` (other forms are kept with a warning)"),
    ColumnSpec("internal_notes", ("Merknad", "Merknader", "Kommentar", "Notes"), False, "Text (internal)"),
)

_DATE_DOC = ("Dates: `31.12.2026`, `31.12.26`, `2026-12-31`, `31/12/2026` (also with a time of day after), "
             "and date cells in Excel.")


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFC", text).casefold()
    return text.replace("æ", "ae").replace("ø", "o").replace("å", "a").replace("é", "e")


def _header_key(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", _fold(text))


_HEADER_INDEX: dict[str, str] = {}
for _spec in COLUMNS:
    for _alias in (_spec.field, *_spec.aliases):
        _key = _header_key(_alias)
        assert _HEADER_INDEX.get(_key, _spec.field) == _spec.field, f"alias clash: {_alias}"
        _HEADER_INDEX[_key] = _spec.field
_SPEC_BY_FIELD = {s.field: s for s in COLUMNS}


def _build_mapping_doc() -> str:
    lines = [
        "| Field | Column names accepted (case and punctuation ignored) | Values | Required |",
        "|---|---|---|---|",
    ]
    for spec in COLUMNS:
        names = ", ".join(f"`{a}`" for a in spec.aliases)
        lines.append(f"| `{spec.field}` | {names} | {spec.values} | {'yes' if spec.required else 'no'} |")
    lines += [
        "",
        _DATE_DOC,
        "`manager` fills `manager_email` (or `manager_aad_id` for an object id); `option_notice` and "
        "`options` together give `ContractData.options`.",
    ]
    return "\n".join(lines) + "\n"


COLUMN_MAPPING_DOC: str = _build_mapping_doc()
__doc__ = (__doc__ or "") + "\n" + COLUMN_MAPPING_DOC


# -- results ----------------------------------------------------------------------------


class ContractFileError(Exception):
    """The file as a whole cannot be read (no rows are imported)."""

    def __init__(self, message_nb: str, message_en: str = "") -> None:
        super().__init__(message_nb)
        self.message_nb = message_nb
        self.message_en = message_en or message_nb


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


# -- value parsers ----------------------------------------------------------------------

_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " ", "\t": " "})
_ISO_RE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DMY_RE = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})$")
_TIME_SUFFIX_RE = re.compile(r"(?:[ T]\d{1,2}[:.]\d{2}(?:[:.]\d{2}(?:\.\d+)?)?)$")
_EXCEL_SERIAL_MIN, _EXCEL_SERIAL_MAX = 18264, 73051  # 1950-01-01 .. 2099-12-31


def _date_parts(value: object) -> tuple[date | None, bool]:
    """(date or None, whether the text had a recognised date shape)."""
    if isinstance(value, datetime):
        return value.date(), True
    if isinstance(value, date):
        return value, True
    if isinstance(value, bool):
        return None, False
    if isinstance(value, int | float):
        if _EXCEL_SERIAL_MIN <= value <= _EXCEL_SERIAL_MAX:
            return date(1899, 12, 30) + timedelta(days=int(value)), True
        return None, False
    if not isinstance(value, str):
        return None, False
    text = value.translate(_SPACES).strip()
    text = _TIME_SUFFIX_RE.sub("", text).strip()
    if m := _ISO_RE.match(text):
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    elif m := _DMY_RE.match(text):
        d, mo, y = int(m.group(1)), int(m.group(3)), int(m.group(4))
        if len(m.group(4)) == 2:
            y += 2000 if y < 70 else 1900
    else:
        return None, False
    if not 1900 <= y <= 2199:
        return None, True
    try:
        return date(y, mo, d), True
    except ValueError:
        return None, True


def parse_date(value: object) -> date | None:
    """A date from a cell or text, or None. Never raises.

    Accepts ``31.12.2026``, ``31.12.26`` (years 00–69 → 20xx), ``2026-12-31``,
    ``31/12/2026``, ``31-12-2026``, any of these followed by a time of day, ``date`` and
    ``datetime`` objects, and Excel serial numbers between 1950 and 2099.
    """
    try:
        return _date_parts(value)[0]
    except Exception:  # pragma: no cover - defensive: the promise is "never raises"
        return None


MAX_NOK = 10**15  # far above any contract, well inside the store's BIGINT
_CURRENCY_RE = re.compile(r"^(?:kr\.?|nok)\s*|\s*(?:kr\.?|nok)$")
_VAT_RE = re.compile(r"\(?\s*(?:eks|ekskl|excl|ex)\.?\s*mva\.?\s*\)?")
_MILL_RE = re.compile(r"\s*(?:mill(?:ioner|\.)?|mnok|mln)\s*$")
_NO_THOUSANDS = re.compile(r"^\d{1,3}(?:\.\d{3})+(?:,\d+)?$")
_EN_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_DECIMAL_COMMA = re.compile(r"^\d+(?:,\d+)?$")
_DECIMAL_DOT = re.compile(r"^\d+(?:\.\d+)?$")


def parse_nok(value: object) -> int | None:
    """Whole kroner from a cell or Norwegian-formatted text; None when empty.

    Raises ``ValueError`` (Norwegian message) for anything else or a negative amount.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"verdien {value} er ikke et beløp")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float | Decimal):
        amount = Decimal(str(value))
    else:
        raw = str(value)
        text = raw.translate(_SPACES).strip().casefold()
        if not text:
            return None
        text = _VAT_RE.sub("", text).strip()
        text = re.sub(r"\s*[,.]\s*[-–—]+$", "", text)
        text = _CURRENCY_RE.sub("", text).strip()
        multiplier = 1
        if _MILL_RE.search(text):
            multiplier = 1_000_000
            text = _MILL_RE.sub("", text)
        negative = text.startswith("-") or text.startswith("−")
        text = re.sub(r"[\s']", "", text.lstrip("-−"))
        if _NO_THOUSANDS.match(text):
            number = text.replace(".", "").replace(",", ".")
        elif _EN_THOUSANDS.match(text):
            number = text.replace(",", "")
        elif _DECIMAL_COMMA.match(text):
            number = text.replace(",", ".")
        elif _DECIMAL_DOT.match(text):
            number = text
        else:
            raise ValueError(f"verdien «{raw.strip()}» er ikke et beløp (skriv f.eks. 1 250 000)")
        try:
            amount = Decimal(number) * multiplier
        except InvalidOperation as exc:  # pragma: no cover - the patterns above exclude it
            raise ValueError(f"verdien «{raw.strip()}» er ikke et beløp") from exc
        if negative:
            amount = -amount
    if not amount.is_finite():
        raise ValueError(f"verdien {value} er ikke et beløp")
    if amount < 0:
        raise ValueError(f"verdien {value} kan ikke være negativ")
    if amount >= MAX_NOK:
        raise ValueError(f"verdien {value} er urimelig stor")
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


_YEAR_UNIT = r"(?:ar|aar|arr|years?|yrs?|y)"
_MONTH_UNIT = r"(?:mnd|mnd\.|mndr|md|md\.|maneder|maned|months?|m)"
_TERM_RE = re.compile(rf"^(\d{{1,3}})\s*({_YEAR_UNIT}|{_MONTH_UNIT})?\.?$")
_TIMES_RE = re.compile(rf"^(\d{{1,2}})\s*[x*]\s*(\d{{1,3}})\s*({_YEAR_UNIT}|{_MONTH_UNIT})?\.?$")
_NO_OPTIONS = {"", "0", "-", "--", "ingen", "nei", "none", "no", "n/a", "na", "0+0"}
_OPTIONS_HINT = "bruk f.eks. «1+1», «2x12 mnd» eller «12;12»"


def _term_months(number: str, unit: str | None, default: Literal["years", "months"]) -> int:
    n = int(number)
    if unit is None:
        return n * 12 if default == "years" else n
    return n * 12 if re.fullmatch(_YEAR_UNIT, unit) else n


def parse_options_spec(value: object) -> list[int]:
    """The lengths in months of the options written in an "Opsjoner" cell.

    Raises ``ValueError`` (Norwegian message) when the text cannot be read.
    """
    raw = "" if value is None else str(value).strip()
    text = _fold(raw.translate(_SPACES)).replace("×", "x")
    text = re.sub(r"\bopsjon(?:er|sar)?\b", "", text)
    text = " ".join(text.split()).strip(" :")
    if text in _NO_OPTIONS:
        return []
    months: list[int]
    if m := _TIMES_RE.match(text):
        count = int(m.group(1))
        months = [_term_months(m.group(2), m.group(3), "months")] * count
    elif "+" in text:
        months = []
        for term in text.split("+"):
            t = _TERM_RE.match(term.strip())
            if not t:
                raise ValueError(f"opsjoner «{raw}» forstås ikke ({_OPTIONS_HINT})")
            months.append(_term_months(t.group(1), t.group(2), "years"))
    else:
        terms = [t.strip() for t in re.split(r"[;,/]", text)]
        matches = [_TERM_RE.match(t) for t in terms]
        if not all(matches):
            raise ValueError(f"opsjoner «{raw}» forstås ikke ({_OPTIONS_HINT})")
        if len(terms) == 1 and matches[0] and matches[0].group(2) is None:
            raise ValueError(f"opsjoner «{raw}» er tvetydig: skriv enheten, f.eks. «12 mnd» eller «1 år»")
        months = [_term_months(t.group(1), t.group(2), "months") for t in matches if t]
    if not months:
        return []
    if len(months) > 10:
        raise ValueError(f"opsjoner «{raw}»: mer enn 10 opsjoner")
    if any(not 1 <= m <= 120 for m in months):
        raise ValueError(f"opsjoner «{raw}»: hver opsjon må vare 1–120 måneder")
    return months


_CONTROL_KINDS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("wage_conditions", ("lonn", "arbeidsvilkar", "arbeidsvilk"), "Kontroll av lønns- og arbeidsvilkår"),
    ("serious_employer", ("seriositet",), "Kontroll av seriøsitetskrav"),
    ("hms", ("hms", "sikkerhet"), "HMS-kontroll"),
    ("environment", ("miljo", "klima"), "Miljøkontroll"),
    ("apprentices", ("laerling",), "Kontroll av lærlingkrav"),
    ("ethics", ("etikk", "menneskerett"), "Kontroll av etiske krav"),
    ("quality", ("kvalitet",), "Kvalitetskontroll"),
    ("price", ("pris", "faktura"), "Pris- og fakturakontroll"),
)


def control_kind(description: str) -> str:
    folded = _fold(description)
    for kind, words, _label in _CONTROL_KINDS:
        if any(w in folded for w in words):
            return kind
    return "other"


def parse_controls(value: object) -> list[PlannedControl]:
    """Planned controls from a "Kontroller" cell; raises ``ValueError`` (nb) for a bad item."""
    raw = "" if value is None else str(value)
    controls: list[PlannedControl] = []
    for item in re.split(r"[;|\n\r]+", raw.translate(_SPACES)):
        item = " ".join(item.split())
        if not item:
            continue
        words = item.split(" ")
        due = parse_date(words[0])
        rest = words[1:]
        if due is None and len(words) > 1:
            due = parse_date(words[-1])
            rest = words[:-1]
        if due is None:
            raise ValueError(f"kontroll «{item}» har ingen gyldig dato (skriv f.eks. «2025-06-30 Lønnskontroll»)")
        description = " ".join(rest).strip(" -–:,")
        kind = control_kind(description)
        if not description:
            description = next((label for k, _w, label in _CONTROL_KINDS if k == kind), "Kontroll")
        controls.append(PlannedControl(kind=kind, due=due, description=description))
    return controls


_CATEGORY_WORDS = {
    "goods": {"vare", "varer", "varekjop", "goods"},
    "services": {"tjeneste", "tjenester", "tjenestekjop", "service", "services"},
    "works": {"byggoganlegg", "ba", "bygganlegg", "byggoganleggsarbeid", "byggoganleggsarbeider",
              "bygganleggsarbeid", "byggoganleggskontrakt", "works", "entreprise"},
}
_RISK_WORDS = {
    "low": {"lav", "low", "l", "1"},
    "medium": {"middels", "medium", "moderat", "m", "2"},
    "high": {"hoy", "high", "h", "3", "hog"},
}
_SINGLE_WORDS = {"", "enkeltkontrakt", "enkeltavtale", "enkeltkjop", "kontrakt", "avtale", "single",
                 "kjopsavtale", "tjenesteavtale", "leveranseavtale"}
_CASE_NO_RE = re.compile(r"^\d{2}(?:\d{2})?/\d{1,7}(?:-\d{1,4})?$")
_EMAIL_FIND_RE = re.compile(r"[^@\s<>()\[\],;:\"']+@[^@\s<>()\[\],;:\"']+\.[A-Za-z]{2,}")


def _lookup(words: dict[str, set[str]], raw: str) -> str | None:
    key = _header_key(raw)
    return next((k for k, ws in words.items() if key in ws), None)


# -- reading files ----------------------------------------------------------------------

Cells = list[object]


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(codecs.BOM_UTF8):
        body = data[len(codecs.BOM_UTF8):]
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


def _csv_rows(text: str, delimiter: str) -> list[tuple[int, Cells]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, Cells]] = []
    start = 1
    for record in reader:
        rows.append((start, list(record)))
        start = reader.line_num + 1
    return rows


def _xlsx_rows(data: bytes) -> list[tuple[int, Cells]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ContractFileError(f"Excel-filen kan ikke leses: {exc}", f"The Excel file cannot be read: {exc}") from exc
    try:
        if not wb.worksheets:
            raise ContractFileError("Excel-filen har ingen ark", "The Excel file has no sheets")
        ws = wb.worksheets[0]
        rows: list[tuple[int, Cells]] = []
        for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
            rows.append((number, list(values)))
        return rows
    finally:
        wb.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nei"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return " ".join(str(value).translate(_SPACES).split())


def _blank(cells: Sequence[object]) -> bool:
    return all(_cell_text(c) == "" for c in cells)


def _header_fields(cells: Sequence[object]) -> list[str | None]:
    return [_HEADER_INDEX.get(_header_key(_cell_text(c))) if _cell_text(c) else None for c in cells]


def _find_header(rows: Sequence[tuple[int, Cells]]) -> tuple[int, int] | None:
    """(index in rows, score) of the header row, looking at the first ten non-empty rows."""
    seen = 0
    for index, (_line, cells) in enumerate(rows):
        if _blank(cells):
            continue
        fields = [f for f in _header_fields(cells) if f]
        if "external_ref" in fields and len(set(fields)) >= 3:
            return index, len(set(fields))
        seen += 1
        if seen >= 10:
            break
    return None


def _sniff_csv(text: str) -> tuple[str, list[tuple[int, Cells]], int]:
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
    names = "/".join(_SPEC_BY_FIELD["external_ref"].aliases[:3])
    return ContractFileError(
        f"Fant ingen overskriftsrad med kolonnen «{names}» og minst to andre kjente kolonner "
        "blant de første ti radene. Er dette en eksport fra kontraktsadministrasjonsverktøyet?",
        f"No header row with a column «{names}» and at least two other known columns in the first "
        "ten rows. Is this an export from the contract administration tool?",
    )


# -- rows -------------------------------------------------------------------------------


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

    def __init__(self, line_no: int, cells: dict[str, object]) -> None:
        self.line_no = line_no
        self.cells = cells
        self.errors: list[Msg] = []
        self.warnings: list[Msg] = []

    def text(self, name: str) -> str:
        return _cell_text(self.cells.get(name))

    def required_text(self, name: str) -> str:
        value = self.text(name)
        if not value:
            nb, en = _LABELS[name]
            self.errors.append((f"{nb} mangler", f"{en} is missing"))
        return value

    def date_value(self, name: str, *, required: bool) -> date | None:
        raw = self.cells.get(name)
        shown = _cell_text(raw)
        nb, en = _LABELS[name]
        if not shown:
            if required:
                self.errors.append((f"{nb} mangler", f"{en} is missing"))
            return None
        value, recognised = _date_parts(raw)
        if value is None:
            hint = "" if recognised else " (skriv f.eks. 31.12.2026)"
            hint_en = "" if recognised else " (write e.g. 31.12.2026)"
            self.errors.append((f"{nb} {shown} er ikke en gyldig dato{hint}", f"{en} {shown} is not a valid date{hint_en}"))
        return value

    def attempt(self, parse: Callable[[], object], en: str) -> object:
        try:
            return parse()
        except ValueError as exc:
            self.errors.append((str(exc), en))
            return None

    def parse(self) -> ContractData | None:
        ref = self.required_text("external_ref")
        supplier = self.required_text("supplier_name")
        title = self.required_text("title")
        category = self._category()
        start = self.date_value("start_date", required=True)
        end = self.date_value("end_date", required=True)
        org_no = self._org_no()
        value = self.attempt(lambda: parse_nok(self.cells.get("value_nok")),
                             f"value {self.text('value_nok')!r} is not an amount")
        agreement = self._agreement_type()
        email, aad_id = self._manager()
        risk = self._risk()
        controls = self.attempt(lambda: parse_controls(self.text("controls")),
                                f"controls {self.text('controls')!r} cannot be read")
        months = self.attempt(lambda: parse_options_spec(self.text("options")),
                              f"options {self.text('options')!r} cannot be read")
        notice = self.date_value("option_notice", required=False)
        case_no = self.text("archive_case_no")
        if case_no and not _CASE_NO_RE.match(case_no):
            self.warnings.append((f"arkivsak «{case_no}» har uvanlig form (ventet f.eks. 24/01234)",
                                  f"case number «{case_no}» has an unusual form (expected e.g. 24/01234)"))
        if self.errors or start is None or end is None or category is None:
            return None
        assert isinstance(months, list) and isinstance(controls, list)
        assert value is None or isinstance(value, int)
        options = self._options(months, notice, end)
        if self.errors:
            return None
        data = ContractData(
            external_ref=ref, supplier_name=supplier, supplier_org_no=org_no, title=title,
            category=category,  # type: ignore[arg-type]
            start_date=start, end_date=end, options=options, value_nok=value,
            agreement_type=agreement,  # type: ignore[arg-type]
            manager_email=email, manager_aad_id=aad_id,
            risk_level=risk or "medium",  # type: ignore[arg-type]
            controls=controls, archive_case_no=case_no, internal_notes=str(self.cells.get("internal_notes") or ""),
        )
        for problem in validate_contract(data):
            self.errors.append((problem.message_nb, problem.message_en))
        return None if self.errors else data

    def _category(self) -> str | None:
        raw = self.required_text("category")
        if not raw:
            return None
        found = _lookup(_CATEGORY_WORDS, raw)
        if found is None:
            self.errors.append((f"kategori «{raw}» er ukjent (bruk Varer, Tjenester eller Bygg og anlegg)",
                                f"category «{raw}» is unknown (use goods, services or works)"))
        return found

    def _org_no(self) -> str:
        raw = self.text("supplier_org_no")
        if not raw:
            return ""
        problem = org_no_problem(raw)
        if problem:
            self.errors.append((problem, f"organisation number {raw} is not valid"))
        return normalize_org_no(raw)

    def _agreement_type(self) -> str:
        raw = self.text("agreement_type")
        key = _header_key(raw)
        if "ramme" in key or key == "framework":
            return "framework"
        if key not in _SINGLE_WORDS:
            self.warnings.append((f"avtaletype «{raw}» er ukjent; lagret som enkeltkontrakt",
                                  f"agreement type «{raw}» is unknown; stored as a single contract"))
        return "single"

    def _manager(self) -> tuple[str, str | None]:
        raw = self.text("manager")
        if not raw:
            self.warnings.append(("avtaleforvalter mangler; påminnelser går til Innkjøpsseksjonen",
                                  "no contract manager; reminders go to the procurement section"))
            return "", None
        if is_aad_object_id(raw):
            return "", raw.lower()
        if is_email(raw):
            return raw.lower(), None
        found = _EMAIL_FIND_RE.findall(raw)
        if not found:
            self.errors.append((f"avtaleforvalter «{raw}» er ikke en e-postadresse",
                                f"contract manager «{raw}» is not an e-mail address"))
            return "", None
        if len(found) > 1:
            self.warnings.append((f"flere e-postadresser hos avtaleforvalter; bruker {found[0]}",
                                  f"several e-mail addresses for the contract manager; using {found[0]}"))
        return found[0].lower(), None

    def _risk(self) -> str | None:
        raw = self.text("risk_level")
        if not raw:
            return "medium"
        found = _lookup(_RISK_WORDS, raw)
        if found is None:
            self.errors.append((f"risiko «{raw}» er ukjent (bruk Lav, Middels eller Høy)",
                                f"risk «{raw}» is unknown (use low, medium or high)"))
        return found

    def _options(self, months: list[int], notice: date | None, end: date) -> list[ContractOption]:
        if not months:
            if notice is not None:
                self.warnings.append(("opsjonsfrist er oppgitt, men ingen opsjoner; fristen er ikke lagret",
                                      "an option notice deadline is given but no options; it is ignored"))
            return []
        if notice is None:
            self.warnings.append((
                f"opsjonsfrist mangler; slutten av forrige periode ({end:%d.%m.%Y} for opsjon 1) brukes som frist",
                f"option notice deadline missing; the end of the preceding period ({end.isoformat()} for option 1) "
                "is used",
            ))
            notice = end
        if notice > end:
            self.errors.append((f"opsjonsfrist {notice:%d.%m.%Y} er etter sluttdato {end:%d.%m.%Y}",
                                f"option notice deadline {notice.isoformat()} is after the end date {end.isoformat()}"))
            return []
        return derive_option_deadlines(end, months, notice)


def derive_option_deadlines(end: date, months: Sequence[int], first_notice: date) -> list[ContractOption]:
    """Options 1..n with their notice deadlines.

    Option 1's deadline is ``first_notice``. Option k+1's deadline lies the same
    distance before the end of option k's period as ``first_notice`` lies before
    ``end``: in whole months when ``first_notice`` is exactly whole months before ``end``
    (a month-end stays a month-end), else in days. Periods run to the same day of
    the month (``end`` on a month's last day keeps to month ends).
    """
    distance_months: int | None = None
    for k in range(0, 61):
        if add_months(end, -k) == first_notice or add_months(end, -k, keep_month_end=True) == first_notice:
            distance_months = k
            break
    distance_days = (end - first_notice).days
    keep_end = is_month_end(first_notice)
    options: list[ContractOption] = []
    period_end = end
    notice = first_notice
    for number, length in enumerate(months, start=1):
        if number > 1:
            if distance_months is not None:
                notice = add_months(period_end, -distance_months, keep_month_end=keep_end)
                if keep_end and not is_month_end(notice):  # pragma: no cover - add_months guarantees it
                    notice = add_months(notice, 0, keep_month_end=True)
            else:
                notice = period_end - timedelta(days=distance_days)
        options.append(ContractOption(number=number, months=length, notice_deadline=notice))
        period_end = add_months(period_end, length, keep_month_end=True)
    return options


def _parse_rows(
    report: ParseReport, rows: Sequence[tuple[int, Cells]], header_index: int
) -> ParseReport:
    header_line, header_cells = rows[header_index]
    report.header_line = header_line
    fields = _header_fields(header_cells)
    positions: dict[str, int] = {}
    for position, (name, cell) in enumerate(zip(fields, header_cells, strict=True)):
        shown = _cell_text(cell)
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

    seen_refs: dict[str, int] = {}
    for line_no, cells in rows[header_index + 1:]:
        if _blank(cells):
            continue
        mapped = {name: (cells[pos] if pos < len(cells) else None) for name, pos in positions.items()}
        parser = _RowParser(line_no, mapped)
        data = parser.parse()
        ref_key = _cell_text(mapped.get("external_ref")).casefold()
        duplicate_of = seen_refs.get(ref_key) if ref_key else None
        if ref_key and duplicate_of is None:
            seen_refs[ref_key] = line_no
        errors = list(parser.errors)
        if duplicate_of is not None:
            ref = _cell_text(mapped.get("external_ref"))
            errors.insert(0, (f"avtalenummer {ref} står allerede i rad {duplicate_of}; raden er hoppet over",
                              f"contract number {ref} already appears in row {duplicate_of}; row skipped"))
        if errors or data is None:
            report.rejected.append(RowError(
                line_no,
                f"Rad {line_no}: " + "; ".join(nb for nb, _ in errors),
                f"Row {line_no}: " + "; ".join(en for _, en in errors),
            ))
            continue
        report.rows.append(ParsedRow(line_no, data))
        for nb, en in parser.warnings:
            report.warnings.append(RowWarning(line_no, f"Rad {line_no}: {nb}", f"Row {line_no}: {en}"))
    return report


def parse_contract_bytes(data: bytes, filename: str) -> ParseReport:
    """Parse an export held in memory (e.g. a file uploaded in Teams).

    Raises ``ContractFileError`` when the file as a whole cannot be read.
    """
    name = Path(filename).name
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
        return _parse_rows(ParseReport(source=name, file_format="xlsx"), rows, found[0])
    text, encoding = _decode(data)
    delimiter, csv_rows, header_index = _sniff_csv(text)
    report = ParseReport(source=name, file_format="csv", encoding=encoding, delimiter=delimiter)
    return _parse_rows(report, csv_rows, header_index)


def parse_contract_file(path: str | Path) -> ParseReport:
    """Parse a CSV or XLSX export; see the module docstring for the rules.

    Raises ``ContractFileError`` when the file as a whole cannot be read (missing,
    unreadable, no header row, required columns missing).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ContractFileError(f"Filen {p} kan ikke leses: {exc.strerror or exc}",
                                f"The file {p} cannot be read: {exc.strerror or exc}") from exc
    return parse_contract_bytes(data, p.name)


# -- applying and reporting -------------------------------------------------------------


async def apply_import(port: ContractUpsertPort, report: ParseReport) -> ImportSummary:
    """Upsert every accepted row through ``port``, one at a time.

    A row the port fails on is recorded in ``failed`` and the rest continue.
    """
    summary = ImportSummary(source=report.source, rejected=list(report.rejected), warnings=list(report.warnings))
    buckets = {"created": summary.created_refs, "updated": summary.updated_refs,
               "unchanged": summary.unchanged_refs}
    for line_no, data in report.rows:
        try:
            outcome = await port.upsert_contract(data)
        except Exception as exc:  # one row never stops the others
            detail = f"{type(exc).__name__}: {exc}"
            summary.failed.append(RowError(line_no, f"Rad {line_no}: {data.external_ref} kunne ikke lagres ({detail})",
                                           f"Row {line_no}: {data.external_ref} could not be saved ({detail})"))
            continue
        bucket = buckets.get(outcome)
        if bucket is None:
            summary.failed.append(RowError(line_no, f"Rad {line_no}: ukjent svar fra lageret: {outcome!r}",
                                           f"Row {line_no}: unknown answer from the store: {outcome!r}"))
            continue
        bucket.append(data.external_ref)
    return summary


_TEXTS: dict[str, dict[str, str]] = {
    "nb": {
        "title": "Import av avtaler fra {source}",
        "dry_title": "Kontroll av {source} (tørrkjøring, ingenting er lagret)",
        "created": "Opprettet", "updated": "Oppdatert", "unchanged": "Uendret",
        "rejected": "Avvist", "failed": "Feilet ved lagring", "warnings": "Advarsler",
        "accepted": "Godkjente rader", "would": "Disse ville blitt importert:",
        "ignored": "Ukjente kolonner (ignorert)", "format": "Format",
    },
    "en": {
        "title": "Contract import from {source}",
        "dry_title": "Check of {source} (dry run, nothing saved)",
        "created": "Created", "updated": "Updated", "unchanged": "Unchanged",
        "rejected": "Rejected", "failed": "Failed to save", "warnings": "Warnings",
        "accepted": "Accepted rows", "would": "These would be imported:",
        "ignored": "Unknown columns (ignored)", "format": "Format",
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
    lines = [t["dry_title"].format(source=report.source), f"{t['format']}: {fmt}",
             f"{t['accepted']}: {len(report.rows)}", f"{t['rejected']}: {len(report.rejected)}"]
    lines += _problem_lines(report.rejected, english)
    if report.warnings:
        lines.append(f"{t['warnings']}: {len(report.warnings)}")
        lines += _warning_lines(report.warnings, english)
    if report.ignored_columns:
        lines.append(f"{t['ignored']}: {', '.join(report.ignored_columns)}")
    if report.rows:
        lines.append(t["would"])
        lines += [f"  {row.line_no}: {row.data.external_ref} – {row.data.title} ({row.data.supplier_name}, "
                  f"{row.data.start_date:%d.%m.%Y}–{row.data.end_date:%d.%m.%Y})" for row in report.rows]
    return "\n".join(lines) + "\n"
