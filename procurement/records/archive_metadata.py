"""Noark 5 metadata for what the product archives, and the Fiks Arkiv sidecar that carries it.

One case (saksmappe) per competition, keyed by its `K-` reference as `referanseEksternNoekkel`
(records outside a competition, e.g. a contract's deviation reports, use their own record's
reference the same way); one journal post per document. Every upload carries the same metadata
twice: as columns of the SharePoint archive library (`archive_columns`) and as an XML sidecar
(`arkivmelding_xml`, an `arkivmelding.opprett` message) that is validated against the Fiks Arkiv V1
schema shipped in `schemas/fiks-arkiv-v1/` before it is returned. A sidecar that does not
validate is never returned: the caller gets `ArchiveMetadataError` and writes nothing.

Each sidecar holds the case *and* the journal post (the schema allows one of each per message),
so an upload is self-contained and can be repeated: the archive finds the case again by its
external key, and the journal post by its own external key (`JournalPost.key`).

Code values (journalposttype, journalstatus, dokumenttype, …) are checked against the KS code
lists shipped with the schema; the exemption grounds (skjerming) are dated data in
`rules_data/exemptions.json`. This module is pure: no I/O beyond reading those shipped files.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Literal

import xmlschema
from lxml import etree

from procurement.shared.text import clean_text

HERE = Path(__file__).parent
SCHEMA_DIR = HERE / "schemas" / "fiks-arkiv-v1"
OPPRETT_XSD = SCHEMA_DIR / "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett.xsd"
EXEMPTIONS_FILE = HERE / "rules_data" / "exemptions.json"

NS = "https://ks-no.github.io/standarder/fiks-protokoll/fiks-arkiv/arkivmelding/opprett/v1"
# Children of the metadata catalogue's own types (kode, eksternNoekkel, identifikatorer …) are
# in its namespace; the message's elements are in the opprett namespace.
MDK = "https://ks-no.github.io/standarder/fiks-protokoll/fiks-arkiv/metadatakatalog/v1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
# Our own metadata (the retention label, the record it came from) rides in the schema's
# open `virksomhetsspesifikkeMetadata` slot under a namespace of ours.
PRODUCT_NS = "urn:innkjopsassistenten:arkiv:v1"

SIDECAR_FILENAME = "arkivmelding.xml"
PDF_MIME = "application/pdf"

JournalPostType = Literal["I", "U", "N", "X"]
PartyType = Literal["EA", "EM", "EK", "GM", "IA", "IM", "IK"]
ExemptionGround = Literal["business_secret", "internal", "negotiating_position"]

# Noark 5 journalposttype S (saksframlegg) belongs to political case processing, not to us.
JOURNAL_POST_TYPES: tuple[str, ...] = ("I", "U", "N", "X")
_ORG_NUMBER = re.compile(r"^\d{9}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_XS_INT_MAX = 2**31 - 1
TITLE_LIMIT = 500  # long enough for any title; the archive systems cut far later than this


class ArchiveMetadataError(ValueError):
    """Metadata that cannot be archived; `field` names the value, `message` says why (bokmål)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# ---- code lists --------------------------------------------------------------------------


@dataclass(frozen=True)
class Code:
    """A Fiks Arkiv code (`kode` + `beskrivelse`)."""

    kode: str
    beskrivelse: str


@cache
def code_list(name: str) -> Mapping[str, str]:
    """A KS code list (file name without .json) as {kodeverdi: kodebeskrivelse}."""
    data = json.loads((SCHEMA_DIR / "kodelister" / f"{name}.json").read_text(encoding="utf-8"))
    return {item["kodeverdi"]: item["kodebeskrivelse"] for item in data["kodeliste"]}


def code(list_name: str, value: str, *, field: str) -> Code:
    codes = code_list(list_name)
    if value not in codes:
        raise ArchiveMetadataError(field, f"«{value}» finnes ikke i kodelisten {list_name} ({', '.join(codes)}).")
    return Code(value, codes[value])


# ---- exemption (skjerming) -----------------------------------------------------------------


@dataclass(frozen=True)
class Exemption:
    """Why a record is exempt from public access, as the journal must state it."""

    ground: str
    tilgangsrestriksjon: str
    beskrivelse: str
    skjermingshjemmel: str


