"""Noark 5 metadata and the Fiks Arkiv sidecar: every sidecar validates, bad metadata is refused."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from procurement.records import archive_metadata as am
from procurement.records.archive_metadata import (
    ARCHIVE_COLUMNS,
    ArchiveCase,
    ArchiveConfig,
    ArchiveDocument,
    ArchiveFile,
    ArchiveMetadataError,
    CorrespondenceParty,
    JournalPost,
    Person,
    archive_columns,
    arkivmelding_xml,
    ascii_filename,
    exemption,
)

REFERENCE_SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "fiks-arkiv-v1"
NS = {"a": am.NS, "m": am.MDK, "i": am.PRODUCT_NS}
HOSTILE = 'Tilbud <script>alert("x")</script> & ]]> \'; DROP TABLE -- \x00\x07 \u202e æøå ÆØÅ'
CONFIG = ArchiveConfig(retention_label="Anskaffelser – bevares", archive_part="SAK", classification_class="053")
CASE = ArchiveCase(
    reference="K-2026-0042",
    title="Skoleskyss Østre Åsen 2027–2031",
    case_date=date(2026, 3, 1),
    responsible=Person("Åse Ærlig", "7f3c-aad-object-id", "ase.aerlig@kommune.no"),
)
AT = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


def pdf_file(name: str, content: bytes = b"%PDF-1.7 content") -> ArchiveFile:
    return ArchiveFile.for_bytes(name, content)


def lxml_schema() -> etree.XMLSchema:
    """A second, independent validator (libxml2) over the shipped schema."""
    return etree.XMLSchema(etree.parse(str(am.OPPRETT_XSD)))


def competition_posts() -> list[JournalPost]:
    """A competition's journal: internal notes, exempt ones, an offer in, a notice out, minutes."""
    supplier = CorrespondenceParty("Busselskapet Øst AS", "EM", "987654321", "anbud@buss-ost.no", "Per Østby")
    return [
        JournalPost(
            key="K-2026-0042/behovsmelding",
            title="Behovsmelding B-2026-0007 med vedtak",
            document_date=date(2026, 3, 1),
            post_type="X",
            documents=(
                ArchiveDocument("Behovsmelding med vedtak", pdf_file("Behovsmelding B-2026-0007.pdf"), "NOTAT"),
            ),
            source_record="B-2026-0007",
            created_at=AT,
            created_by=Person("Innkjøpsassistenten"),
        ),
        JournalPost(
            key="K-2026-0042/konkurransestrategi",
            title="Konkurransestrategi – budsjett og forhandlingsrom",
            public_title="Konkurransestrategi",
            document_date=date(2026, 3, 5),
            post_type="N",
            documents=(ArchiveDocument("Konkurransestrategi", pdf_file("Konkurransestrategi.pdf"), "NOTAT"),),
            parties=(CorrespondenceParty("Innkjøpsseksjonen", "IM"),),
            exemption=exemption("negotiating_position"),
        ),
        JournalPost(
            key="K-2026-0042/tilbud/987654321",
            title=f"Tilbud fra Busselskapet Øst AS {HOSTILE}",
            public_title="Tilbud fra leverandør",
            document_date=date(2026, 4, 10),
            post_type="I",
            status="M",
            documents=(
                ArchiveDocument("Tilbudsbrev", pdf_file("Tilbudsbrev.pdf", b"a"), "KORR"),
                ArchiveDocument(
                    "Prisskjema",
                    pdf_file("Prisskjema (konfidensielt).pdf", b"b"),
                    "VEDLEGG",
                    role="V",
                    exemption=exemption("business_secret"),
                ),
            ),
            parties=(dataclasses.replace(supplier, party_type="EA"),),
            exemption=exemption("business_secret"),
        ),
        JournalPost(
            key="K-2026-0042/tildeling/987654321",
            title="Meddelelse om tildeling",
            document_date=date(2026, 5, 2),
            post_type="U",
            status="E",
            documents=(ArchiveDocument("Meddelelse om tildeling", pdf_file("Tildeling.pdf"), "KORR"),),
            parties=(
                supplier,
                CorrespondenceParty("Ola Nordmann", "EK", email="ola@example.no", is_person=True, shielded=True),
            ),
        ),
        JournalPost(
            key="K-2026-0042/referat/2026-03-10",
            title="Referat fra oppstartsmøte i faggruppen",
            public_title="Referat fra oppstartsmøte",
            document_date=date(2026, 3, 10),
            post_type="X",
            documents=(ArchiveDocument("Referat", pdf_file("06 Referater/Oppstartsmøte.pdf"), "PROTOKOLL"),),
            exemption=exemption("internal"),
        ),
    ]


