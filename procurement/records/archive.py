"""The archive workflow's pure part: which changes archive which document, and each document's
Noark 5 metadata (case, journal post, exemption) and file.

One case (saksmappe) per competition, keyed by its `K-` reference; a record without a
competition (a rejected needs report, a deviation report) is its own case under its own
reference. One journal post per document. The product's own documents are rendered to PDF/A
(`pdf.py`); files archived by hand from a competition room ("arkiver") keep their format.

Triggers are audit entries (`archive_hook`, registered on `Store.audit_hooks` by the composition
root), so no workflow knows about the archive:

| audit action | document | key |
|---|---|---|
| `needs_report.approved` / `.rejected` | the needs report with its decision | `<BM>/behovsmelding` |
| `competition.strategy_drafted` | the draft konkurransestrategi | `<K>/konkurransestrategi/<document>` |
| `deviation.notice_created` | the notice to the supplier | `<AV>/varsel/<notice>` |
| `deviation.closed` | the closed deviation report with its history | `<AV>/avviksmelding` |
| `competition.evaluation_summarised` | the evaluation summary | `<K>/evaluering` |

Each key names one document, so its outbox row (`ArchiveDocument`) is stable and the archive's
table (`archived_documents`) is looked up by it before anything is uploaded: one archive copy
per document whatever the retries. Each of those actions happens once per record (decisions,
closing and the summary are compare-and-set; a notice has its own number; a redrafted strategy
has its own document name).
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import PurePosixPath
from typing import ClassVar

from procurement.records import archive_metadata as am
from procurement.records.archive_metadata import (
    ArchiveCase,
    ArchiveConfig,
    ArchiveFile,
    CorrespondenceParty,
    Exemption,
    JournalPost,
    Person,
    exemption,
)
from procurement.records.pdf import RecordDocument, render_pdf
from procurement.shared.calendar import OSLO
from procurement.store.effects import Effect
from procurement.store.unit_of_work import Audited

# What kinds of document the archive takes (archived_documents.kind).
NEEDS_REPORT = "needs_report"
STRATEGY = "strategy"
SUPPLIER_NOTICE = "supplier_notice"
DEVIATION_REPORT = "deviation_report"
EVALUATION = "evaluation"
ROOM_FILE = "room_file"
KINDS = (NEEDS_REPORT, STRATEGY, SUPPLIER_NOTICE, DEVIATION_REPORT, EVALUATION, ROOM_FILE)

SIDECAR_SUFFIX = ".arkivmelding.xml"
KEY_LIMIT = 300


# ---- effects ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveDocument(Effect):
    """Archive one document (`document` is one of `KINDS`) of record `ref` as `doc_key`."""

    kind: ClassVar[str] = "archive.document"
    document: str
    ref: str
    doc_key: str

    @property
    def idempotency_key(self) -> str:
        return f"{self.kind}:{self.doc_key}"


@dataclass(frozen=True)
class OfferRoomFiles(Effect):
    """List a competition room's files and post the picker of an "arkiver" request."""

    kind: ClassVar[str] = "archive.offer"
    request_id: int


@dataclass(frozen=True)
class RefreshArchiveReceipt(Effect):
    """Update an "arkiver" request's card in place after `doc_key` was archived or failed."""

    kind: ClassVar[str] = "archive.receipt"
    request_id: int
    doc_key: str


EFFECTS: tuple[type[Effect], ...] = (ArchiveDocument, OfferRoomFiles, RefreshArchiveReceipt)


def _key(*parts: str) -> str:
    return "/".join(p.strip().replace("/", "-") for p in parts)[:KEY_LIMIT]


def archive_hook(entry: Audited) -> list[Effect]:
    """The archive copies an audit entry calls for (registered on `Store.audit_hooks`)."""
    ref = entry.entity_id
    if entry.entity == "needs_report" and entry.action in ("needs_report.approved", "needs_report.rejected"):
        return [ArchiveDocument(NEEDS_REPORT, ref, _key(ref, "behovsmelding"))]
    if entry.entity == "competition" and entry.action == "competition.strategy_drafted":
        document = str(entry.details.get("document") or "konkurransestrategi")
        return [ArchiveDocument(STRATEGY, ref, _key(ref, "konkurransestrategi", document))]
    if entry.entity == "competition" and entry.action == "competition.evaluation_summarised":
        return [ArchiveDocument(EVALUATION, ref, _key(ref, "evaluering"))]
    if entry.entity == "deviation" and entry.action == "deviation.notice_created":
        notice = str(entry.details.get("notice") or "1")
        return [ArchiveDocument(SUPPLIER_NOTICE, ref, _key(ref, "varsel", notice))]
    if entry.entity == "deviation" and entry.action == "deviation.closed":
        return [ArchiveDocument(DEVIATION_REPORT, ref, _key(ref, "avviksmelding"))]
    return []