@cache
def exemptions() -> Mapping[str, Exemption]:
    data = json.loads(EXEMPTIONS_FILE.read_text(encoding="utf-8"))
    return {
        ground: Exemption(ground, row["tilgangsrestriksjon"], row["beskrivelse"], row["skjermingshjemmel"])
        for ground, row in data["exemptions"].items()
    }


def exemption(ground: ExemptionGround | str) -> Exemption:
    """The configured exemption for a ground: business_secret (offl. § 13 jf. fvl. § 13),
    internal (§ 14) or negotiating_position (§ 23)."""
    known = exemptions()
    if ground not in known:
        raise ArchiveMetadataError("skjerming", f"Ukjent grunnlag for skjerming «{ground}» ({', '.join(known)}).")
    return known[ground]


# ---- the records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveConfig:
    """What the municipality configures for its archive (settings, not code)."""

    retention_label: str
    system: str = "Innkjøpsassistenten"  # arkivmelding.system and eksternNoekkel.fagsystem
    administrative_unit: str = "Innkjøpsseksjonen"
    archive_part: str | None = None  # arkivdel code, when the archive wants one
    classification_system: str | None = None  # e.g. the municipality's ordningsprinsipp
    classification_class: str | None = None  # e.g. its class for procurement


@dataclass(frozen=True)
class Person:
    """Someone in the municipality (saksansvarlig, opprettetAv)."""

    name: str
    identifier: str | None = None  # the Entra object id
    email: str | None = None


@dataclass(frozen=True)
class CorrespondenceParty:
    """Sender or recipient of a journal post (korrespondansepart)."""

    name: str
    party_type: PartyType  # EA sender, EM recipient, EK copy, IA/IM internal sender/recipient …
    organisation_number: str | None = None
    email: str | None = None
    contact_person: str | None = None
    is_person: bool = False  # a private person's name (erPersonnavn): the journal shields it
    shielded: bool = False  # erSkjermet: the party's name is not shown in the public journal


@dataclass(frozen=True)
class ArchiveCase:
    """The saksmappe: one per competition (its K- reference)."""

    reference: str  # K-2026-0042 (or the record's own reference outside a competition)
    title: str
    case_date: date
    public_title: str | None = None
    responsible: Person | None = None
    status: str = "B"  # saksstatus: under behandling
    exemption: Exemption | None = None


@dataclass(frozen=True)
class ArchiveFile:
    """The file of a document (dokumentobjekt): the PDF/A we rendered, in archive format."""

    filename: str  # shown and used on download; may contain æøå
    size: int
    sha256: str
    variant: str = "A"  # variantformat: A arkivformat (PDF/A)
    format_code: str = "fmt/478"  # PRONOM id of PDF/A-2u
    format_description: str = "PDF/A-2u"
    mime_type: str = PDF_MIME
    stored_name: str | None = None  # referanseDokumentfil; derived from filename when None

    @classmethod
    def for_bytes(cls, filename: str, content: bytes, **kwargs: str) -> ArchiveFile:
        return cls(filename=filename, size=len(content), sha256=hashlib.sha256(content).hexdigest(), **kwargs)

    @property
    def reference_name(self) -> str:
        return self.stored_name or ascii_filename(self.filename)


@dataclass(frozen=True)
class ArchiveDocument:
    """A document of a journal post (dokumentbeskrivelse) and its file."""

    title: str
    file: ArchiveFile
    document_type: str = "DOKUMENT"  # dokumenttype code list: NOTAT, RAPPORT, KORR, PROTOKOLL …
    status: str = "F"  # dokumentstatus: ferdigstilt
    role: str = "H"  # tilknyttetRegistreringSom: H hoveddokument, V vedlegg
    exemption: Exemption | None = None


@dataclass(frozen=True)
class JournalPost:
    """One journal post per archived document."""

    key: str  # stable external key of this post, e.g. "K-2026-0042/konkurransestrategi"
    title: str
    document_date: date
    post_type: JournalPostType
    documents: tuple[ArchiveDocument, ...]
    public_title: str | None = None
    status: str = "F"  # journalstatus: ferdigstilt av saksbehandler
    parties: tuple[CorrespondenceParty, ...] = ()
    exemption: Exemption | None = None
    created_at: datetime | None = None
    created_by: Person | None = None
    source_record: str | None = None  # the product's record (B-…, A-…) the document was made from
    keywords: tuple[str, ...] = field(default=())


# ---- validation of the values (before any XML) ---------------------------------------------