@pytest.mark.parametrize("post", competition_posts(), ids=lambda p: p.key)
def test_every_sidecar_of_a_competition_validates_against_the_schema(post: JournalPost) -> None:
    xml = arkivmelding_xml(CASE, post, CONFIG)
    assert am.schema_errors(xml) == []
    doc = etree.fromstring(xml)
    lxml_schema().assertValid(doc)
    # The case is the competition's, found by its K- reference; the post is placed in it.
    assert doc.xpath("a:mappe/a:referanseEksternNoekkel/m:noekkel/text()", namespaces=NS) == ["K-2026-0042"]
    parent = "a:registrering/a:referanseForelderMappe/m:referanseEksternNoekkel/m:noekkel/text()"
    assert doc.xpath(parent, namespaces=NS) == ["K-2026-0042"]
    assert doc.xpath("a:registrering/a:referanseEksternNoekkel/m:noekkel/text()", namespaces=NS) == [post.key]
    assert doc.xpath("a:registrering/a:journalposttype/m:kode/text()", namespaces=NS) == [post.post_type]
    assert doc.xpath("a:registrering/a:dokumentetsDato/text()", namespaces=NS) == [post.document_date.isoformat()]
    assert doc.xpath("a:antallFiler/text()", namespaces=NS) == [str(len(post.documents))]
    label = doc.xpath("a:registrering/a:virksomhetsspesifikkeMetadata/i:oppbevaringsetikett/text()", namespaces=NS)
    assert label == ["Anskaffelser – bevares"]
    variants = doc.xpath("//a:dokumentobjekt/a:variantformat/m:kode/text()", namespaces=NS)
    assert variants == ["A"] * len(post.documents)


def test_exempt_posts_carry_access_code_and_legal_basis() -> None:
    by_key = {p.key: etree.fromstring(arkivmelding_xml(CASE, p, CONFIG)) for p in competition_posts()}

    def skjerming(key: str) -> tuple[list[str], list[str]]:
        doc = by_key[key]
        return (
            doc.xpath("a:registrering/a:skjerming/a:tilgangsrestriksjon/m:kode/text()", namespaces=NS),
            doc.xpath("a:registrering/a:skjerming/a:skjermingshjemmel/text()", namespaces=NS),
        )

    assert skjerming("K-2026-0042/tilbud/987654321") == (["13"], ["Offl. § 13 jf. fvl. § 13 første ledd nr. 2"])
    assert skjerming("K-2026-0042/konkurransestrategi") == (["23"], ["Offl. § 23 første ledd"])
    assert skjerming("K-2026-0042/referat/2026-03-10") == (["14"], ["Offl. § 14 første ledd"])
    assert skjerming("K-2026-0042/tildeling/987654321") == ([], [])
    offer = by_key["K-2026-0042/tilbud/987654321"]
    # The price form is exempt as a document too; the letter is not.
    doc_codes = offer.xpath("//a:dokumentbeskrivelse/a:skjerming/a:tilgangsrestriksjon/m:kode/text()", namespaces=NS)
    assert doc_codes == ["13"]
    assert offer.xpath("a:registrering/a:offentligTittel/text()", namespaces=NS) == ["Tilbud fra leverandør"]