def room_file_key(case_ref: str, item_id: str) -> str:
    """The archive key of a room document picked by "arkiver": one archive copy per file."""
    return _key(case_ref, "rom", item_id)


# ---- what one archive copy consists of ----------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """One document ready for the archive: its case, its journal post, the file and its name."""

    case: ArchiveCase
    post: JournalPost
    filename: str
    content: bytes

    @property
    def folder(self) -> str:
        return self.case.reference

    @property
    def sidecar_name(self) -> str:
        return sidecar_name(self.filename)

    def sidecar(self, config: ArchiveConfig) -> bytes:
        return am.arkivmelding_xml(self.case, self.post, config)

    def columns(self, config: ArchiveConfig) -> dict[str, am.ColumnValue]:
        return am.archive_columns(self.case, self.post, config)


def sidecar_name(filename: str) -> str:
    """``Behovsmelding BM-2026-0001.pdf`` → ``Behovsmelding BM-2026-0001.arkivmelding.xml``."""
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    return f"{stem}{SIDECAR_SUFFIX}"


def oslo_date(at: datetime) -> date:
    return at.astimezone(OSLO).date()


@dataclass(frozen=True)
class CaseInfo:
    """The case a document belongs in (the competition's, or the record's own)."""

    reference: str
    title: str
    opened_at: datetime
    responsible: str | None = None


def case_of(info: CaseInfo, *, exempt: Exemption | None = None) -> ArchiveCase:
    # The case title is public (what is being procured); an exempt case still says what it is.
    return ArchiveCase(
        reference=info.reference,
        title=info.title,
        public_title=info.title if exempt is not None else None,
        case_date=oslo_date(info.opened_at),
        responsible=Person(info.responsible) if info.responsible else None,
        exemption=exempt,
    )


def pdf_entry(
    document: RecordDocument,
    *,
    case: CaseInfo,
    key: str,
    filename: str,
    post_type: am.JournalPostType,
    document_type: str,
    public_title: str | None,
    ground: str | None,
    parties: tuple[CorrespondenceParty, ...] = (),
    created_by: str | None = None,
    source_record: str | None = None,
) -> Prepared:
    """A product document rendered to PDF/A-2u and described as one journal post."""
    content = render_pdf(document)
    exempt = exemption(ground) if ground else None
    file = ArchiveFile.for_bytes(filename, content)
    post = JournalPost(
        key=key,
        title=f"{document.kind}: {document.title}",
        public_title=public_title,
        document_date=oslo_date(document.created_at),
        post_type=post_type,
        documents=(am.ArchiveDocument(document.title, file, document_type, exemption=exempt),),
        parties=parties,
        exemption=exempt,
        created_at=document.created_at,
        created_by=Person(created_by) if created_by else None,
        source_record=source_record,
    )
    return Prepared(case_of(case), post, filename, content)


# PRONOM ids of the formats people keep in a room; anything else is described by its mime type.
_FORMATS = {
    ".pdf": ("fmt/276", "PDF 1.7"),
    ".docx": ("fmt/412", "Microsoft Word for Windows 2007 onwards"),
    ".xlsx": ("fmt/214", "Microsoft Excel for Windows 2007 onwards"),
    ".pptx": ("fmt/215", "Microsoft PowerPoint for Windows 2007 onwards"),
    ".txt": ("x-fmt/111", "Plain Text File"),
    ".png": ("fmt/12", "Portable Network Graphics 1.1"),
    ".jpg": ("fmt/43", "JPEG File Interchange Format 1.01"),
    ".jpeg": ("fmt/43", "JPEG File Interchange Format 1.01"),
}


def room_file_entry(
    *,
    case: CaseInfo,
    key: str,
    name: str,
    folder: str,
    content: bytes,
    archived_by: str,
    archived_at: datetime,
    modified: datetime | None,
    source_record: str,
) -> Prepared:
    """A document from the competition room, archived as it is (production format, variant P):
    an internal document (X, exempt under offl. § 14 until the archivist decides otherwise),
    titled by its folder and name."""
    suffix = PurePosixPath(name).suffix.lower()
    format_code, description = _FORMATS.get(suffix, ("UNKNOWN", suffix.lstrip(".").upper() or "Ukjent format"))
    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    filename = f"{folder} - {name}" if folder else name
    stem = PurePosixPath(name).stem or name
    title = f"{folder}: {stem}" if folder else stem
    exempt = exemption("internal")
    file = ArchiveFile.for_bytes(
        filename, content, variant="P", format_code=format_code, format_description=description, mime_type=mime
    )
    post = JournalPost(
        key=key,
        title=title,
        public_title=title,
        document_date=oslo_date(modified or archived_at),
        post_type="X",
        documents=(am.ArchiveDocument(stem, file, "DOKUMENT", exemption=exempt),),
        exemption=exempt,
        created_at=archived_at,
        created_by=Person(archived_by) if archived_by else None,
        source_record=source_record,
    )
    return Prepared(case_of(case), post, filename, content)
