"""The columns of a contract export: the names each field goes by, and the mapping doc.

Header names are matched ignoring case, surrounding blanks, punctuation and æ/ø/å versus
ae/o/a ("Org.nr", "Org nr", "ORGNR" are the same). ``COLUMN_MAPPING_DOC`` (appended to
this docstring) is the table in the README's "Importing contracts" section.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from procurement.contracts.importing.cells import cell_text, match_key


@dataclass(frozen=True)
class ColumnSpec:
    field: str
    aliases: tuple[str, ...]
    required: bool
    values: str
    """What the column holds, for the mapping doc."""


COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec(
        "external_ref",
        (
            "Avtalenummer",
            "Kontraktsnummer",
            "Avtale-ID",
            "Avtalenr",
            "Kontraktsnr",
            "Kontrakt-ID",
            "Contract number",
            "External ref",
        ),
        True,
        "Text, unique in the file and the register, e.g. `KAV-2024-0012` (max 64 characters)",
    ),
    ColumnSpec(
        "supplier_name",
        ("Leverandør", "Leverandørnavn", "Leverandørens navn", "Supplier"),
        True,
        "Text",
    ),
    ColumnSpec(
        "supplier_org_no",
        (
            "Org.nr",
            "Organisasjonsnummer",
            "Leverandørens org.nr",
            "Org.nr leverandør",
            "Organization number",
        ),
        False,
        "9 digits with a valid MOD11 check digit; blanks, dots, `NO` and `MVA` are ignored "
        "(`NO 974 760 673 MVA`); empty allowed (foreign supplier)",
    ),
    ColumnSpec("title", ("Avtalenavn", "Tittel", "Kontraktsnavn", "Avtale", "Title"), True, "Text"),
    ColumnSpec(
        "category",
        ("Kategori", "Anskaffelseskategori", "Category"),
        True,
        "`Vare`/`Varer` → goods; `Tjeneste`/`Tjenester` → services; "
        "`Bygg og anlegg`/`BA`/`Bygg- og anleggsarbeid` → works (also goods/services/works)",
    ),
    ColumnSpec(
        "cpv_codes",
        ("CPV", "CPV-kode", "CPV-koder", "CPV-nummer", "CPV codes", "CPV code"),
        False,
        "One or more CPV codes, 8 digits with or without check digit (`33192000-2`), separated by "
        "`,` `;` blanks or line breaks; a code's name after it is ignored (`33192000-2 Medisinske "
        "møbler`); duplicates are dropped. Needs reports are matched to framework agreements by them",
    ),
    ColumnSpec(
        "scope",
        ("Omfang", "Beskrivelse", "Avtaleomfang", "Avtalebeskrivelse", "Scope", "Description"),
        False,
        "Text: what the agreement covers, in a sentence (max 2000 characters); matched against the "
        "words of needs reports",
    ),
    ColumnSpec("start_date", ("Startdato", "Fra", "Fra dato", "Gyldig fra", "Start date"), True, "Date"),
    ColumnSpec(
        "end_date",
        ("Sluttdato", "Til", "Til dato", "Gyldig til", "Utløpsdato", "End date"),
        True,
        "Date: the end of the current period (options not included)",
    ),
    ColumnSpec(
        "options",
        ("Opsjoner", "Opsjon", "Options"),
        False,
        "Options not yet used. `1+1` = two options of 12 months (numbers joined by `+` are years); "
        "`2x12 mnd` = two of 12 months; `12;12` = months; units `år`/`mnd` may be written out "
        "(`1 år + 6 mnd`); empty, `0`, `-`, `Ingen` = none. A lone number without a unit is "
        "rejected "
        "as ambiguous",
    ),
    ColumnSpec(
        "option_notice",
        (
            "Opsjonsfrist",
            "Varslingsfrist opsjon",
            "Frist opsjon",
            "Frist for opsjon",
            "Option notice deadline",
        ),
        False,
        "Date: notice deadline of the *first* option (on or before the end date). Each later "
        "option's "
        "deadline lies the same distance before the end of the previous option period (whole "
        "months "
        "when the first one is whole months before the end date, else days). Missing while "
        "there are "
        "options: the end of the preceding period is used, with a warning",
    ),
    ColumnSpec(
        "value_nok",
        (
            "Verdi",
            "Avtaleverdi (eks. mva)",
            "Avtaleverdi (ekskl. mva)",
            "Avtaleverdi",
            "Estimert verdi",
            "Estimert verdi (eks. mva)",
            "Kontraktsverdi",
            "Value",
        ),
        False,
        "Whole NOK excl. VAT, read as on the contract card: `1 250 000`, `1.250.000`, `1 250 "
        "000,00`, "
        "`kr 1 250 000,-`, `1,25 mill`; øre are rounded; `1.300`, `1,300` and `1,3` alone are "
        "rejected "
        "as unclear (1 300 kr or 1,3 mill?); empty or `0` = no value",
    ),
    ColumnSpec(
        "agreement_type",
        ("Avtaletype", "Kontraktstype", "Agreement type"),
        False,
        "`Rammeavtale` → framework; `Enkeltkontrakt`/empty/anything else → single (unknown text warns)",
    ),
    ColumnSpec(
        "manager",
        ("Avtaleforvalter", "Avtaleforvalter e-post", "Kontraktsforvalter", "Contract manager"),
        False,
        "E-mail address (also `Name <e-mail>`) or an Entra object id; empty warns (reminders "
        "then go "
        "to Innkjøpsseksjonen)",
    ),
    ColumnSpec(
        "risk_level",
        ("Risiko", "Risikonivå", "Risk"),
        False,
        "`Lav`/`Middels`/`Høy` (also low/medium/high); empty → medium",
    ),
    ColumnSpec(
        "controls",
        ("Kontroller", "Planlagte kontroller", "Kontroll", "Controls"),
        False,
        "`2025-06-30 Lønnskontroll; 2026-01-15 HMS-kontroll`: items separated by `;`, `\\|` or "
        "line "
        "breaks, each a date (first or last) and a description; the kind is read from keywords "
        "(lønn → wage_conditions, HMS, miljø → environment, seriøsitet → serious_employer, "
        "lærling → apprentices, else other)",
    ),
    ColumnSpec(
        "archive_case_no",
        ("Arkivsak", "Saksnummer", "Arkivsaksnummer", "Saksnr", "Case number"),
        False,
        "Case number such as `24/01234` (other forms are kept with a warning)",
    ),
    ColumnSpec("internal_notes", ("Merknad", "Merknader", "Kommentar", "Notes"), False, "Text (internal)"),
)

_DATE_DOC = (
    "Dates: `31.12.2026`, `31.12.26`, `2026-12-31`, `31/12/2026` (also with a time of day after), "
    "and date cells in Excel."
)


def _header_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for spec in COLUMNS:
        for alias in (spec.field, *spec.aliases):
            key = match_key(alias)
            if index.get(key, spec.field) != spec.field:
                raise AssertionError(f"the column name {alias!r} is an alias of two fields")
            index[key] = spec.field
    return index


_HEADER_INDEX = _header_index()
SPEC_BY_FIELD: dict[str, ColumnSpec] = {s.field: s for s in COLUMNS}


def header_fields(cells: Sequence[object]) -> list[str | None]:
    """The field each header cell names (None for an empty or unknown one)."""
    return [_HEADER_INDEX.get(match_key(cell_text(c))) if cell_text(c) else None for c in cells]


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
        "`manager` fills `manager_email` (or `manager_aad_id` for an object id); "
        "`option_notice` and "
        "`options` together give `ContractData.options`.",
    ]
    return "\n".join(lines) + "\n"


COLUMN_MAPPING_DOC: str = _build_mapping_doc()
__doc__ = (__doc__ or "") + "\n" + COLUMN_MAPPING_DOC