def test_correspondence_parties_and_hostile_text_survive_as_text() -> None:
    posts = {p.key: p for p in competition_posts()}
    offer = etree.fromstring(arkivmelding_xml(CASE, posts["K-2026-0042/tilbud/987654321"], CONFIG))
    title = offer.xpath("a:registrering/a:tittel/text()", namespaces=NS)[0]
    assert '<script>alert("x")</script> & ]]>' in title and "æøå ÆØÅ" in title
    assert "\x00" not in title and "\x07" not in title
    notice = etree.fromstring(arkivmelding_xml(CASE, posts["K-2026-0042/tildeling/987654321"], CONFIG))
    parties = notice.xpath("//a:korrespondansepart", namespaces=NS)
    assert [p.findtext(f"{{{am.NS}}}korrespondansepartNavn") for p in parties] == [
        "Busselskapet Øst AS",
        "Ola Nordmann",
    ]
    assert parties[0].findtext(f"{{{am.NS}}}organisasjonid") == "987654321"
    assert parties[1].findtext(f"{{{am.NS}}}erSkjermet") == "true"
    assert parties[1].findtext(f"{{{am.NS}}}erPersonnavn") == "true"
    file_name = notice.xpath("//a:dokumentobjekt/a:filnavn/text()", namespaces=NS)
    assert file_name == ["Tildeling.pdf"]


def test_the_shipped_schemas_are_the_reference_ones() -> None:
    if not REFERENCE_SCHEMAS.is_dir():
        pytest.skip("no ../shared/reference beside this checkout")
    for ref in REFERENCE_SCHEMAS.rglob("*"):
        if ref.is_file() and ref.name != "README.md":
            shipped = am.SCHEMA_DIR / ref.relative_to(REFERENCE_SCHEMAS)
            assert shipped.read_bytes() == ref.read_bytes(), shipped


def post_with(**changes: object) -> JournalPost:
    return dataclasses.replace(competition_posts()[3], **changes)  # type: ignore[arg-type]


BAD_POSTS = {
    "type S": post_with(post_type="S"),
    "unknown type": post_with(post_type="Z"),
    "unknown status": post_with(status="Q"),
    "outgoing without recipient": post_with(parties=(CorrespondenceParty("Kari", "EK"),)),
    "incoming without sender": post_with(post_type="I", parties=()),
    "exempt without public title": post_with(exemption=exemption("business_secret"), public_title=None),
    "empty title": post_with(title="  \x00 "),
    "title too long": post_with(title="x" * 501),
    "bad org number": post_with(parties=(CorrespondenceParty("Lev AS", "EM", "12345"),)),
    "bad email": post_with(parties=(CorrespondenceParty("Lev AS", "EM", email="ikke en adresse"),)),
    "unknown party type": post_with(parties=(CorrespondenceParty("Lev AS", "XX"),)),  # type: ignore[arg-type]
    "no documents": post_with(documents=()),
    "two main documents": post_with(
        documents=(ArchiveDocument("A", pdf_file("a.pdf")), ArchiveDocument("B", pdf_file("b.pdf")))
    ),
    "same file twice": post_with(
        documents=(ArchiveDocument("A", pdf_file("a.pdf")), ArchiveDocument("B", pdf_file("a.pdf"), role="V"))
    ),
    "unknown document type": post_with(documents=(ArchiveDocument("A", pdf_file("a.pdf"), "BREV"),)),
    "unknown variant": post_with(
        documents=(ArchiveDocument("A", dataclasses.replace(pdf_file("a.pdf"), variant="Q")),)
    ),
    "bad checksum": post_with(documents=(ArchiveDocument("A", dataclasses.replace(pdf_file("a.pdf"), sha256="abc")),)),
    "huge file": post_with(documents=(ArchiveDocument("A", dataclasses.replace(pdf_file("a.pdf"), size=2**31)),)),
}


@pytest.mark.parametrize("post", BAD_POSTS.values(), ids=BAD_POSTS.keys())
def test_invalid_metadata_is_refused_with_the_field_named(post: JournalPost) -> None:
    with pytest.raises(ArchiveMetadataError) as caught:
        arkivmelding_xml(CASE, post, CONFIG)
    assert caught.value.field and caught.value.message
    with pytest.raises(ArchiveMetadataError):
        archive_columns(CASE, post, CONFIG)


