"""SharePoint register benchmark (issue 12): list item updates per second through the outbox, against
the Graph-shaped server throttling the app, next to the plain echo bot from the same run.

    python -m benchmarks.records_bench                          # 200 contracts, 1000 changes, 50 writes/s
    python -m benchmarks.records_bench --throttle 0             # no throttling: our own ceiling
    python -m benchmarks.records_bench --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench

Two targets, one after the other:

1. **echo message** — `benchmarks/echo_bot.py` over HTTP with the fast Connector stub (as in
   `needs_submit_bench.py`), closed loop, `--concurrency` users: the machine's baseline.
2. **list updates** — `tests/graph_server.py` in this process, with two sites (open and
   restricted), refusing list item writes beyond `--throttle` per second with 429 +
   `Retry-After: --retry-after` (as SharePoint throttles an app). `--records` contracts are
   mirrored first (not measured: list creation and first items); then `--changes` contract
   changes are committed (each one an audit entry → one `MirrorRecord` outbox row) and
   `--workers` outbox workers drain them with the real `RecordMirror` and msgraph-sdk
   `GraphListMirror`, in rounds (every record changed once, then drained: each change is a real
   write). Measured: from the first change to the last row done. Each change writes its item on
   both sites, so item writes = 2 × changes.

Checked afterwards: every outbox row done, every record exactly one item per site holding its
final title (otherwise the run reports the errors). Everything shares this machine's cores:
the Graph server and the workers run in one process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import date
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
from integrations.sharepoint_lists import GraphListMirror  # noqa: E402
from procurement.access import SYSTEM  # noqa: E402
from procurement.records.lists import SITES, RegisterLists, Site, load_list_config  # noqa: E402
from procurement.records.mirror import MirrorRecord, RecordMirror  # noqa: E402
from procurement.store.database import Store  # noqa: E402
from procurement.store.outbox import OutboxWorker  # noqa: E402
from procurement.store.tables import Contract, OutboxItem  # noqa: E402
from tests.graph_server import GraphTestServer  # noqa: E402

ITEM_WRITES = r"/lists/[^/]+/items(/[^/]+/fields)?$"


async def echo_baseline(args: argparse.Namespace) -> dict[str, Any]:
    return await common_echo_baseline(
        concurrency=args.concurrency,
        max_requests=args.echo_requests,
        duration=args.echo_duration,
        prefix="records-bench",
    )


async def _change(store: Store, refs: list[str], round_no: int) -> None:
    async with store.unit_of_work(SYSTEM) as uow:
        for ref in refs:
            row = await uow.session.scalar(sa.select(Contract).where(Contract.external_ref == ref))
            assert row is not None
            row.title = f"Avtale {ref} runde {round_no}"
            row.value_nok = 1_000_000 + round_no
            uow.audit("contract.updated", "contract", ref, {})


async def list_updates(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'innkjop.db'}"
    store = Store(url)
    await store.migrate()
    async with GraphTestServer() as graph, httpx.AsyncClient(timeout=30.0) as http:
        client = build_graph_client(StaticTokenCredential(graph.token), base_url=graph.base_url, httpx_client=http)
        site_ids: dict[Site, str] = {site: graph.add_site() for site in SITES}
        lists: dict[Site, RegisterLists] = {site: GraphListMirror(client, site_ids[site]) for site in SITES}
        mirror = RecordMirror(store, load_list_config(), lists)
        try:
            refs = [f"KAV-B-{i:05d}" for i in range(args.records)]
            async with store.unit_of_work(SYSTEM) as uow:
                for ref in refs:
                    uow.session.add(
                        Contract(
                            external_ref=ref,
                            supplier_name="Leverandør AS",
                            title=f"Avtale {ref}",
                            category="services",
                            start_date=date(2026, 1, 1),
                            end_date=date(2029, 12, 31),
                            value_nok=1_000_000,
                        )
                    )
            seed = await mirror.sync(["contract"])  # lists and first items, not measured
            store.audit_hooks.append(mirror.audit_hook)
            rounds = max(1, args.changes // args.records)
            if args.throttle > 0:
                rule = graph.throttle(
                    "*", ITEM_WRITES, args.throttle, burst=max(1.0, args.throttle / 10), retry_after=args.retry_after
                )
            before = len(graph.requests)
            workers = [
                OutboxWorker(store, mirror.handlers(), worker_id=f"bench-{i}", batch=args.batch, base_backoff=0.2)
                for i in range(args.workers)
            ]

            async def pending() -> int:
                async with store.session() as session:
                    return int(
                        await session.scalar(
                            sa.select(sa.func.count())
                            .select_from(OutboxItem)
                            .where(OutboxItem.status == "pending", OutboxItem.kind == MirrorRecord.kind)
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
            for n in range(rounds):
                # A round: every record changed once, then mirrored (so every change is a real write;
                # changes of one record made before its worker ran would be written once, as the newest).
                await _change(store, refs, n + 1)
                for w in workers:
                    w.wakeup.set()
                await asyncio.gather(*(work(w) for w in workers))
            wall = time.perf_counter() - started
            requests = graph.requests[before:]
            writes = [r for r in requests if r.method in ("PATCH", "POST") and r.status in (200, 201)]
            refused = sum(1 for r in requests if r.status == 429)
            async with store.session() as session:
                statuses = dict(
                    (
                        await session.execute(
                            sa.select(OutboxItem.status, sa.func.count())
                            .where(OutboxItem.kind == MirrorRecord.kind)
                            .group_by(OutboxItem.status)
                        )
                    ).all()
                )
            problems = 0
            for site in SITES:
                items: dict[str, list[dict[str, Any]]] = {}
                for sp in graph.sites[site_ids[site]].values():
                    if sp.display_name == "Kontrakter":
                        for item in sp.items.values():
                            items.setdefault(item["InnkjopRef"], []).append(item)
                for ref in refs:
                    wanted = f"Avtale {ref} runde {rounds}"
                    found = items.get(ref, [])
                    problems += len(found) != 1 or found[0].get("Title") != wanted
        finally:
            await close_graph_client(client)
            await store.close()
    changes = sum(statuses.values())
    return {
        "name": "list updates (throttled graph server)" if args.throttle > 0 else "list updates (no throttling)",
        "database": "sqlite" if url.startswith("sqlite") else "postgresql",
        "records": args.records,
        "changes": changes,
        "workers": args.workers,
        "batch": args.batch,
        "throttle_per_s": args.throttle,
        "seeded": seed.totals(),
        "wall_s": round(wall, 2),
        "changes_per_s": round(changes / wall, 1) if wall else 0.0,
        "item_writes": len(writes),
        "item_writes_per_s": round(len(writes) / wall, 1) if wall else 0.0,
        "http_429": refused,
        "server_refused": rule.refused if args.throttle > 0 else 0,
        "outbox": statuses,
        "problems": problems,
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    echo = await echo_baseline(args)
    print(f"  echo: {echo['requests']} requests, {echo['throughput_rps']}/s", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="records-bench-") as tmp:
        lists = await list_updates(args, Path(tmp))
    return {"machine": machine(), "echo": echo, "lists": lists}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=200, help="contracts in the register (default 200)")
    parser.add_argument("--changes", type=int, default=1000, help="contract changes to mirror (default 1000)")
    parser.add_argument("--workers", type=int, default=2, help="outbox workers (default 2)")
    parser.add_argument("--batch", type=int, default=20, help="rows per worker claim (default 20)")
    parser.add_argument(
        "--throttle", type=float, default=50.0, help="item writes/s the server allows (0: none; default 50)"
    )
    add_outbox_bench_args(parser)
    args = parser.parse_args(argv)
    result = asyncio.run(bench(args))
    info, echo, lists = result["machine"], result["echo"], result["lists"]
    print_machine_and_echo(info, echo, args.concurrency)
    print(
        f"{lists['name']} [{lists['database']}, {lists['workers']} workers × batch {lists['batch']}]: "
        f"{lists['changes']} changes of {lists['records']} records in {lists['wall_s']} s = "
        f"{lists['changes_per_s']} changes/s, {lists['item_writes']} item writes = "
        f"{lists['item_writes_per_s']} item writes/s (limit {lists['throttle_per_s']:g}/s); "
        f"429s {lists['http_429']}; outbox {lists['outbox']}; wrong or duplicate items {lists['problems']}"
    )
    if echo["throughput_rps"]:
        print(f"item writes/s vs echo req/s: {lists['item_writes_per_s'] / echo['throughput_rps']:.2f}×")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return 0 if not lists["problems"] and set(lists["outbox"]) == {"done"} else 1


if __name__ == "__main__":
    raise SystemExit(main())
