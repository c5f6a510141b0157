"""The product's documents as PDF/A: they open, hold the record's values, are marked and embed fonts."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pypdf
import pytest

from procurement.records.pdf import (
    REPLACEMENT,
    Decision,
    Fact,
    FontFiles,
    HistoryEntry,
    RecordDocument,
    RecordPdfError,
    Section,
    deviation_report_document,
    evaluation_summary_document,
    needs_report_document,
    render_pdf,
    supplier_notice_document,
)

AT = datetime(2026, 3, 2, 11, 30, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script> & ]]> %PDF-1.4 (\\) \x00\x07'


def needs_report() -> RecordDocument:
    return needs_report_document(
        reference="B-2026-0007",
        title="Skoleskyss for Østre Åsen skole",
        facts=[
            Fact("Tjenesteområde", "Oppvekst"),
            Fact("Estimert verdi", "1 300 000 kr"),
            Fact("Kontakt", "Kari Nordmann"),
        ],
        need=f"Elevene på Åsen trenger trygg skyss; dagens avtale går ut. {HOSTILE}",
        decision=Decision(
            "Godkjent", "Ola Innkjøper", AT, "Over nasjonal terskel: konkurransestrategi kreves.", "K-2026-0042"
        ),
        history=[
            HistoryEntry(AT - timedelta(days=3), "Kari Nordmann", "Sendt inn"),
            HistoryEntry(AT - timedelta(days=2), "Ola Innkjøper", "Spurte om mer informasjon", "Hvor mange elever?"),
            HistoryEntry(AT, "Ola Innkjøper", "Godkjent"),
        ],
    )


def deviation_report() -> RecordDocument:
    return deviation_report_document(
        reference="A-2026-0003",
        title="Forsinket levering av skolemelk",
        facts=[Fact("Kontrakt", "Meieriavtale 2025"), Fact("Leverandør", "Melkebøtta AS"), Fact("Alvorlighet", "Høy")],
        description="Melken kom tre dager for sent til Bjørkelangen skole.",
        closed_at=AT,
        closed_by="Siri Avtaleforvalter",
        closing_justification="Leverandøren har endret rutene; ingen nye avvik på fire uker.",
        history=[
            HistoryEntry(AT - timedelta(days=30), "Per Rektor", "Meldt"),
            HistoryEntry(AT - timedelta(days=29), "Siri Avtaleforvalter", "Mottatt"),
            HistoryEntry(
                AT - timedelta(days=20), "Siri Avtaleforvalter", "Under behandling", "Frist for utbedring 15.02."
            ),
            HistoryEntry(AT, "Siri Avtaleforvalter", "Lukket"),
        ],
        restriction="Unntatt offentlighet, offl. § 13 jf. fvl. § 13 første ledd nr. 2",
    )


def supplier_notice() -> RecordDocument:
    return supplier_notice_document(
        reference="K-2026-0042/tildeling/987654321",
        competition_reference="K-2026-0042",
        subject="Meddelelse om tildeling",
        supplier_name="Busselskapet Øst AS",
        organisation_number="987654321",
        body=["Vi har valgt Busselskapet Øst AS.", "Karensperioden løper til 12.05.2026."],
        sent_at=AT,
        sender="Innkjøpsseksjonen",
    )


def evaluation_summary() -> RecordDocument:
    return evaluation_summary_document(
        competition_reference="K-2026-0042",
        title="Evaluering: skoleskyss Østre Åsen",
        evaluated_at=AT,
        participants=["Ola Innkjøper", "Kari Nordmann", "Åse Ærlig"],
        what_worked=["Markedsdialogen ga fire tilbud."],
        what_to_change=["Tidligere involvering av verneombud."],
        supplier_feedback=["Taperne ønsket kortere svarfrist på spørsmål."],
    )


DOCUMENTS = {
    "needs report": (
        needs_report,
        ["Behovsmelding", "B-2026-0007", "Østre Åsen", "1 300 000 kr", "Godkjent", "K-2026-0042", "Hvor mange elever?"],
    ),
    "deviation report": (
        deviation_report,
        ["Avviksmelding", "Melkebøtta AS", "Bjørkelangen", "Lukket", "Under behandling", "Unntatt offentlighet"],
    ),
    "supplier notice": (supplier_notice, ["Meddelelse om tildeling", "Busselskapet Øst AS", "987654321", "12.05.2026"]),
    "evaluation summary": (evaluation_summary, ["Evaluering", "Åse Ærlig", "fire tilbud", "verneombud", "Taperne"]),
}


def text_of(reader: pypdf.PdfReader) -> str:
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.mark.parametrize(("build", "values"), DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_documents_open_and_hold_the_records_values(build: Callable[[], RecordDocument], values: list[str]) -> None:
    data = render_pdf(build())
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert not reader.is_encrypted and len(reader.pages) >= 1
    text = text_of(reader)
    for value in values:
        assert value in text, value
    assert "02.03.2026" in text  # Norwegian dates


@pytest.mark.parametrize(("build", "values"), DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_documents_are_marked_pdfa_2u_with_fonts_embedded(
    build: Callable[[], RecordDocument], values: list[str]
) -> None:
    data = render_pdf(build())
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert data.startswith(b"%PDF-1.7")
    xmp = reader.xmp_metadata
    assert xmp is not None
    assert (xmp.pdfaid_part, xmp.pdfaid_conformance) == ("2", "U")
    assert "x-default" in (xmp.dc_title or {})
    root: Any = reader.trailer["/Root"]
    intents = root["/OutputIntents"]
    assert intents[0].get_object()["/S"] == "/GTS_PDFA1" and "/DestOutputProfile" in intents[0].get_object()
    seen = 0
    for page in reader.pages:
        resources: Any = page["/Resources"]
        for font in resources["/Font"].values():
            font = font.get_object()
            assert font["/Subtype"] == "/Type0" and "/ToUnicode" in font  # U: every glyph maps to Unicode
            descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
            assert "/FontFile2" in descriptor, font["/BaseFont"]
            seen += 1
    assert seen >= 2  # regular and bold


def test_hostile_text_is_drawn_as_text_and_unknown_glyphs_as_replacement() -> None:
    doc = RecordDocument(
        kind="Notat",
        title="Blåbærsyltetøy ÆØÅ",
        reference="K-2026-0001",
        created_at=AT,
        sections=(Section("Innhold", (f"{HOSTILE} 中文 slutt", "x" * 2000)),),
    )
    text = text_of(pypdf.PdfReader(io.BytesIO(render_pdf(doc))))
    assert "Blåbærsyltetøy ÆØÅ" in text
    assert '<script>alert("x")</script> & ]]> %PDF-1.4 (\\)' in text
    assert "\x00" not in text and "\x07" not in text
    assert f"{REPLACEMENT}{REPLACEMENT} slutt" in text  # CJK is not in the font: shown, not dropped


def test_long_documents_break_pages_with_page_numbers_and_the_restriction_on_each() -> None:
    doc = RecordDocument(
        kind="Avviksmelding",
        title="Langt avvik",
        reference="A-2026-0009",
        created_at=AT,
        sections=tuple(Section(f"Del {i}", ("Tekst med æøå. " * 80,)) for i in range(12)),
        history=tuple(HistoryEntry(AT + timedelta(minutes=i), "Per", f"Hendelse {i}") for i in range(60)),
        restriction="Unntatt offentlighet, offl. § 13",
    )
    reader = pypdf.PdfReader(io.BytesIO(render_pdf(doc)))
    pages = len(reader.pages)
    assert pages > 2
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text()
        assert f"side {number} av {pages}" in text
        assert "Unntatt offentlighet, offl. § 13" in text
    assert "Hendelse 59" in text_of(reader)


def test_rendering_is_deterministic_so_a_repeated_upload_has_the_same_checksum() -> None:
    assert render_pdf(needs_report()) == render_pdf(needs_report())


def test_a_missing_font_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RecordPdfError, match="font file not found"):
        render_pdf(needs_report(), fonts=FontFiles(regular=tmp_path / "nope.ttf"))
    broken = tmp_path / "broken.ttf"
    broken.write_bytes(b"not a font")
    with pytest.raises(RecordPdfError):
        render_pdf(needs_report(), fonts=FontFiles(regular=broken, bold=broken))


def test_the_vendored_font_ships_with_its_licence() -> None:
    fonts = FontFiles()
    assert fonts.regular.is_file() and fonts.bold.is_file()
    licence = (fonts.regular.parent / "LICENSE").read_text(encoding="utf-8")
    assert "Bitstream" in licence and "DejaVu" in licence