def test_an_invalid_case_is_refused() -> None:
    post = competition_posts()[0]
    for case in (
        dataclasses.replace(CASE, reference=""),
        dataclasses.replace(CASE, status="Z"),
        dataclasses.replace(CASE, exemption=exemption("internal")),  # exempt case needs a public title
    ):
        with pytest.raises(ArchiveMetadataError):
            arkivmelding_xml(case, post, CONFIG)
    with pytest.raises(ArchiveMetadataError, match="skjerming"):
        exemption("personal_opinion")


def test_a_message_that_fails_the_schema_is_never_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    def case_without_title(root: etree._Element, case: ArchiveCase, config: ArchiveConfig) -> None:
        etree.SubElement(root, f"{{{am.NS}}}mappe")  # tittel is required by the schema

    monkeypatch.setattr(am, "_saksmappe", case_without_title)
    with pytest.raises(ArchiveMetadataError, match="Fiks Arkiv") as caught:
        arkivmelding_xml(CASE, competition_posts()[0], CONFIG)
    assert caught.value.field == "arkivmelding"


@settings(max_examples=60, deadline=None)
@given(title=st.text(min_size=1, max_size=120), party=st.text(min_size=1, max_size=60))
def test_any_text_gives_a_valid_sidecar_or_a_clear_refusal(title: str, party: str) -> None:
    post = post_with(title=title, parties=(CorrespondenceParty(party, "EM"),))
    try:
        xml = arkivmelding_xml(CASE, post, CONFIG)
    except ArchiveMetadataError as refused:
        assert refused.field.startswith("journalpost.")
        return
    assert am.schema_errors(xml) == []
    doc = etree.fromstring(xml)
    assert doc.xpath("a:registrering/a:tittel/text()", namespaces=NS) == [am._text(title, "t")]


def test_archive_library_columns_carry_the_same_metadata() -> None:
    posts = {p.key: p for p in competition_posts()}
    offer = archive_columns(CASE, posts["K-2026-0042/tilbud/987654321"], CONFIG)
    assert set(offer) == {c.name for c in ARCHIVE_COLUMNS}
    assert offer["InnkjopSaksreferanse"] == "K-2026-0042"
    assert offer["InnkjopJournalposttype"] == "I"
    assert offer["InnkjopUnntattOffentlighet"] is True
    assert offer["InnkjopTilgangskode"] == "13"
    assert offer["InnkjopSkjermingshjemmel"] == "Offl. § 13 jf. fvl. § 13 første ledd nr. 2"
    assert offer["InnkjopOffentligTittel"] == "Tilbud fra leverandør"
    assert offer["InnkjopKorrespondanseparter"] == "Busselskapet Øst AS (Avsender)"
    assert offer["InnkjopOppbevaringsetikett"] == "Anskaffelser – bevares"
    assert offer["InnkjopDokumentdato"] == "2026-04-10"
    minutes = archive_columns(CASE, posts["K-2026-0042/behovsmelding"], CONFIG)
    assert minutes["InnkjopUnntattOffentlighet"] is False and minutes["InnkjopTilgangskode"] is None
    assert minutes["InnkjopKilde"] == "B-2026-0007"
    assert minutes["InnkjopKorrespondanseparter"] is None


def test_column_internal_names_are_stable_identifiers() -> None:
    names = [c.name for c in ARCHIVE_COLUMNS]
    assert len(set(names)) == len(names) and len({c.display_name for c in ARCHIVE_COLUMNS}) == len(names)
    for name in names:
        # SharePoint internal names: ASCII, no spaces, at most 32 characters, never renamed.
        assert name.isascii() and name.isalnum() and len(name) <= 32 and name.startswith("Innkjop")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Behovsmelding B-2026-0007.pdf", "Behovsmelding-B-2026-0007.pdf"),
        ("Møtereferat – Ærlig & Å.PDF", "Motereferat-Aerlig-A.pdf"),
        ("../../etc/passwd", "etc-passwd"),
        ("前.pdf", "dokument.pdf"),
    ],
)
def test_file_names_in_the_message_are_plain_ascii(name: str, expected: str) -> None:
    assert ascii_filename(name) == expected
