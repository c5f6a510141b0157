"""The product's documents as PDF/A, for the archive.

Level: **PDF/A-2u** (ISO 19005-2, conformance U), made with fpdf2's `enforce_compliance`.
Part 2 because Norwegian archives take PDF/A-1 and PDF/A-2 for deposit and part 2 is the newer
of the two (PDF 1.7 based); part 3 would allow arbitrary embedded files, which an archive copy
must not carry, and part 4 is not yet taken everywhere. Conformance U rather than B because U
also requires every glyph to map to Unicode: the archive's full-text search, a screen reader and
our tests can read the text back, æøå included. Level A would need a complete tagged structure,
which fpdf2 does not produce. fpdf2 embeds the fonts (subset) and the sRGB output intent and
writes the XMP `pdfaid` marks; there is no validator here (veraPDF is not reachable), so the
tests check the marks, the embedded fonts and the text.

The font is DejaVu Sans, vendored in `fonts/` with its licence, so a clean clone renders the
same bytes everywhere; `FontFiles` points elsewhere when configured, and a missing file is a
clear `RecordPdfError`. Characters the font lacks are drawn as U+FFFD instead of vanishing.

The documents are always in Norwegian bokmål: they are the municipality's records, not UI.
Rendering is deterministic for the same input (creation date = the record's time), so a
repeated archive upload carries the same bytes and checksum.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import TableBordersLayout, XPos, YPos

from procurement.shared.dates import format_date, format_datetime
from procurement.shared.text import clean_text

if TYPE_CHECKING:
    from procurement.competitions.strategy import Point, StrategyContent

FONT_DIR = Path(__file__).parent / "fonts"
PDFA_LEVEL = "PDF/A-2U"
FONT_FAMILY = "DejaVuSans"
REPLACEMENT = "\ufffd"


class RecordPdfError(RuntimeError):
    """The PDF cannot be made (a font file is missing or unreadable)."""


@dataclass(frozen=True)
class FontFiles:
    regular: Path = FONT_DIR / "DejaVuSans.ttf"
    bold: Path = FONT_DIR / "DejaVuSans-Bold.ttf"


@dataclass(frozen=True)
class Fact:
    label: str
    value: str


@dataclass(frozen=True)
class Section:
    heading: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: str
    event: str
    note: str | None = None


@dataclass(frozen=True)
class RecordDocument:
    """A generic record document: title, facts table, sections, history."""

    kind: str  # "Behovsmelding", "Avviksmelding" …: shown above the title
    title: str
    reference: str
    created_at: datetime
    facts: tuple[Fact, ...] = ()
    sections: tuple[Section, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    restriction: str | None = None  # e.g. "Unntatt offentlighet, offl. § 13 jf. fvl. § 13": on every page
    author: str = "Innkjøpsseksjonen"


@cache
def _codepoints(path: Path) -> frozenset[int]:
    with TTFont(str(path), lazy=True) as font:
        return frozenset(font.getBestCmap())


def _fonts_checked(fonts: FontFiles) -> tuple[Path, Path]:
    for path in (fonts.regular, fonts.bold):
        if not path.is_file():
            raise RecordPdfError(
                f"PDF font file not found: {path} (set FontFiles or restore procurement/records/fonts)"
            )
    return fonts.regular, fonts.bold


def _printable(text: str, known: frozenset[int]) -> str:
    """Storable, drawable text: controls dropped, tabs as spaces, unknown glyphs as U+FFFD."""
    text = clean_text(text).replace("\t", "    ").replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch if ch == "\n" or ord(ch) in known else REPLACEMENT for ch in text)


class _Pdf(FPDF):
    def __init__(self, doc: RecordDocument, fonts: FontFiles, clean: frozenset[int]) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4", enforce_compliance=PDFA_LEVEL)
        self.record = doc
        self.known = clean
        regular, bold = _fonts_checked(fonts)
        try:
            self.add_font(FONT_FAMILY, "", str(regular))
            self.add_font(FONT_FAMILY, "B", str(bold))
        except Exception as exc:  # fpdf2 raises several kinds for a bad font file
            raise RecordPdfError(f"PDF font file unreadable: {exc}") from exc
        self.set_margins(20, 18, 20)
        self.set_auto_page_break(True, margin=20)
        self.alias_nb_pages()

    def t(self, text: str) -> str:
        return _printable(text, self.known)

    def header(self) -> None:
        self.set_font(FONT_FAMILY, "", 8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 5, self.t(f"{self.record.kind} · {self.record.reference}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if self.record.restriction:
            self.set_font(FONT_FAMILY, "B", 8)
            self.set_text_color(150, 0, 0)
            self.multi_cell(0, 4, self.t(self.record.restriction), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0, 0, 0)
        self.ln(3)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(FONT_FAMILY, "", 8)
        self.set_text_color(90, 90, 90)
        made = format_datetime(self.record.created_at)
        self.cell(0, 5, self.t(f"Laget {made} av Innkjøpsassistenten · side {self.page_no()} av {{nb}}"), align="C")


_XMP_CREATE = re.compile(rb'xmp:CreateDate="([^"]+)"')
_XMP_NOW = re.compile(rb'(xmp:(?:ModifyDate|MetadataDate))="([^"]+)"')
_TRAILER_ID = re.compile(rb"/ID \[(<[0-9A-F]+><[0-9A-F]+>)\]")


def _pinned_xmp_dates(data: bytes) -> bytes:
    """fpdf2 stamps the XMP ModifyDate and MetadataDate with the clock; the archive copy must be
    the same bytes for the same record (a retry has the same checksum), so both become the
    record's time (CreateDate). Same length in the same format, so the xref offsets still hold."""
    created = _XMP_CREATE.search(data)
    if created is None:
        return data
    stamp = created.group(1)

    def pin(match: re.Match[bytes]) -> bytes:
        return match.group(1) + b'="' + stamp + b'"' if len(match.group(2)) == len(stamp) else match.group(0)

    pinned = _XMP_NOW.sub(pin, data)
    # The trailer's /ID is fpdf2's hash of the unpinned bytes: made again from the pinned ones.
    ident = _TRAILER_ID.search(pinned)
    if ident is None:
        return pinned
    blank = pinned[: ident.start(1)] + b"0" * len(ident.group(1)) + pinned[ident.end(1) :]
    digest = hashlib.md5(blank, usedforsecurity=False).hexdigest().upper().encode()
    if len(ident.group(1)) != 2 * len(digest) + 4:
        return pinned
    return pinned[: ident.start(1)] + b"<" + digest + b"><" + digest + b">" + pinned[ident.end(1) :]


