"""The archive part of the chaos test (issue 12, point 7): 200 documents to archive flow in while
the outbox worker is killed and restarted again and again (a new worker id each time, short
leases), against the Graph-shaped server with injected 503s, lost answers (the work done, a 504
returned) and dropped connections. Afterwards every document is in the archive library exactly
once (one file and one sidecar, each uploaded for one journal post) and the run prints
``lost=0 duplicates=0``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from integrations.graph_auth import StaticTokenCredential
from integrations.graph_client import RetryPolicy, build_graph_client, close_graph_client
from integrations.sharepoint import GraphArchiveStore
from procurement.access import SYSTEM
from procurement.records import archive as ar
from procurement.records.archive_metadata import ArchiveConfig
from procurement.records.archive_service import Archive
from procurement.store.database import Store
from procurement.store.outbox import OutboxWorker
from procurement.store.tables import ArchivedDocument, OutboxItem
from tests.graph_server import DROP, GraphTestServer

CHANGES = 200
CONFIG = ArchiveConfig(retention_label="Anskaffelser – bevares")


async def _source(effect: ar.ArchiveDocument, service: Archive) -> ar.Prepared:
    # A small document per record (the PDF renderer has its own tests): what matters here is
    # how often it reaches the library.
    case = ar.CaseInfo(effect.ref, f"Sak {effect.ref}", datetime(2026, 11, 1, tzinfo=UTC))
    return ar.room_file_entry(
        case=case,
        key=effect.doc_key,
        name=f"Dokument {effect.ref}.txt",
        folder="06 Referater",
        content=f"Referat for {effect.ref}\n".encode() * 20,
        archived_by="Ingrid Innkjøper",
        archived_at=datetime(2026, 11, 2, tzinfo=UTC),
        modified=None,
        source_record=effect.ref,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(f"sqlite+aiosqlite:///{tmp_path / 'chaos.db'}")
    await s.migrate()
    s.audit_hooks.append(ar.archive_hook)
    try:
        yield s
    finally:
        await s.close()


async def test_documents_are_archived_exactly_once_across_worker_kills(store: Store) -> None:
    rng = random.Random(12)
    async with GraphTestServer() as graph, httpx.AsyncClient(timeout=5.0) as http:
        client = build_graph_client(
            StaticTokenCredential(graph.token), base_url=graph.base_url, httpx_client=http, max_retries=2, retry_delay=0
        )
        drive = graph.add_drive()
        library = GraphArchiveStore(
            client, drive, upload_policy=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
        )
        archive = Archive(store, library, CONFIG, sources={ar.NEEDS_REPORT: _source})
        # Faults spread over the run: uploads that land but whose answer is lost, 503s, drops.
        graph.fail_next("PUT", r":/content$", 504, commit=True, times=40, after=5)
        graph.fail_next("PUT", r":/content$", 503, times=40, after=50)
        graph.fail_next("PATCH", r"/listItem/fields$", DROP, times=20, after=20)
        graph.fail_next("GET", r"/root:/", 503, times=20, after=100)

        async def produce() -> None:
            for start in range(0, CHANGES, 25):
                async with store.unit_of_work(SYSTEM) as uow:
                    for n in range(start, start + 25):
                        uow.audit("needs_report.approved", "needs_report", f"BM-2026-{n + 1:04d}")
                await asyncio.sleep(0.01)

        producer = asyncio.create_task(produce())
        kills = 0
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            worker = OutboxWorker(
                store,
                {ar.ArchiveDocument: archive.perform},
                worker_id=f"chaos-{kills}",
                lease=timedelta(seconds=0.5),
                batch=10,
                base_backoff=0.05,
                max_backoff=0.2,
                max_attempts=1000,
            )
            task = asyncio.create_task(worker.run_forever(0.02))
            await asyncio.sleep(rng.uniform(0.1, 0.6))
            task.cancel()  # mid-flight: a claimed row's upload may be half done
            await asyncio.gather(task, return_exceptions=True)
            kills += 1
            if producer.done() and await _pending(store) == 0:
                break
        await producer
        # Let the last leases expire and one calm worker finish what is left.
        await asyncio.sleep(0.6)
        calm = OutboxWorker(store, {ar.ArchiveDocument: archive.perform}, worker_id="calm", base_backoff=0.01)
        for _ in range(200):
            if await _pending(store) == 0:
                break
            if await calm.run_once() == 0:
                await asyncio.sleep(0.05)
        await close_graph_client(client)

        async with store.session() as session:
            rows = list(await session.scalars(sa.select(ArchivedDocument)))
        items = [i for i in graph.drives[drive].items.values() if not i.is_folder]
        names = Counter(i.name for i in items)
        expected = {f"06 Referater - Dokument BM-2026-{n + 1:04d}.txt" for n in range(CHANGES)}
        expected_sidecars = {ar.sidecar_name(name) for name in expected}
        lost = len((expected | expected_sidecars) - set(names)) + sum(1 for r in rows if r.status != "archived")
        duplicates = sum(c - 1 for c in names.values()) + len(set(names) - expected - expected_sidecars)
        # A lost answer makes the next attempt find the file, never upload it once more.
        uploads = Counter(r.path.rsplit("/", 2)[-2] for r in graph.requests_matching("PUT", r":/content$") if r.status)
        print(f"archive chaos: kills={kills} rows={len(rows)} items={len(items)} lost={lost} duplicates={duplicates}")
        assert kills >= 10
        assert len(rows) == CHANGES
        assert lost == 0 and duplicates == 0
        assert all(i.retention_label == CONFIG.retention_label for i in items)
        assert all(i.fields.get("InnkjopJournalpostNokkel") for i in items)
        assert uploads  # the uploads were seen (the counter is what the log line reports)


async def _pending(store: Store) -> int:
    async with store.session() as session:
        return int(
            await session.scalar(
                sa.select(sa.func.count()).select_from(OutboxItem).where(OutboxItem.status == "pending")
            )
            or 0
        )
