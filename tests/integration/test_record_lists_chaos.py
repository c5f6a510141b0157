"""Chaos: 500 register changes flow while the outbox worker is killed and restarted again and again
(its task cancelled mid-flight, a new worker with a new id, short leases), with throttling, 503s
and dropped connections injected on the way; afterwards every record has exactly one list item on
each site, holding its final values."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import timedelta

import httpx
import sqlalchemy as sa

from integrations.graph_auth import StaticTokenCredential
from integrations.graph_client import build_graph_client
from integrations.sharepoint_lists import GraphListMirror
from procurement.records.lists import SITES, RegisterLists, Site
from procurement.records.mirror import MirrorRecord, RecordMirror
from procurement.store.database import Store
from procurement.store.outbox import OutboxWorker
from procurement.store.tables import OutboxItem
from tests.graph_server import DROP, GraphTestServer
from tests.integration.test_record_lists import CONFIG, Sites, save_contract

RECORDS = 100
CHANGES = 500


async def _pending(store: Store) -> int:
    async with store.session() as session:
        return int(
            await session.scalar(
                sa.select(sa.func.count()).select_from(OutboxItem).where(OutboxItem.status == "pending")
            )
            or 0
        )


async def test_killed_workers_lose_nothing_and_duplicate_nothing(store: Store, db_url: str) -> None:
    rng = random.Random(12)
    async with GraphTestServer() as graph, httpx.AsyncClient(timeout=1.0) as http:
        client = build_graph_client(
            StaticTokenCredential(graph.token), base_url=graph.base_url, httpx_client=http, retry_delay=0
        )
        sites = Sites(graph)

        def new_mirror(on: Store) -> RecordMirror:
            # A restarted process: its own adapters and caches, the same database and lists.
            lists: dict[Site, RegisterLists] = {s: GraphListMirror(client, sites.ids[s]) for s in SITES}
            return RecordMirror(on, CONFIG, lists, lease=timedelta(seconds=1.5), busy_retry=0.05, settle=0.3)

        store.audit_hooks.append(new_mirror(store).audit_hook)
        final: dict[str, tuple[str, int]] = {}

        async def produce() -> None:
            for n in range(CHANGES):
                ref = f"KAV-{rng.randrange(RECORDS):03d}"
                final[ref] = (f"Avtale {ref} v{n}", 1_000 + n)
                await save_contract(store, ref, title=final[ref][0], value=final[ref][1])
                if n % 25 == 0:  # faults on the way: throttling, outages, lost answers
                    graph.fail_next("PATCH", r"/fields$", 429, {"Retry-After": "0.05"}, times=2)
                    graph.fail_next("POST", r"/items$", 503, commit=True, times=1)
                    graph.fail_next("PATCH", r"/fields$", 503, times=4)
                    graph.fail_next("*", r"/items", DROP, times=1, commit=n % 50 == 0)
                await asyncio.sleep(rng.uniform(0, 0.01))

        producer = asyncio.create_task(produce())
        kills = 0
        generation = 0
        sqlite = store.is_sqlite
        while not producer.done():
            generation += 1
            # On PostgreSQL each worker has its own engine, as a process has (several instances share
            # the outbox there). SQLite is one instance: the worker restarts inside it, one row at a
            # time, and is killed while it waits for Graph: a task cancelled inside a database call
            # would strand SQLite's one pooled connection, which a killed process cannot do.
            process = store if sqlite else Store(db_url)
            worker = OutboxWorker(
                process,
                new_mirror(process).handlers(),
                worker_id=f"chaos-{generation}",
                lease=timedelta(seconds=1.0),
                batch=1 if sqlite else 8,
                base_backoff=0.01,
                max_backoff=0.1,
            )
            task = asyncio.create_task(worker.run_forever(poll_seconds=0.02))
            await asyncio.sleep(rng.uniform(0.05, 0.4))
            if sqlite:
                for _ in range(200):
                    if graph.requests and graph.requests[-1].status == 0:  # a Graph call in flight
                        break
                    await asyncio.sleep(0.002)
            task.cancel()  # killed mid-flight: claims and leases left to run out
            await asyncio.gather(task, return_exceptions=True)
            if process is not store:
                await process.close()
            kills += 1
        await producer

        survivor = OutboxWorker(
            store, new_mirror(store).handlers(), worker_id="chaos-last", lease=timedelta(seconds=1.0), base_backoff=0.01
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 40
        while await _pending(store) and loop.time() < deadline:
            if not await survivor.run_once():
                await asyncio.sleep(0.05)

        async with store.session() as session:
            statuses = Counter(
                await session.scalars(sa.select(OutboxItem.status).where(OutboxItem.kind == MirrorRecord.kind))
            )
        lost = duplicates = 0
        for site in SITES:
            items = sites.by_ref(site, "Kontrakter")
            for ref, (title, value) in final.items():
                found = items.get(ref, [])
                duplicates += max(0, len(found) - 1)
                current = found[0] if found else {}
                right = current.get("Title") == title and (site == "open" or current.get("Kontraktsverdi") == value)
                lost += not right
            duplicates += sum(len(v) for r, v in items.items() if r not in final)
        print(
            f"lost={lost} duplicates={duplicates} (changes={CHANGES}, records={len(final)}, kills={kills}, "
            f"outbox={dict(statuses)}, graph requests={len(graph.requests)})"
        )
        assert lost == 0 and duplicates == 0
        assert statuses == Counter({"done": CHANGES})
        assert kills >= 5