def _text(value: str | None, field: str, *, required: bool = True, limit: int = TITLE_LIMIT) -> str | None:
    """Cleaned text (controls that XML cannot carry are dropped, blanks folded), or an error."""
    if value is None:
        if required:
            raise ArchiveMetadataError(field, "Mangler.")
        return None
    text = " ".join(clean_text(unicodedata.normalize("NFC", value)).split())
    # Non-characters and lone surrogates are not XML characters either.
    text = "".join(ch for ch in text if not (0xFFFE <= ord(ch) <= 0xFFFF or 0xFDD0 <= ord(ch) <= 0xFDEF))
    if not text:
        if required:
            raise ArchiveMetadataError(field, "Kan ikke være tom.")
        return None
    if len(text) > limit:
        raise ArchiveMetadataError(field, f"Er {len(text)} tegn; høyst {limit} er tillatt.")
    return text


def _check_case(case: ArchiveCase) -> None:
    _text(case.reference, "sak.referanse", limit=100)
    _text(case.title, "sak.tittel")
    _text(case.public_title, "sak.offentligTittel", required=case.exemption is not None)
    code("saksstatus", case.status, field="sak.saksstatus")


def _check_post(post: JournalPost) -> None:
    _text(post.key, "journalpost.noekkel", limit=200)
    _text(post.title, "journalpost.tittel")
    # An exempt post must say what the public journal shows: someone has to have decided it.
    _text(post.public_title, "journalpost.offentligTittel", required=post.exemption is not None)
    if post.post_type not in JOURNAL_POST_TYPES:
        raise ArchiveMetadataError("journalpost.journalposttype", f"«{post.post_type}» er ikke I, U, N eller X.")
    code("journalposttype", post.post_type, field="journalpost.journalposttype")
    code("journalstatus", post.status, field="journalpost.journalstatus")
    types = {p.party_type for p in post.parties}
    if post.post_type == "I" and "EA" not in types:
        raise ArchiveMetadataError("journalpost.korrespondansepart", "Et inngående dokument må ha en avsender (EA).")
    if post.post_type == "U" and "EM" not in types:
        raise ArchiveMetadataError("journalpost.korrespondansepart", "Et utgående dokument må ha en mottaker (EM).")
    for i, party in enumerate(post.parties):
        where = f"journalpost.korrespondansepart[{i}]"
        _text(party.name, f"{where}.navn")
        code("korrespondanseparttype", party.party_type, field=f"{where}.type")
        if party.organisation_number is not None and not _ORG_NUMBER.match(party.organisation_number):
            raise ArchiveMetadataError(f"{where}.organisasjonid", "Organisasjonsnummeret må være ni sifre.")
        if party.email is not None and not _EMAIL.match(party.email):
            raise ArchiveMetadataError(f"{where}.epostadresse", f"«{party.email}» er ikke en e-postadresse.")
        _text(party.contact_person, f"{where}.kontaktperson", required=False)
    if not post.documents:
        raise ArchiveMetadataError("journalpost.dokumentbeskrivelse", "En journalpost må ha minst ett dokument.")
    if sum(1 for d in post.documents if d.role == "H") != 1:
        raise ArchiveMetadataError(
            "journalpost.dokumentbeskrivelse", "Nøyaktig ett dokument må være hoveddokument (H)."
        )
    names: set[str] = set()
    for i, doc in enumerate(post.documents):
        where = f"dokumentbeskrivelse[{i}]"
        _text(doc.title, f"{where}.tittel")
        code("dokumenttype", doc.document_type, field=f"{where}.dokumenttype")
        code("dokumentstatus", doc.status, field=f"{where}.dokumentstatus")
        code("tilknyttetregistreringsom", doc.role, field=f"{where}.tilknyttetRegistreringSom")
        code("variantformat", doc.file.variant, field=f"{where}.variantformat")
        _text(doc.file.filename, f"{where}.filnavn", limit=255)
        if not 0 <= doc.file.size <= _XS_INT_MAX:
            raise ArchiveMetadataError(f"{where}.filstoerrelse", "Filstørrelsen er utenfor det arkivet tar imot.")
        if not re.fullmatch(r"[0-9a-f]{64}", doc.file.sha256):
            raise ArchiveMetadataError(f"{where}.sjekksum", "Sjekksummen må være SHA-256 i heksadesimal.")
        if doc.file.reference_name in names:
            raise ArchiveMetadataError(f"{where}.filnavn", f"Filnavnet «{doc.file.reference_name}» er brukt to ganger.")
        names.add(doc.file.reference_name)


