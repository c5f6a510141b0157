"""The archive workflow's use cases: archive one document (the outbox's `ArchiveDocument`), and
"arkiver" in a competition room (offer the room's files, archive the chosen ones, the receipt).

Archiving one document, whatever the retries, makes one archive copy:

1. the document's row in `archived_documents` (by its key) is looked up first; archived → done;
2. the document is prepared: the record loaded, rendered to PDF/A (deterministic for the same
   record, so a retry has the same bytes and checksum), its case and journal post built and the
   sidecar validated against the Fiks Arkiv schema;
3. the archive library is asked whether the file is there already (a retry after a lost answer)
   before it is uploaded; the columns and retention label are set (idempotent), then the
   ``arkivmelding`` sidecar the same way;
4. the row is marked archived (audited `archive.document_archived`) in one unit of work, with the
   receipt refresh of an "arkiver" request when it came from one.

A failure the same request would repeat (metadata the archive cannot take, a file gone from the
room, a refusal from SharePoint) marks the row failed with a reason code the receipt words in
Norwegian (audited `archive.document_failed`), and is raised again for the outbox to record.
Passing failures are raised as they are: the outbox tries again later.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from procurement.access import SYSTEM, Actor, NotFound
from procurement.errors import PermanentError
from procurement.needs.record import NeedsReport
from procurement.ports import ArchiveStore, ListedFile, RoomFolder, RoomProvisioner
from procurement.records import archive as ar
from procurement.records.archive_access import POLICY
from procurement.records.archive_metadata import ArchiveConfig, ArchiveMetadataError, CorrespondenceParty, exemption
from procurement.records.pdf import (
    Decision,
    Fact,
    HistoryEntry,
    RecordDocument,
    RecordPdfError,
    evaluation_summary_document,
    needs_report_document,
    strategy_document,
)
from procurement.shared.dates import format_date, parse_date
from procurement.shared.money import format_nok
from procurement.store.database import Store
from procurement.store.tables import ArchivedDocument, ArchiveRequest, AuditEntry, Competition, utcnow
from procurement.store.tables import NeedsReport as NeedsReportRow

log = logging.getLogger(__name__)

MAX_ARCHIVE_BYTES = 250 * 1024 * 1024  # what Graph takes in one upload session file
PICKER_LIMIT = 100  # choices on one card (Teams' card size limit)

# Why a document could not be archived (catalog `ar_reason_<code>`).
REASONS = ("gone", "too_large", "empty", "metadata", "render", "refused", "permission")
# Why an "arkiver" request could not offer files (catalog `ar_problem_<code>`).
PROBLEMS = ("no_room", "no_files")

_ACTIONS_NB = {
    "needs_report.submitted": "Sendt inn",
    "needs_report.edited": "Endret av melder",
    "needs_report.info_requested": "Spørsmål fra Innkjøpsseksjonen",
    "needs_report.answered": "Svar fra melder",
    "needs_report.approved": "Godkjent",
    "needs_report.rejected": "Avvist",
    "needs_report.withdrawn": "Trukket",
    "competition.created": "Konkurranse opprettet",
}
_CATEGORY_NB = {"goods": "Varer", "services": "Tjenester", "works": "Bygg og anlegg"}
_AGREEMENT_NB = {"framework": "Rammeavtale", "single": "Enkeltkontrakt"}


class RoomInfo(Protocol):
    """What the archive needs of a competition room (`Competitions.room`)."""

    @property
    def ref(self) -> str: ...
    @property
    def channel_id(self) -> str: ...
    @property
    def drive_id(self) -> str: ...
    @property
    def item_id(self) -> str: ...
    @property
    def member_aad_ids(self) -> frozenset[str]: ...


class Rooms(Protocol):
    async def room(self, ref: str) -> RoomInfo | None: ...


class Sources(Protocol):
    """Loads the document of a kind the archive takes from another workflow (strategy,
    evaluation, deviations): returns it prepared, or None when the record is gone."""

    async def __call__(self, effect: ar.ArchiveDocument, service: Archive) -> ar.Prepared | None: ...


@dataclass(frozen=True)
class OfferedFile:
    index: str
    name: str
    folder: str
    size: int
    modified: str
    url: str


@dataclass(frozen=True)
class ReceiptLine:
    doc_key: str
    name: str
    status: str  # pending | archived | failed
    url: str = ""
    journal_key: str = ""
    reason: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class RequestView:
    id: int
    case_ref: str
    status: str  # listing | offered | submitted
    lang: str
    conversation_id: str
    requested_by_aad_id: str
    problem: str | None = None
    activity_id: str | None = None
    offered: tuple[OfferedFile, ...] = ()
    lines: tuple[ReceiptLine, ...] = ()

    @property
    def done(self) -> bool:
        return bool(self.lines) and all(line.status != "pending" for line in self.lines)


@dataclass(frozen=True)
class StartOutcome:
    request: RequestView | None  # None: no competition named and none for this channel
    case_ref: str = ""


@dataclass(frozen=True)
class SubmitOutcome:
    request: RequestView
    error: str | None = None  # catalog key of the message at the choice set
    repeated: bool = False


class ArchiveFailed(PermanentError):
    """A document the archive cannot take as it is; `reason` is one of `REASONS`."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"archive: {code} {detail}".strip())
        self.failure = code
        self.detail = detail


