"""Archive benchmark (issue 12): documents archived per second through the outbox into the archive
library, against the Graph-shaped server throttling the app, next to the plain echo bot from the
same run.

    python -m benchmarks.archive_bench                        # 200 PDF/A documents, 100 drive calls/s
    python -m benchmarks.archive_bench --throttle 0           # no throttling: our own ceiling
    python -m benchmarks.archive_bench --kind file --size-kb 6144 --documents 20   # upload sessions

Two targets, one after the other:

1. **echo message** — `benchmarks/echo_bot.py` over HTTP with the fast Connector stub, closed
   loop, `--concurrency` users: the machine's baseline.
2. **archive uploads** — `tests/graph_server.py` in this process, refusing drive calls beyond
   `--throttle` per second with 429 + `Retry-After: --retry-after` (as SharePoint throttles an
   app). `--documents` audit entries (`needs_report.approved`, one `ArchiveDocument` outbox row
   each, through the product's audit hook) are committed at once and `--workers` outbox workers
   drain them with the real `Archive` service and msgraph-sdk `GraphArchiveStore`. Each document
   is made as in production: `--kind pdf` renders a needs-report-sized record to PDF/A-2u;
   `--kind file` archives a file of `--size-kb` as a room document ("arkiver"; above 4 MiB through
   an upload session in 320 KiB multiples). Each document is: look up, upload, columns, retention
   label, then the same for its arkivmelding sidecar (8 drive calls when nothing is there yet).
   Measured: from the first worker round to the last row done.

Checked afterwards: every outbox row done, every document exactly once in the library with its
sidecar (otherwise the run reports the errors). Everything shares this machine's cores: the
Graph server, the PDF rendering and the workers run in one process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    add_outbox_bench_args,
    machine,
    print_machine_and_echo,
)
from benchmarks.common import echo_baseline as common_echo_baseline  # noqa: E402
from integrations.graph_auth import StaticTokenCredential  # noqa: E402
from integrations.graph_client import build_graph_client, close_graph_client  # noqa: E402
from integrations.sharepoint import GraphArchiveStore  # noqa: E402
from procurement.access import SYSTEM  # noqa: E402
from procurement.records import archive as ar  # noqa: E402
from procurement.records.archive_metadata import ArchiveConfig  # noqa: E402
from procurement.records.archive_service import Archive, Sources  # noqa: E402
from procurement.records.pdf import Fact, RecordDocument, Section  # noqa: E402
from procurement.store.database import Store  # noqa: E402
from procurement.store.outbox import OutboxWorker  # noqa: E402
from procurement.store.tables import OutboxItem  # noqa: E402
from tests.graph_server import GraphTestServer  # noqa: E402

DRIVE_CALLS = r"^/v1\.0/drives/"
CONFIG = ArchiveConfig(retention_label="Anskaffelser – bevares")


async def echo_baseline(args: argparse.Namespace) -> dict[str, Any]:
    return await common_echo_baseline(
        concurrency=args.concurrency,
        max_requests=args.echo_requests,
        duration=args.echo_duration,
        prefix="archive-bench",
    )


def _source(kind: str, size_kb: int) -> Sources:
    case_at = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)

    async def source(effect: ar.ArchiveDocument, service: Archive) -> ar.Prepared:
        case = ar.CaseInfo(f"K-2026-{effect.ref[-4:]}", f"Konkurranse {effect.ref}", case_at, "Ingrid Innkjøper")
        if kind == "file":
            content = (f"{effect.ref} ".encode() * (size_kb * 1024 // 13 + 1))[: size_kb * 1024]
            return ar.room_file_entry(
                case=case,
                key=effect.doc_key,
                name=f"Referat {effect.ref}.txt",
                folder="06 Referater",
                content=content,
                archived_by="Ingrid Innkjøper",
                archived_at=case_at,
                modified=None,
                source_record=effect.ref,
            )
        document = RecordDocument(
            "Behovsmelding",
            f"Transport av hjelpemidler {effect.ref}",
            effect.ref,
            datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
            facts=tuple(Fact(f"Felt {i}", f"Verdi {i} for {effect.ref}") for i in range(10)),
            sections=(Section("Behovet", ("Hjemmetjenesten må få hjelpemidler levert innen to virkedager. " * 8,)),),
        )
        return await asyncio.to_thread(
            ar.pdf_entry,
            document,
            case=case,
            key=effect.doc_key,
            filename=f"Behovsmelding {effect.ref}.pdf",
            post_type="N",
            document_type="MELDING",
            public_title=f"Behovsmelding {effect.ref}",
            ground="negotiating_position",
            source_record=effect.ref,
        )

    return source


async def archive_uploads(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'innkjop.db'}"
    store = Store(url)
    await store.migrate()
    store.audit_hooks.append(ar.archive_hook)
    async with GraphTestServer() as graph, httpx.AsyncClient(timeout=60.0) as http:
        client = build_graph_client(StaticTokenCredential(graph.token), base_url=graph.base_url, httpx_client=http)
        drive = graph.add_drive()
        library = GraphArchiveStore(client, drive, root_folder="Innkjøp")
        archive = Archive(store, library, CONFIG, sources={ar.NEEDS_REPORT: _source(args.kind, args.size_kb)})
        try:
            refs = [f"BM-2026-{i + 1:04d}" for i in range(args.documents)]
            async with store.unit_of_work(SYSTEM) as uow:
                for ref in refs:
                    uow.audit("needs_report.approved", "needs_report", ref)
            rule = None
            if args.throttle > 0:
                rule = graph.throttle(
                    "*", DRIVE_CALLS, args.throttle, burst=max(1.0, args.throttle / 10), retry_after=args.retry_after
                )
            before = len(graph.requests)
            workers = [
                OutboxWorker(
                    store,
                    {ar.ArchiveDocument: archive.perform},
                    worker_id=f"bench-{i}",
                    batch=args.batch,
                    base_backoff=0.2,
                )
                for i in range(args.workers)
            ]

            async def pending() -> int:
                async with store.session() as session:
                    return int(
                        await session.scalar(
                            sa.select(sa.func.count()).select_from(OutboxItem).where(OutboxItem.status == "pending")
                        )
                        or 0
                    )

            async def work(worker: OutboxWorker) -> None:
                while time.perf_counter() < deadline:
                    if not await worker.run_once():
                        if not await pending():
                            return
                        await asyncio.sleep(0.05)

            started = time.perf_counter()
            deadline = started + args.time_limit
            await asyncio.gather(*(work(w) for w in workers))
            wall = time.perf_counter() - started
            requests = graph.requests[before:]
            async with store.session() as session:
                statuses = dict(
                    (
                        await session.execute(sa.select(OutboxItem.status, sa.func.count()).group_by(OutboxItem.status))
                    ).all()
                )
            names = Counter(i.name for i in graph.drives[drive].items.values() if not i.is_folder)
            problems = sum(abs(c - 1) for c in names.values()) + (2 * len(refs) - len(names))
            uploaded = sum(len(i.content) for i in graph.drives[drive].items.values() if not i.is_folder)
        finally:
            await close_graph_client(client)
            await store.close()
    documents = statuses.get("done", 0)
    return {
        "name": "archive uploads (throttled graph server)" if args.throttle > 0 else "archive uploads (no throttling)",
        "database": "sqlite" if url.startswith("sqlite") else "postgresql",
        "kind": args.kind,
        "documents": documents,
        "workers": args.workers,
        "batch": args.batch,
        "throttle_per_s": args.throttle,
        "wall_s": round(wall, 2),
        "documents_per_s": round(documents / wall, 1) if wall else 0.0,
        "drive_calls": sum(1 for r in requests if r.path.startswith("/v1.0/drives/")),
        "chunk_puts": sum(1 for r in requests if r.path.startswith("/upload/") and r.method == "PUT"),
        "mb_uploaded": round(uploaded / 1024 / 1024, 1),
        "http_429": sum(1 for r in requests if r.status == 429),
        "server_refused": rule.refused if rule is not None else 0,
        "outbox": statuses,
        "problems": problems,
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    echo = await echo_baseline(args)
    print(f"  echo: {echo['requests']} requests, {echo['throughput_rps']}/s", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="archive-bench-") as tmp:
        uploads = await archive_uploads(args, Path(tmp))
    return {"machine": machine(), "echo": echo, "archive": uploads}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--documents", type=int, default=200, help="documents to archive (default 200)")
    parser.add_argument("--kind", choices=("pdf", "file"), default="pdf", help="PDF/A records or room files")
    parser.add_argument("--size-kb", type=int, default=200, help="size of a --kind file document (default 200)")
    parser.add_argument("--workers", type=int, default=2, help="outbox workers (default 2)")
    parser.add_argument("--batch", type=int, default=10, help="rows per worker claim (default 10)")
    parser.add_argument(
        "--throttle", type=float, default=100.0, help="drive calls/s the server allows (0: none; default 100)"
    )
    add_outbox_bench_args(parser)
    args = parser.parse_args(argv)
    result = asyncio.run(bench(args))
    info, echo, up = result["machine"], result["echo"], result["archive"]
    print_machine_and_echo(info, echo, args.concurrency)
    print(
        f"{up['name']} [{up['database']}, {up['kind']}, {up['workers']} workers × batch {up['batch']}]: "
        f"{up['documents']} documents in {up['wall_s']} s = {up['documents_per_s']} documents/s, "
        f"{up['drive_calls']} drive calls + {up['chunk_puts']} chunk PUTs, {up['mb_uploaded']} MB "
        f"(limit {up['throttle_per_s']:g} calls/s); 429s {up['http_429']}; outbox {up['outbox']}; "
        f"missing or duplicate files {up['problems']}"
    )
    if echo["throughput_rps"]:
        print(f"documents/s vs echo req/s: {up['documents_per_s'] / echo['throughput_rps']:.3f}×")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return 0 if not up["problems"] and set(up["outbox"]) == {"done"} else 1


if __name__ == "__main__":
    raise SystemExit(main())