def ascii_filename(name: str) -> str:
    """A file name for the message itself (referanseDokumentfil): æøå folded, nothing odd."""
    folded = (
        unicodedata.normalize("NFC", name)
        .replace("æ", "ae")
        .replace("Æ", "Ae")
        .replace("ø", "o")
        .replace("Ø", "O")
        .replace("å", "a")
        .replace("Å", "A")
    )
    folded = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode("ascii")
    has_ext = re.fullmatch(r"(.*)\.([A-Za-z0-9]{1,10})", folded)
    stem, ext = (has_ext.group(1), has_ext.group(2)) if has_ext else (folded, "")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:120] or "dokument"
    return f"{stem}.{ext.lower()}" if ext else stem


# ---- XML ---------------------------------------------------------------------------------


def _el(parent: etree._Element, tag: str, text: str | None = None, *, ns: str = NS) -> etree._Element:
    child = etree.SubElement(parent, f"{{{ns}}}{tag}")
    if text is not None:
        child.text = text
    return child


def _code_el(parent: etree._Element, tag: str, value: Code) -> None:
    el = _el(parent, tag)
    _el(el, "kode", value.kode, ns=MDK)
    _el(el, "beskrivelse", value.beskrivelse, ns=MDK)


def _external_key(parent: etree._Element, tag: str, system: str, key: str, *, ns: str = NS) -> None:
    el = _el(parent, tag, ns=ns)
    _el(el, "fagsystem", _text(system, "fagsystem"), ns=MDK)
    _el(el, "noekkel", _text(key, "noekkel"), ns=MDK)


def _skjerming(parent: etree._Element, exempt: Exemption) -> None:
    el = _el(parent, "skjerming")
    _code_el(el, "tilgangsrestriksjon", Code(exempt.tilgangsrestriksjon, exempt.beskrivelse))
    _el(el, "skjermingshjemmel", exempt.skjermingshjemmel)


def _person(parent: etree._Element, tag: str, person: Person) -> None:
    el = _el(parent, tag)
    _el(el, "navn", _text(person.name, tag), ns=MDK)
    if person.identifier:
        _el(el, "identifikator", _text(person.identifier, tag), ns=MDK)
    if person.email:
        _el(el, "epostadresse", _text(person.email, tag), ns=MDK)


def _saksmappe(root: etree._Element, case: ArchiveCase, config: ArchiveConfig) -> None:
    m = _el(root, "mappe")
    m.set(f"{{{XSI}}}type", "saksmappe")  # unprefixed: the default namespace is the schema's
    _el(m, "tittel", _text(case.title, "sak.tittel"))
    if case.public_title is not None:
        _el(m, "offentligTittel", _text(case.public_title, "sak.offentligTittel"))
    if config.archive_part:
        _code_el(m, "arkivdel", Code(config.archive_part, config.archive_part))
    if case.exemption is not None:
        _skjerming(m, case.exemption)
    if config.classification_class:
        k = _el(m, "klassifikasjon")
        if config.classification_system:
            _el(k, "klassifikasjonssystemID", config.classification_system)
        _el(k, "klasseID", config.classification_class)
    _external_key(m, "referanseEksternNoekkel", config.system, case.reference)
    _el(m, "saksaar", str(case.case_date.year))
    _el(m, "saksdato", case.case_date.isoformat())
    unit = _el(m, "administrativEnhet")
    _el(unit, "navn", _text(config.administrative_unit, "administrativEnhet"), ns=MDK)
    if case.responsible is not None:
        _person(m, "saksansvarlig", case.responsible)
    _code_el(m, "saksstatus", code("saksstatus", case.status, field="sak.saksstatus"))