def channel_of(conversation_id: str) -> str:
    """A channel conversation id without its thread (``19:…@thread.tacv2;messageid=…``)."""
    return conversation_id.split(";", 1)[0]


def _offered(raw: Sequence[Any]) -> tuple[OfferedFile, ...]:
    return tuple(
        OfferedFile(
            str(f.get("index")),
            str(f.get("name") or ""),
            str(f.get("folder") or ""),
            int(f.get("size") or 0),
            str(f.get("modified") or ""),
            str(f.get("url") or ""),
        )
        for f in raw
        if isinstance(f, dict)
    )


class Archive:
    def __init__(
        self,
        store: Store,
        archive: ArchiveStore,
        config: ArchiveConfig,
        *,
        needs: Any = None,
        competitions: Any = None,
        deviations: Any = None,
        rooms: Rooms | None = None,
        provisioner: RoomProvisioner | None = None,
        sources: dict[str, Sources] | None = None,
        max_bytes: int = MAX_ARCHIVE_BYTES,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.archive = archive
        self.config = config
        self.needs = needs  # NeedsReports (its `load`)
        self.rooms = rooms
        self.provisioner = provisioner
        self.sources: dict[str, Sources] = {
            ar.NEEDS_REPORT: _needs_report_source,
            ar.STRATEGY: _strategy_source,
            ar.EVALUATION: _evaluation_source,
            ar.SUPPLIER_NOTICE: _supplier_notice_source,
            ar.DEVIATION_REPORT: _deviation_report_source,
            **(sources or {}),
        }
        self.competitions: Any = competitions  # Competitions (its `summary`), for the evaluation
        self.deviations: Any = deviations  # DeviationReports (its `load`), for notices and closed reports
        self.max_bytes = max_bytes
        self.clock = clock

    # -- archiving one document (the outbox) -----------------------------------------------------

    async def row(self, doc_key: str) -> ArchivedDocument | None:
        async with self.store.session() as session:
            return await session.scalar(sa.select(ArchivedDocument).where(ArchivedDocument.doc_key == doc_key))

    async def _ensure_row(self, effect: ar.ArchiveDocument) -> ArchivedDocument:
        found = await self.row(effect.doc_key)
        if found is not None:
            return found
        try:
            async with self.store.unit_of_work(SYSTEM) as uow:
                uow.session.add(
                    ArchivedDocument(
                        doc_key=effect.doc_key,
                        kind=effect.document,
                        record_ref=effect.ref[:64],
                        case_ref=effect.ref[:64],
                        status="pending",
                        source={},
                    )
                )
        except IntegrityError:
            pass  # another worker made it first (a lease taken over): theirs is the same row
        found = await self.row(effect.doc_key)
        assert found is not None
        return found

    async def perform(self, effect: ar.ArchiveDocument) -> None:
        row = await self._ensure_row(effect)
        if row.status == "archived":
            return  # archived already: a retry never makes a second copy
        try:
            prepared = await self._prepare(effect, row)
            if prepared is None:
                raise ArchiveFailed("gone")
            # Validating the sidecar against the schema is CPU work: off the event loop.
            sidecar, columns = await asyncio.to_thread(
                lambda: (prepared.sidecar(self.config), prepared.columns(self.config))
            )
        except ArchiveMetadataError as err:
            await self._failed(row, "metadata", err.message)
            raise ArchiveFailed("metadata", err.message) from err
        except RecordPdfError as err:
            await self._failed(row, "render", "")
            raise ArchiveFailed("render") from err
        except ArchiveFailed as err:
            await self._failed(row, err.failure, err.detail)
            raise
        label = self.config.retention_label
        try:
            file = await self._put_once(prepared.folder, prepared.filename, prepared.content)
            await self.archive.describe(file, columns, label)
            side = await self._put_once(prepared.folder, prepared.sidecar_name, sidecar)
            await self.archive.describe(
                side,
                {
                    "InnkjopSaksreferanse": prepared.case.reference,
                    "InnkjopJournalpostNokkel": prepared.post.key,
                    "InnkjopOppbevaringsetikett": label,
                },
                label,
            )
        except ArchiveFailed as err:
            await self._failed(row, err.failure, err.detail)
            raise
        except PermanentError as err:
            code = "permission" if err.why == "permission_missing" or err.status == 403 else "refused"
            await self._failed(row, code, "")
            raise
        await self._archived(row, prepared, file.url or file.item_id, side.url or side.item_id)

    async def _put_once(self, folder: str, filename: str, content: bytes) -> Any:
        """The file in the archive library: found when it is there with these bytes' size, else uploaded."""
        existing = await self.archive.find(folder, filename)
        if existing is not None and existing.size == len(content):
            return existing
        return await self.archive.put(folder, filename, content)

    async def _prepare(self, effect: ar.ArchiveDocument, row: ArchivedDocument) -> ar.Prepared | None:
        if effect.document == ar.ROOM_FILE:
            return await self._room_file(row)
        source = self.sources.get(effect.document)
        if source is None:
            raise ArchiveFailed("gone", f"no source for {effect.document}")
        return await source(effect, self)

    async def _archived(self, row: ArchivedDocument, prepared: ar.Prepared, url: str, sidecar_url: str) -> None:
        async with self.store.unit_of_work(SYSTEM) as uow:
            await uow.session.execute(
                sa.update(ArchivedDocument)
                .where(ArchivedDocument.id == row.id)
                .values(
                    status="archived",
                    case_ref=prepared.case.reference[:64],
                    title=prepared.post.title[:500],
                    filename=prepared.filename[:255],
                    journal_key=prepared.post.key[:300],
                    sha256=prepared.post.documents[0].file.sha256,
                    size=len(prepared.content),
                    url=url[:1000],
                    sidecar_url=sidecar_url[:1000],
                    reason=None,
                    detail=None,
                    archived_at=self.clock(),
                )
            )
            uow.audit(
                "archive.document_archived",
                "archived_document",
                row.doc_key[:64],
                {"doc_key": row.doc_key, "case": prepared.case.reference, "journal_post": prepared.post.key},
            )
            if row.request_id is not None:
                uow.emit(ar.RefreshArchiveReceipt(row.request_id, row.doc_key))

    async def _failed(self, row: ArchivedDocument, code: str, detail: str) -> None:
        async with self.store.unit_of_work(SYSTEM) as uow:
            changed = await uow.session.execute(
                sa.update(ArchivedDocument)
                .where(ArchivedDocument.id == row.id, ArchivedDocument.status != "archived")
                .values(status="failed", reason=code[:32], detail=(detail or None) and detail[:500])
            )
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                return
            uow.audit(
                "archive.document_failed",
                "archived_document",
                row.doc_key[:64],
                {"doc_key": row.doc_key, "reason": code},
            )
            if row.request_id is not None:
                uow.emit(ar.RefreshArchiveReceipt(row.request_id, row.doc_key))

    # -- what a document's case is --------------------------------------------------------------

    async def case_info(self, ref: str, fallback: ar.CaseInfo) -> ar.CaseInfo:
        """The competition's case for a K- reference (its title, when it was opened, who approved
        it); anything else keeps `fallback` (the record's own case)."""
        async with self.store.session() as session:
            comp = await session.scalar(sa.select(Competition).where(Competition.ref == ref))
            if comp is None:
                return fallback
            report = await session.get(NeedsReportRow, comp.needs_report_id)
        return ar.CaseInfo(ref, comp.title, comp.created_at, report.decided_by_name if report is not None else None)

    async def history(self, entity: str, ref: str, labels: dict[str, str]) -> tuple[HistoryEntry, ...]:
        async with self.store.session() as session:
            rows = await session.scalars(
                sa.select(AuditEntry)
                .where(AuditEntry.entity == entity, AuditEntry.entity_id == ref)
                .order_by(AuditEntry.id)
            )
            return tuple(
                HistoryEntry(r.at, r.actor_name or "Innkjøpsassistenten", labels.get(r.action, r.action)) for r in rows
            )

    async def audited_at(self, action: str, entity: str, ref: str) -> datetime | None:
        async with self.store.session() as session:
            return await session.scalar(
                sa.select(AuditEntry.at)
                .where(AuditEntry.action == action, AuditEntry.entity == entity, AuditEntry.entity_id == ref)
                .order_by(AuditEntry.id.desc())
                .limit(1)
            )

    # -- "arkiver": the room's files --------------------------------------------------------------

    async def _room_for(self, actor: Actor, ref: str) -> RoomInfo:
        """The room, for an innkjøper in it; `NotFound` for everyone else alike."""
        room = await self.rooms.room(ref) if self.rooms is not None else None
        if room is None or actor.aad_id.lower() not in {m.lower() for m in room.member_aad_ids}:
            raise NotFound(ref)
        return room

    async def ref_for_channel(self, conversation_id: str) -> str | None:
        """The competition whose room is the channel `conversation_id` is in, if any."""
        channel = channel_of(conversation_id)
        if not channel:
            return None
        from procurement.store.tables import CompetitionRoom  # the competition rooms' table (issue 10)

        async with self.store.session() as session:
            rows = await session.execute(
                sa.select(CompetitionRoom.ref, CompetitionRoom.results).where(
                    sa.cast(CompetitionRoom.results, sa.Text).contains(channel)
                )
            )
            for ref, results in rows:
                if str(((results or {}).get("channel") or {}).get("channel_id") or "") == channel:
                    return str(ref)
        return None

    async def start(self, actor: Actor, ref: str | None) -> StartOutcome:
        """`arkiver [K-…]`: a request whose picker the outbox posts (`OfferRoomFiles`)."""
        POLICY.check(actor, "list_files")
        case_ref = (ref or "").strip().upper() or await self.ref_for_channel(actor.conversation_id) or ""
        if not case_ref:
            return StartOutcome(None)
        await self._room_for(actor, case_ref)
        async with self.store.unit_of_work(actor) as uow:
            request = ArchiveRequest(
                case_ref=case_ref,
                requested_by_aad_id=actor.aad_id,
                requested_by_name=actor.name[:200],
                lang=actor.lang[:8],
                conversation_id=actor.conversation_id[:400],
                status="listing",
                offered=[],
            )
            uow.session.add(request)
            await uow.session.flush()
            uow.audit("archive.requested", "archive_request", str(request.id), {"case": case_ref})
            uow.emit(ar.OfferRoomFiles(request.id))
            view = _view(request, [])
        return StartOutcome(view, case_ref)

    async def request(self, request_id: int) -> RequestView | None:
        async with self.store.session() as session:
            row = await session.get(ArchiveRequest, request_id)
            if row is None:
                return None
            docs = list(
                await session.scalars(
                    sa.select(ArchivedDocument)
                    .where(ArchivedDocument.request_id == request_id)
                    .order_by(ArchivedDocument.id)
                    .execution_options(populate_existing=True)
                )
            )
            # Documents archived by an earlier request are shown with this one's choice too.
            chosen = list(row.offered or []) if row.status == "submitted" else []
            keys = [str(f.get("doc_key")) for f in chosen if isinstance(f, dict) and f.get("chosen")]
            others = [k for k in keys if k not in {d.doc_key for d in docs}]
            if others:
                docs += list(
                    await session.scalars(sa.select(ArchivedDocument).where(ArchivedDocument.doc_key.in_(others)))
                )
            return _view(row, docs)

    async def offer(self, request_id: int) -> RequestView | None:
        """The outbox: list the room's files once and keep them on the request (what a submit is
        checked against). A request listed already keeps its list (a retry posts the same card)."""
        view = await self.request(request_id)
        if view is None or view.status != "listing":
            return view
        room = await self.rooms.room(view.case_ref) if self.rooms is not None else None
        problem: str | None = None
        listed: tuple[ListedFile, ...] = ()
        if room is None or not room.drive_id or not room.item_id or self.provisioner is None:
            problem = "no_room"
        else:
            listed = await self.provisioner.list_files(RoomFolder(room.drive_id, room.item_id, "", ""))
            if not listed:
                problem = "no_files"
        offered = [
            {
                "index": str(i),
                "drive_id": f.drive_id,
                "item_id": f.item_id,
                "name": f.name,
                "folder": f.folder,
                "size": f.size,
                "modified": f.modified,
                "url": f.web_url,
                "doc_key": ar.room_file_key(view.case_ref, f.item_id),
            }
            for i, f in enumerate(sorted(listed, key=lambda f: (f.folder, f.name.casefold()))[:PICKER_LIMIT])
        ]
        async with self.store.unit_of_work(SYSTEM) as uow:
            await uow.session.execute(
                sa.update(ArchiveRequest)
                .where(ArchiveRequest.id == request_id, ArchiveRequest.status == "listing")
                .values(status="offered", offered=offered, problem=problem)
            )
        return await self.request(request_id)

    async def set_message(self, request_id: int, activity_id: str) -> None:
        async with self.store.unit_of_work(SYSTEM) as uow:
            await uow.session.execute(
                sa.update(ArchiveRequest).where(ArchiveRequest.id == request_id).values(activity_id=activity_id[:200])
            )

    async def _own_request(self, actor: Actor, request_id: object) -> ArchiveRequest:
        try:
            rid = int(str(request_id))
        except ValueError:
            raise NotFound(str(request_id)[:40]) from None
        async with self.store.session() as session:
            row = await session.get(ArchiveRequest, rid)
        if row is None or row.requested_by_aad_id != actor.aad_id:
            raise NotFound(str(rid))
        return row

    async def status(self, actor: Actor, request_id: object) -> RequestView:
        POLICY.check(actor, "status")
        row = await self._own_request(actor, request_id)
        await self._room_for(actor, row.case_ref)
        view = await self.request(row.id)
        assert view is not None
        return view

    async def submit(self, actor: Actor, request_id: object, chosen: Sequence[str]) -> SubmitOutcome:
        """`archive.submit`: archive the chosen files (checked against the offered list)."""
        POLICY.check(actor, "submit")
        row = await self._own_request(actor, request_id)
        await self._room_for(actor, row.case_ref)
        view = await self.request(row.id)
        assert view is not None
        if row.status == "submitted":
            return SubmitOutcome(view, repeated=True)
        picked = sorted({c.strip() for c in chosen if c.strip()})
        offered = {str(f.get("index")): f for f in (row.offered or []) if isinstance(f, dict)}
        if row.status != "offered" or not offered:
            return SubmitOutcome(view, error="ar_error_nothing_offered")
        if not picked:
            return SubmitOutcome(view, error="ar_error_choose")
        if any(p not in offered for p in picked):
            return SubmitOutcome(view, error="ar_error_unknown_choice")
        async with self.store.unit_of_work(actor) as uow:
            session = uow.session
            claimed = await session.execute(
                sa.update(ArchiveRequest)
                .where(ArchiveRequest.id == row.id, ArchiveRequest.status == "offered")
                .values(
                    status="submitted",
                    submitted_at=self.clock(),
                    offered=[{**f, "chosen": str(f.get("index")) in picked} for f in row.offered],
                )
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                again = await self.request(row.id)
                assert again is not None
                return SubmitOutcome(again, repeated=True)
            for index in picked:
                f = offered[index]
                key = str(f["doc_key"])
                existing = await session.scalar(sa.select(ArchivedDocument.id).where(ArchivedDocument.doc_key == key))
                if existing is not None:
                    continue  # archived (or being archived) already: shown with its state, never twice
                session.add(
                    ArchivedDocument(
                        doc_key=key,
                        kind=ar.ROOM_FILE,
                        record_ref=row.case_ref,
                        case_ref=row.case_ref,
                        status="pending",
                        title=str(f.get("name") or "")[:500],
                        filename=str(f.get("name") or "")[:255],
                        source={**f, "archived_by": actor.name},
                        request_id=row.id,
                    )
                )
                uow.emit(ar.ArchiveDocument(ar.ROOM_FILE, row.case_ref, key))
            uow.audit(
                "archive.submitted",
                "archive_request",
                str(row.id),
                {"case": row.case_ref, "files": [str(offered[i].get("name")) for i in picked]},
            )
        done = await self.request(row.id)
        assert done is not None
        return SubmitOutcome(done)

    async def _room_file(self, row: ArchivedDocument) -> ar.Prepared | None:
        source = dict(row.source or {})
        if self.provisioner is None or not source.get("item_id"):
            return None
        size = int(source.get("size") or 0)
        if size > self.max_bytes:
            raise ArchiveFailed("too_large")
        try:
            content = await self.provisioner.read_file(str(source.get("drive_id") or ""), str(source["item_id"]))
        except PermanentError as err:
            if err.status == 404:
                raise ArchiveFailed("gone") from err
            raise
        if not content:
            raise ArchiveFailed("empty")
        if len(content) > self.max_bytes:
            raise ArchiveFailed("too_large")
        case = await self.case_info(row.case_ref, ar.CaseInfo(row.case_ref, row.case_ref, row.created_at))
        modified = parse_time(str(source.get("modified") or ""))
        return ar.room_file_entry(
            case=case,
            key=row.doc_key,
            name=str(source.get("name") or "Dokument"),
            folder=str(source.get("folder") or ""),
            content=content,
            archived_by=str(source.get("archived_by") or ""),
            archived_at=row.created_at,
            modified=modified,
            source_record=row.case_ref,
        )


def parse_time(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _view(row: ArchiveRequest, docs: Sequence[ArchivedDocument]) -> RequestView:
    names = {str(f.get("doc_key")): str(f.get("name") or "") for f in (row.offered or []) if isinstance(f, dict)}
    lines = tuple(
        ReceiptLine(
            doc_key=d.doc_key,
            name=names.get(d.doc_key) or d.filename or d.title,
            status=d.status,
            url=d.url or "",
            journal_key=d.journal_key or d.doc_key,
            reason=d.reason,
            detail=d.detail,
        )
        for d in docs
    )
    return RequestView(
        id=row.id,
        case_ref=row.case_ref,
        status=row.status,
        lang=row.lang,
        conversation_id=row.conversation_id,
        requested_by_aad_id=row.requested_by_aad_id,
        problem=row.problem,
        activity_id=row.activity_id,
        offered=_offered(row.offered or []),
        lines=lines,
    )


# ---- the product's documents -------------------------------------------------------------------


def _needs_facts(report: NeedsReport) -> list[Fact]:
    d = report.data
    start = parse_date(str(d.get("start_date") or ""))
    facts = [
        Fact("Tjenesteområde", report.service_area),
        Fact("Meldt av", report.submitter_name),
        Fact("Meldt", format_date(report.created_at)),
        Fact("Anslått verdi", format_nok(report.estimated_value)),
        Fact("Grunnlag for verdien", str(d.get("value_basis") or "")),
        Fact("Kategori", _CATEGORY_NB.get(report.category, report.category)),
        Fact("Avtaletype", _AGREEMENT_NB.get(str(d.get("agreement_type") or ""), "")),
        Fact("Ønsket oppstart", format_date(start) if start else ""),
        Fact("Varighet", f"{d.get('duration_months') or '–'} måneder, opsjoner {d.get('option_months') or 0} måneder"),
        Fact("Budsjett forankret", "Ja" if d.get("budget_secured") else "Nei"),
    ]
    if d.get("cpv"):
        facts.append(Fact("CPV-kode", str(d.get("cpv"))))
    if d.get("faggruppe"):
        members = d.get("faggruppe")
        facts.append(Fact("Faggruppe", ", ".join(map(str, members)) if isinstance(members, list) else str(members)))
    return facts


async def _needs_report_source(effect: ar.ArchiveDocument, service: Archive) -> ar.Prepared | None:
    report: NeedsReport | None = await service.needs.load(effect.ref) if service.needs is not None else None
    if report is None or report.status not in ("approved", "rejected") or report.decided_at is None:
        return None
    outcome = "Godkjent" if report.status == "approved" else "Avvist"
    decision = Decision(
        outcome=outcome,
        decided_by=report.decided_by_name or "Innkjøpsseksjonen",
        decided_at=report.decided_at,
        justification=report.decision_note,
        competition_reference=report.competition_ref,
    )
    history = await service.history("needs_report", report.ref, _ACTIONS_NB)
    document = needs_report_document(
        reference=report.ref,
        title=report.title,
        facts=_needs_facts(report),
        need=str(report.data.get("need") or ""),
        decision=decision,
        history=history,
    )
    own = ar.CaseInfo(report.ref, report.title, report.created_at, report.decided_by_name)
    case = await service.case_info(report.competition_ref, own) if report.competition_ref else own
    # The estimated value before the competition is the municipality's negotiating position.
    ground = "negotiating_position"
    document = _restricted(document, ground)
    return await _rendered(
        document,
        case=case,
        key=effect.doc_key,
        filename=f"Behovsmelding {report.ref}.pdf",
        post_type="N",
        document_type="MELDING",
        public_title=f"Behovsmelding {report.ref}: {report.title}",
        ground=ground,
        parties=(
            CorrespondenceParty(report.submitter_name or "Melder", "IA"),
            CorrespondenceParty(service.config.administrative_unit, "IM"),
        ),
        created_by=report.decided_by_name,
        source_record=report.ref,
    )


async def _rendered(document: RecordDocument, **entry: Any) -> ar.Prepared:
    """`archive.pdf_entry` in a worker thread: rendering a PDF/A takes tens of milliseconds of CPU,
    which must not stall the turns served on the event loop."""
    return await asyncio.to_thread(functools.partial(ar.pdf_entry, document, **entry))


def _restricted(document: RecordDocument, ground: str) -> RecordDocument:
    found = exemption(ground)
    return replace(document, restriction=f"Unntatt offentlighet, {found.skjermingshjemmel}")


async def _competition_report(service: Archive, ref: str) -> tuple[Competition, NeedsReport] | None:
    async with service.store.session() as session:
        comp = await session.scalar(sa.select(Competition).where(Competition.ref == ref))
        row = await session.get(NeedsReportRow, comp.needs_report_id) if comp is not None else None
    if comp is None or row is None or service.needs is None:
        return None
    report = await service.needs.load(row.ref)
    return (comp, report) if report is not None else None


async def _strategy_source(effect: ar.ArchiveDocument, service: Archive) -> ar.Prepared | None:
    from procurement.competitions.strategy import StrategyError, build_strategy

    found = await _competition_report(service, effect.ref)
    if found is None:
        return None
    comp, report = found
    drafted = await service.audited_at("competition.strategy_drafted", "competition", effect.ref) or comp.created_at
    try:
        content = build_strategy(report, competition_ref=comp.ref, today=ar.oslo_date(drafted), lang="nb")
    except StrategyError as err:
        raise ArchiveFailed("metadata", str(err)) from err
    ground = "negotiating_position"
    document = _restricted(strategy_document(content, drafted_at=drafted), ground)
    case = await service.case_info(comp.ref, ar.CaseInfo(comp.ref, comp.title, comp.created_at))
    return await _rendered(
        document,
        case=case,
        key=effect.doc_key,
        filename=f"Konkurransestrategi {comp.ref} (utkast).pdf",
        post_type="N",
        document_type="DOKUMENT",
        public_title=f"Konkurransestrategi {comp.ref}: {comp.title}",
        ground=ground,
        created_by=case.responsible,
        source_record=report.ref,
    )


async def _evaluation_source(effect: ar.ArchiveDocument, service: Archive) -> ar.Prepared | None:
    if service.competitions is None:
        return None
    found = await service.competitions.summary(effect.ref)
    if found is None:
        return None
    view, summary = found
    evaluated_at = view.evaluation_summarised_at or await service.audited_at(
        "competition.evaluation_summarised", "competition", effect.ref
    )
    if evaluated_at is None:
        return None
    people = sorted({name for name, _ in (*summary.went_well, *summary.to_change)})
    need = ", ".join(f"{k}: {v}" for k, v in summary.need_described.items())
    feedback = ", ".join(f"{k}: {v}" for k, v in summary.supplier_feedback.items())
    document = evaluation_summary_document(
        competition_reference=view.ref,
        title=view.title,
        evaluated_at=evaluated_at,
        participants=people or [f"{summary.count} av {summary.invited} svarte"],
        what_worked=[f"{name}: {text}" for name, text in summary.went_well],
        what_to_change=[f"{name}: {text}" for name, text in summary.to_change],
        supplier_feedback=[
            f"Svar: {summary.count} av {summary.invited}",
            f"Behovet godt beskrevet (ja/delvis/nei): {need}",
            f"Tilbakemelding gitt til leverandørene (ja/nei): {feedback}",
        ],
    )
    ground = "internal"
    document = _restricted(document, ground)
    case = await service.case_info(view.ref, ar.CaseInfo(view.ref, view.title, evaluated_at))
    return await _rendered(
        document,
        case=case,
        key=effect.doc_key,
        filename=f"Evaluering {view.ref}.pdf",
        post_type="X",
        document_type="RAPPORT",
        public_title=f"Evaluering av anskaffelse {view.ref}",
        ground=ground,
        source_record=view.ref,
    )


# ---- deviations (issue 11): the supplier notice and the closed report --------------------------

_DEVIATION_STATUS_NB = {
    "reported": "Meldt",
    "received": "Mottatt",
    "in_progress": "Under behandling",
    "sanction_assessed": "Sanksjon vurdert",
    "closed": "Lukket",
}
_SEVERITY_NB = {"low": "Lav", "medium": "Middels", "high": "Høy", "critical": "Kritisk"}


async def _deviation(service: Archive, ref: str) -> Any:
    return await service.deviations.load(ref) if service.deviations is not None else None


async def _deviation_case(service: Archive, report: Any) -> ar.CaseInfo:
    title = f"Avvik {report.ref} – {report.supplier_name}"
    return ar.CaseInfo(report.ref, title, report.created_at)


async def _supplier_notice_source(effect: ar.ArchiveDocument, service: Archive) -> ar.Prepared | None:
    from procurement.deviations.notice import notice_document, notice_file_name

    report = await _deviation(service, effect.ref)
    if report is None or not report.notice_id or report.remedy_deadline is None:
        return None
    async with service.store.session() as session:
        audited = (
            await session.execute(
                sa.select(AuditEntry.at, AuditEntry.actor_name)
                .where(
                    AuditEntry.action == "deviation.notice_created",
                    AuditEntry.entity == "deviation",
                    AuditEntry.entity_id == report.ref,
                )
                .order_by(AuditEntry.id)
                .limit(1)
            )
        ).first()
    sent_at = audited.at if audited is not None else report.updated_at or report.created_at
    sender = (audited.actor_name if audited is not None else "") or service.config.administrative_unit
    ground = "business_secret"
    document = _restricted(notice_document(report, sent_at=sent_at, sender=sender), ground)
    return await _rendered(
        document,
        case=await _deviation_case(service, report),
        key=effect.doc_key,
        filename=notice_file_name(report.ref),
        post_type="U",
        document_type="KORR",
        public_title=f"Varsel om avvik {report.notice_id}",
        ground=ground,
        parties=(CorrespondenceParty(report.supplier_name or "Leverandør", "EM"),),
        created_by=sender,
        source_record=report.ref,
    )


async def _deviation_report_source(effect: ar.ArchiveDocument, service: Archive) -> ar.Prepared | None:
    from procurement.deviations.notice import CATEGORY_NB
    from procurement.records.pdf import HistoryEntry as PdfHistory
    from procurement.records.pdf import deviation_report_document

    report = await _deviation(service, effect.ref)
    if report is None or report.status != "closed" or report.closed_at is None:
        return None
    contract = report.contract_ref or "Ikke oppgitt"
    if report.contract_ref and report.contract_title:
        contract = f"{report.contract_ref} {report.contract_title}"
    facts = [
        Fact("Leverandør", report.supplier_name),
        Fact("Avtale", contract),
        Fact("Kategori", CATEGORY_NB.get(report.category, report.category)),
        Fact("Alvorlighet", _SEVERITY_NB.get(report.severity, report.severity)),
        Fact("Dato for avviket", format_date(report.occurred_on)),
        Fact("Meldt", format_date(report.created_at)),
        Fact("Meldt av", report.reporter_name),
    ]
    if report.reporting_unit:
        facts.append(Fact("Enhet", report.reporting_unit))
    if report.location:
        facts.append(Fact("Sted", report.location))
    if report.breached_clause:
        facts.append(Fact("Avtalepunkt", report.breached_clause))
    if report.financial_impact is not None:
        facts.append(Fact("Økonomisk konsekvens", format_nok(report.financial_impact)))
    if report.notice_id:
        facts.append(Fact("Varsel til leverandør", report.notice_id))
    history = tuple(
        PdfHistory(
            h.at,
            h.actor_name or "Innkjøpsassistenten",
            f"{_DEVIATION_STATUS_NB.get(h.from_status, h.from_status)} → "
            f"{_DEVIATION_STATUS_NB.get(h.to_status, h.to_status)}",
            h.note or None,
        )
        for h in report.history
    )
    closed_by = report.history[-1].actor_name if report.history else ""
    ground = "business_secret"
    document = deviation_report_document(
        reference=report.ref,
        title=f"{CATEGORY_NB.get(report.category, report.category)} – {report.supplier_name}",
        facts=facts,
        description=report.description,
        closed_at=report.closed_at,
        closed_by=closed_by,
        closing_justification=report.closing_justification or "",
        history=history,
        restriction=f"Unntatt offentlighet, {exemption(ground).skjermingshjemmel}",
    )
    return await _rendered(
        document,
        case=await _deviation_case(service, report),
        key=effect.doc_key,
        filename=f"Avviksmelding {report.ref}.pdf",
        post_type="N",
        document_type="RAPPORT",
        public_title=f"Avviksmelding {report.ref}",
        ground=ground,
        created_by=closed_by or None,
        source_record=report.ref,
    )