def render_pdf(doc: RecordDocument, *, fonts: FontFiles | None = None) -> bytes:
    """The record document as PDF/A-2u bytes."""
    fonts = fonts or FontFiles()
    regular, bold = _fonts_checked(fonts)
    try:
        known = _codepoints(regular) & _codepoints(bold)
    except Exception as exc:  # fontTools raises several kinds for a file that is not a font
        raise RecordPdfError(f"PDF font file unreadable: {exc}") from exc
    pdf = _Pdf(doc, fonts, known)
    t = pdf.t
    pdf.set_title(t(f"{doc.kind}: {doc.title}"))
    pdf.set_subject(t(doc.reference))
    pdf.set_author(t(doc.author))
    pdf.set_creator("Innkjøpsassistenten")
    pdf.set_keywords(t(doc.reference))
    pdf.set_lang("nb-NO")
    pdf.set_creation_date(doc.created_at)
    pdf.add_page()

    pdf.set_font(FONT_FAMILY, "", 10)
    pdf.cell(0, 5, t(doc.kind), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT_FAMILY, "B", 16)
    pdf.multi_cell(0, 8, t(doc.title), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT_FAMILY, "", 10)
    pdf.cell(0, 6, t(f"Referanse {doc.reference} · {format_date(doc.created_at)}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)

    if doc.facts:
        pdf.set_font(FONT_FAMILY, "", 10)
        with pdf.table(
            col_widths=(35, 65),
            first_row_as_headings=False,
            borders_layout=TableBordersLayout.HORIZONTAL_LINES,
            line_height=5.5,
            padding=1.2,
        ) as table:
            for fact in doc.facts:
                row = table.row()
                pdf.set_font(FONT_FAMILY, "B", 10)
                row.cell(t(fact.label))
                pdf.set_font(FONT_FAMILY, "", 10)
                row.cell(t(fact.value) or "–")
        pdf.ln(4)

    for section in doc.sections:
        pdf.set_font(FONT_FAMILY, "B", 12)
        pdf.multi_cell(0, 7, t(section.heading), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(FONT_FAMILY, "", 10)
        for paragraph in section.paragraphs or ("–",):
            pdf.multi_cell(0, 5, t(paragraph), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(2)
        pdf.ln(2)

    if doc.history:
        pdf.set_font(FONT_FAMILY, "B", 12)
        pdf.cell(0, 7, "Historikk", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(FONT_FAMILY, "", 9)
        with pdf.table(
            col_widths=(22, 25, 53),
            borders_layout=TableBordersLayout.HORIZONTAL_LINES,
            line_height=5,
            padding=1,
        ) as table:
            head = table.row()
            for label in ("Tidspunkt", "Hvem", "Hva"):
                head.cell(label)
            for entry in sorted(doc.history, key=lambda e: e.at):
                row = table.row()
                row.cell(format_datetime(entry.at))
                row.cell(t(entry.actor))
                row.cell(t(entry.event + (f"\n{entry.note}" if entry.note else "")))

    return _pinned_xmp_dates(bytes(pdf.output()))


# ---- the product's documents ---------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    outcome: str  # "Godkjent" / "Avvist"
    decided_by: str
    decided_at: datetime
    justification: str | None = None
    competition_reference: str | None = None  # the K- reference an approval created


def needs_report_document(
    *,
    reference: str,
    title: str,
    facts: Sequence[Fact],
    need: str,
    decision: Decision,
    history: Sequence[HistoryEntry] = (),
) -> RecordDocument:
    """The needs report as submitted, with Innkjøpsseksjonen's decision."""
    decided = [
        Fact("Vedtak", decision.outcome),
        Fact("Besluttet av", decision.decided_by),
        Fact("Besluttet", format_datetime(decision.decided_at)),
    ]
    if decision.competition_reference:
        decided.append(Fact("Konkurranse", decision.competition_reference))
    sections = [Section("Behovet", (need,))]
    if decision.justification:
        sections.append(Section("Begrunnelse for vedtaket", (decision.justification,)))
    return RecordDocument(
        kind="Behovsmelding",
        title=title,
        reference=reference,
        created_at=decision.decided_at,
        facts=(*facts, *decided),
        sections=tuple(sections),
        history=tuple(history),
    )


def deviation_report_document(
    *,
    reference: str,
    title: str,
    facts: Sequence[Fact],
    description: str,
    closed_at: datetime,
    closed_by: str,
    closing_justification: str,
    history: Sequence[HistoryEntry],
    restriction: str | None = None,
) -> RecordDocument:
    """A closed deviation report with its whole history (meldt → … → lukket)."""
    return RecordDocument(
        kind="Avviksmelding",
        title=title,
        reference=reference,
        created_at=closed_at,
        facts=(*facts, Fact("Lukket", format_datetime(closed_at)), Fact("Lukket av", closed_by)),
        sections=(Section("Beskrivelse", (description,)), Section("Begrunnelse for lukking", (closing_justification,))),
        history=tuple(history),
        restriction=restriction,
    )


def supplier_notice_document(
    *,
    reference: str,
    competition_reference: str,
    subject: str,
    supplier_name: str,
    organisation_number: str | None,
    body: Sequence[str],
    sent_at: datetime,
    sender: str,
) -> RecordDocument:
    """A notice sent to a supplier in a competition (e.g. the award notice)."""
    facts = [Fact("Konkurranse", competition_reference), Fact("Mottaker", supplier_name)]
    if organisation_number:
        facts.append(Fact("Organisasjonsnummer", organisation_number))
    facts += [Fact("Sendt", format_datetime(sent_at)), Fact("Avsender", sender)]
    return RecordDocument(
        kind="Melding til leverandør",
        title=subject,
        reference=reference,
        created_at=sent_at,
        facts=tuple(facts),
        sections=(Section("Melding", tuple(body)),),
        author=sender,
    )


def evaluation_summary_document(
    *,
    competition_reference: str,
    title: str,
    evaluated_at: datetime,
    participants: Sequence[str],
    what_worked: Sequence[str],
    what_to_change: Sequence[str],
    supplier_feedback: Sequence[str],
) -> RecordDocument:
    """The evaluation after a finished competition (learning across competitions)."""
    return RecordDocument(
        kind="Evaluering av anskaffelse",
        title=title,
        reference=competition_reference,
        created_at=evaluated_at,
        facts=(
            Fact("Konkurranse", competition_reference),
            Fact("Evaluert", format_date(evaluated_at)),
            Fact("Deltakere", ", ".join(participants)),
        ),
        sections=(
            Section("Hva fungerte", tuple(what_worked)),
            Section("Hva bør endres", tuple(what_to_change)),
            Section("Tilbakemeldinger fra leverandører", tuple(supplier_feedback)),
        ),
    )


def _points(points: Sequence[Point]) -> tuple[str, ...]:
    """A strategy's points as paragraphs: the statement, then its weight and source."""
    out = []
    for point in points:
        tail = " · ".join(p for p in (point.severity, point.source) if p)
        out.append(f"{point.text} ({tail})" if tail else point.text)
    return tuple(out)


def strategy_document(
    content: StrategyContent, *, drafted_at: datetime, restriction: str | None = None
) -> RecordDocument:
    """The draft konkurransestrategi (`competitions.strategy.build_strategy` content) as a record:
    the same sections as the Word template, in the same order, for the competition's case."""
    value = content.value
    procedure = content.procedure
    timeline = tuple(
        f"{row.milestone}: {row.date}" + (f" ({row.note})" if row.note else "") for row in content.timeline.rows
    )
    faggruppe = content.faggruppe
    sections = (
        Section("Behovet", (content.need.description,)),
        Section("Verdi", (f"Anslått verdi: {value.amount}", f"Grunnlag: {value.basis}", value.position)),
        Section("Konsekvenser etter regelverket", _points(content.consequences)),
        Section(
            "Prosedyre",
            (
                f"{procedure.part}: {procedure.summary}",
                f"Kunngjøring: {procedure.announce}",
                f"Foreslått: {procedure.suggested}",
                *_points(procedure.options),
                procedure.advice,
                f"Kilde: {procedure.source}",
            ),
        ),
        Section("Oppdeling og små og lokale leverandører", _points(content.lots)),
        Section("Klima og miljø", _points(content.climate)),
        Section("Lønns- og arbeidsvilkår, seriøsitet og lærlinger", _points(content.labour)),
        Section("Markedsdialog og innovasjon", _points(content.dialogue)),
        Section("Risiko", _points(content.risks)),
        Section("Tidsplan", (*((content.timeline.message,) if content.timeline.message else ()), *timeline)),
        Section(
            "Faggruppe",
            (
                ", ".join(faggruppe.members) or "Ikke oppgitt",
                f"Kontakt: {faggruppe.contact}",
                *_points(faggruppe.notes),
            ),
        ),
    )
    return RecordDocument(
        kind="Konkurransestrategi",
        title=content.need.title,
        reference=content.competition_ref,
        created_at=drafted_at,
        facts=tuple(Fact(f.label, f.value) for f in content.need.facts),
        sections=(Section("Merknad", (content.draft_notice,)), *sections) if content.draft_notice else sections,
        restriction=restriction,
    )