def _journalpost(root: etree._Element, case: ArchiveCase, post: JournalPost, config: ArchiveConfig) -> None:
    r = _el(root, "registrering")
    r.set(f"{{{XSI}}}type", "journalpost")
    if post.created_at is not None:
        _el(r, "opprettetDato", post.created_at.isoformat())
    if post.created_by is not None:
        _el(r, "opprettetAv", _text(post.created_by.name, "journalpost.opprettetAv"))
    parent = _el(r, "referanseForelderMappe")
    _external_key(parent, "referanseEksternNoekkel", config.system, case.reference, ns=MDK)
    if post.exemption is not None:
        _skjerming(r, post.exemption)
    for number, doc in enumerate(post.documents, start=1):
        d = _el(r, "dokumentbeskrivelse")
        _code_el(d, "dokumenttype", code("dokumenttype", doc.document_type, field="dokumenttype"))
        _code_el(d, "dokumentstatus", code("dokumentstatus", doc.status, field="dokumentstatus"))
        _el(d, "tittel", _text(doc.title, "dokumentbeskrivelse.tittel"))
        _code_el(
            d,
            "tilknyttetRegistreringSom",
            code("tilknyttetregistreringsom", doc.role, field="tilknyttetRegistreringSom"),
        )
        _el(d, "dokumentnummer", str(number))
        if doc.exemption is not None:
            _skjerming(d, doc.exemption)
        o = _el(d, "dokumentobjekt")
        _el(o, "versjonsnummer", "1")
        _code_el(o, "variantformat", code("variantformat", doc.file.variant, field="variantformat"))
        _code_el(o, "format", Code(doc.file.format_code, doc.file.format_description))
        _el(o, "mimeType", doc.file.mime_type)
        _el(o, "filnavn", _text(doc.file.filename, "filnavn", limit=255))
        _el(o, "referanseDokumentfil", doc.file.reference_name)
        _el(o, "sjekksum", doc.file.sha256)
        _el(o, "sjekksumAlgoritme", "SHA-256")
        _el(o, "filstoerrelse", str(doc.file.size))
    _el(r, "tittel", _text(post.title, "journalpost.tittel"))
    if post.public_title is not None:
        _el(r, "offentligTittel", _text(post.public_title, "journalpost.offentligTittel"))
    for word in post.keywords:
        if (kw := _text(word, "journalpost.noekkelord", required=False)) is not None:
            _el(r, "noekkelord", kw)
    own = _el(r, "virksomhetsspesifikkeMetadata")
    etree.SubElement(own, f"{{{PRODUCT_NS}}}oppbevaringsetikett").text = _text(config.retention_label, "etikett")
    if post.source_record:
        etree.SubElement(own, f"{{{PRODUCT_NS}}}kildeRegistrering").text = _text(post.source_record, "kilde")
    for party in post.parties:
        k = _el(r, "korrespondansepart")
        _code_el(k, "korrespondanseparttype", code("korrespondanseparttype", party.party_type, field="type"))
        _el(k, "korrespondansepartNavn", _text(party.name, "korrespondansepart.navn"))
        if party.organisation_number:
            _el(k, "organisasjonid", party.organisation_number)
        if party.email:
            _el(k, "epostadresse", party.email)
        if party.contact_person and (contact := _text(party.contact_person, "kontaktperson", required=False)):
            _el(k, "kontaktperson", contact)
        if party.party_type in ("IA", "IM", "IK"):
            unit = _el(k, "administrativEnhet")
            _el(unit, "navn", _text(config.administrative_unit, "administrativEnhet"), ns=MDK)
        _el(k, "erSkjermet", "true" if party.shielded else "false")
        _el(k, "erPersonnavn", "true" if party.is_person else "false")
    _external_key(r, "referanseEksternNoekkel", config.system, post.key)
    _code_el(r, "journalposttype", code("journalposttype", post.post_type, field="journalposttype"))
    _code_el(r, "journalstatus", code("journalstatus", post.status, field="journalstatus"))
    _el(r, "dokumentetsDato", post.document_date.isoformat())
    _el(r, "antallVedlegg", str(len(post.documents) - 1))


@cache
def opprett_schema() -> xmlschema.XMLSchema:
    """The shipped `arkivmelding.opprett` schema (parsed once; it takes a moment)."""
    return xmlschema.XMLSchema(str(OPPRETT_XSD))


def schema_errors(xml: bytes) -> list[str]:
    """Why `xml` does not validate against the opprett schema (empty when it does)."""
    return [f"{e.path}: {e.reason}" for e in opprett_schema().iter_errors(etree.fromstring(xml))]


def arkivmelding_xml(case: ArchiveCase, post: JournalPost, config: ArchiveConfig) -> bytes:
    """The `arkivmelding.opprett` sidecar for one journal post in its case, schema-valid or an error.

    Raises `ArchiveMetadataError` for metadata the archive cannot take, and also (field
    "arkivmelding") if the built message fails the schema: no invalid sidecar leaves here.
    """
    _check_case(case)
    _check_post(post)
    system = _text(config.system, "system", limit=100)
    _text(config.retention_label, "oppbevaringsetikett", limit=255)
    root = etree.Element(f"{{{NS}}}arkivmelding", nsmap={None: NS, "n5mdk": MDK, "xsi": XSI, "innkjop": PRODUCT_NS})
    _el(root, "system", system)
    _el(root, "antallFiler", str(len(post.documents)))
    _saksmappe(root, case, config)
    _journalpost(root, case, post, config)
    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    errors = schema_errors(xml)
    if errors:
        raise ArchiveMetadataError("arkivmelding", "Ugyldig mot Fiks Arkiv-skjemaet: " + "; ".join(errors[:5]))
    return xml


# ---- the SharePoint archive library --------------------------------------------------------


@dataclass(frozen=True)
class ArchiveColumn:
    """A column of the archive library: stable internal name, Norwegian display name, type."""

    name: str
    display_name: str
    kind: Literal["text", "note", "dateTime", "choice", "boolean"]


ARCHIVE_COLUMNS: tuple[ArchiveColumn, ...] = (
    ArchiveColumn("InnkjopSaksreferanse", "Saksreferanse", "text"),
    ArchiveColumn("InnkjopSakstittel", "Sakstittel", "text"),
    ArchiveColumn("InnkjopJournalpostNokkel", "Journalpostnøkkel", "text"),
    ArchiveColumn("InnkjopTittel", "Tittel", "text"),
    ArchiveColumn("InnkjopOffentligTittel", "Offentlig tittel", "text"),
    ArchiveColumn("InnkjopDokumentdato", "Dokumentdato", "dateTime"),
    ArchiveColumn("InnkjopJournalposttype", "Journalposttype", "choice"),
    ArchiveColumn("InnkjopJournalstatus", "Journalstatus", "choice"),
    ArchiveColumn("InnkjopDokumenttype", "Dokumenttype", "choice"),
    ArchiveColumn("InnkjopKorrespondanseparter", "Korrespondanseparter", "note"),
    ArchiveColumn("InnkjopUnntattOffentlighet", "Unntatt offentlighet", "boolean"),
    ArchiveColumn("InnkjopTilgangskode", "Tilgangskode", "text"),
    ArchiveColumn("InnkjopSkjermingshjemmel", "Skjermingshjemmel", "text"),
    ArchiveColumn("InnkjopOppbevaringsetikett", "Oppbevaringsetikett", "text"),
    ArchiveColumn("InnkjopKilde", "Kilde", "text"),
    ArchiveColumn("InnkjopSjekksum", "Sjekksum (SHA-256)", "text"),
)

ColumnValue = str | bool | None


def archive_columns(case: ArchiveCase, post: JournalPost, config: ArchiveConfig) -> dict[str, ColumnValue]:
    """The archive library's column values for the uploaded main document (same checks as the sidecar).

    A post is exempt when the post or its main document is; the strongest ground stated
    is the post's own. Dates are ISO (what Graph takes for a dateTime column). The library is
    restricted to the archive and Innkjøpsseksjonen, so it carries the real titles too.
    """
    _check_case(case)
    _check_post(post)
    main = next(d for d in post.documents if d.role == "H")
    exempt = post.exemption or main.exemption
    parties = "; ".join(
        f"{_text(p.name, 'navn')} ({code_list('korrespondanseparttype')[p.party_type]})" for p in post.parties
    )
    values: dict[str, ColumnValue] = {
        "InnkjopSaksreferanse": case.reference,
        "InnkjopSakstittel": _text(case.title, "sak.tittel"),
        "InnkjopJournalpostNokkel": post.key,
        "InnkjopTittel": _text(post.title, "journalpost.tittel"),
        "InnkjopOffentligTittel": _text(post.public_title or post.title, "journalpost.offentligTittel"),
        "InnkjopDokumentdato": post.document_date.isoformat(),
        "InnkjopJournalposttype": post.post_type,
        "InnkjopJournalstatus": post.status,
        "InnkjopDokumenttype": main.document_type,
        "InnkjopKorrespondanseparter": parties or None,
        "InnkjopUnntattOffentlighet": exempt is not None,
        "InnkjopTilgangskode": exempt.tilgangsrestriksjon if exempt else None,
        "InnkjopSkjermingshjemmel": exempt.skjermingshjemmel if exempt else None,
        "InnkjopOppbevaringsetikett": config.retention_label,
        "InnkjopKilde": post.source_record,
        "InnkjopSjekksum": main.file.sha256,
    }
    return values
