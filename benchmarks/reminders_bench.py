"""Reminder delivery benchmark (issue 4).

    python -m benchmarks.reminders_bench send --count 10000 --managers 2000 --db sqlite
    python -m benchmarks.reminders_bench due --contracts 100000 --db sqlite --db postgres
    python -m benchmarks.reminders_bench all            # both, the issue's sizes, both databases

`send`: seeds `--count` due reminders for `--managers` avtaleforvaltere (each with a stored
personal chat) into a fresh database, starts the Connector stub (tests/connector_stub.py,
Teams' limits on: 50/s per app, 7/1 s, 8/2 s, 60/30 s, 1800/h per conversation) in a
separate process, and runs one `ReminderWorker` (from `app.build_runtime`, the product's
own wiring) until nothing is pending. Reports the sustained delivery rate the stub saw
(delivered ÷ time from the first to the last delivery) against the 50/s ceiling, lost
(reminders never delivered on the stub, or not marked delivered), duplicates (extra
deliveries of a reminder: delivery is at least once, and with no process dying between
Teams accepting a message and our recording it there must be none), and the 429s the stub
answered.

`due`: seeds `--contracts` contracts with ~4 reminders each (bulk insert; statuses as in
a register in steady state, 1 % due now) and times `Reminders.claim_due(limit=100)`, the
bare due query (the SELECT inside it) and `claim_escalations(limit=100)`, p50/p90 over
`--runs` runs, with the query plan.

PostgreSQL: a database is created on the server of `TEST_POSTGRES_URL` (default
`postgresql+asyncpg://postgres@127.0.0.1:5432/test`) and dropped afterwards. The output
is a human summary and, with `--json FILE`, the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app import build_runtime  # noqa: E402
from procurement.reminders.service import Reminders  # noqa: E402
from procurement.store.database import Store  # noqa: E402
from procurement.store.tables import Reminder  # noqa: E402
from settings import load_settings  # noqa: E402
from tests.integration.reminder_fixtures import (  # noqa: E402
    FOLLOWUP_CHANNEL,
    bulk_due_reminders,
    bulk_register,
    manager_id,
    seed_people,
)

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
APP_CEILING = 50.0


# -- databases --------------------------------------------------------------------------


@asynccontextmanager
async def fresh_database(kind: str, workdir: Path) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        return
    import asyncpg

    base = make_url(POSTGRES_URL)
    admin = await asyncpg.connect(
        host=base.host or "127.0.0.1",
        port=base.port or 5432,
        user=base.username or "postgres",
        password=base.password,
        database=base.database or "test",
    )
    name = f"innkjop_bench_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# -- the stub in its own process ------------------------------------------------------------


def _stub_process(conn: Any, rate_limits: bool = True) -> None:
    """Child process: serve a ConnectorStub; answer "report" with what it saw; "stop" ends."""
    from tests.connector_stub import ConnectorStub
    from tests.integration.reminder_fixtures import deliveries_per_reminder

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        async with ConnectorStub(rate_limits=rate_limits) as stub:
            conn.send(stub.url)
            while True:
                command = await loop.run_in_executor(None, conn.recv)
                if command == "stop":
                    return
                delivered = [r for r in stub.requests if r.delivered and r.kind in ("send", "reply")]
                times = sorted(r.at for r in delivered)
                conn.send(
                    {
                        "per_reminder": dict(deliveries_per_reminder(r.body for r in delivered)),
                        "statuses": dict(Counter(r.status for r in stub.requests)),
                        "first": times[0] if times else None,
                        "last": times[-1] if times else None,
                        "max_per_second": _max_in_window(times, 1.0),
                        "requests": len(stub.requests),
                    }
                )

    asyncio.run(serve())


def _max_in_window(times: list[float], span: float) -> int:
    best = start = 0
    for end, t in enumerate(times):
        while t - times[start] >= span:
            start += 1
        best = max(best, end - start + 1)
    return best


class StubProcess:
    def __init__(self, rate_limits: bool = True) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_stub_process, args=(child, rate_limits), daemon=True)

    def __enter__(self) -> StubProcess:
        self.proc.start()
        self.url: str = self.conn.recv()
        return self

    def report(self) -> dict[str, Any]:
        self.conn.send("report")
        result: dict[str, Any] = self.conn.recv()
        return result

    def __exit__(self, *exc: object) -> None:
        try:
            self.conn.send("stop")
        except OSError:
            pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


# -- (a) sending ----------------------------------------------------------------------------


async def bench_send(
    kind: str,
    count: int,
    managers: int,
    workdir: Path,
    time_limit: float,
    batch: int | None = None,
    stub_limits: bool = True,
) -> dict[str, Any]:
    async with fresh_database(kind, workdir) as url:
        with StubProcess(stub_limits) as stub:
            settings = load_settings(
                {
                    "LOCAL_MODE": "true",
                    "DATABASE_URL": url,
                    "DATA_DIR": str(workdir),
                    "RUN_WORKERS": "false",
                    "FOLLOWUP_CHANNEL_ID": FOLLOWUP_CHANNEL,
                    "REMINDER_WORKING_HOURS": "always",
                },
                dotenv=False,
            )
            runtime = await build_runtime(settings)
            try:
                people = [manager_id(i) for i in range(managers)]
                t = time.perf_counter()
                await seed_people(runtime.store, stub.url, people)
                ids = await bulk_due_reminders(runtime.store, count, people)
                seed_s = time.perf_counter() - t

                worker = runtime.reminder_worker
                if batch:
                    worker.batch = batch
                started = time.perf_counter()
                rounds = 0
                while time.perf_counter() - started < time_limit:
                    rounds += 1
                    if await worker.run_once():
                        continue
                    if not await _pending(runtime.store):
                        break
                    await asyncio.sleep(0.2)  # released after a 429/5xx: wait for its time
                wall = time.perf_counter() - started
                async with runtime.store.session() as session:
                    status = dict((await session.execute(sa.select(Reminder.id, Reminder.status))).all())
            finally:
                await runtime.store.close()
            seen = stub.report()
    per = {int(k): v for k, v in seen["per_reminder"].items()}
    delivered_ok = [i for i in ids if per.get(i, 0) >= 1 and status.get(i) == "delivered"]
    span = (seen["last"] - seen["first"]) if seen["first"] is not None else 0.0
    deliveries = sum(per.values())
    rate = (deliveries - 1) / span if span > 0 else 0.0
    return {
        "db": kind,
        "count": count,
        "managers": managers,
        "batch": worker.batch,
        "seed_s": round(seed_s, 1),
        "wall_s": round(wall, 1),
        "rounds": rounds,
        "deliveries": deliveries,
        "sustained_per_s": round(rate, 2),
        "of_ceiling_pct": round(100 * rate / APP_CEILING, 1),
        "max_in_any_1s": seen["max_per_second"],
        "lost": len(ids) - len(delivered_ok),
        "duplicates": sum(v - 1 for v in per.values() if v > 1),
        "http_429": seen["statuses"].get(429, 0),
        "stub_statuses": seen["statuses"],
        "worker_stats": dict(worker.stats),
    }


async def _pending(store: Store) -> int:
    async with store.session() as session:
        return int(
            await session.scalar(
                sa.select(sa.func.count()).select_from(Reminder).where(Reminder.status.in_(("pending", "escalate")))
            )
            or 0
        )


# -- (b) finding due reminders ------------------------------------------------------------------


def _due_select(now: datetime) -> Any:
    """The SELECT inside `Reminders.claim_due` (procurement/reminders_service.py)."""
    return (
        sa.select(Reminder.id)
        .where(
            sa.and_(Reminder.status == "pending", Reminder.send_after <= now),
            sa.or_(Reminder.claimed_until.is_(None), Reminder.claimed_until < now),
        )
        .order_by(Reminder.send_after, Reminder.id)
        .limit(100)
    )


DUE_SQL = (
    "SELECT id FROM reminders WHERE status = 'pending' AND send_after <= :now "
    "AND (claimed_until IS NULL OR claimed_until < :now) ORDER BY send_after, id LIMIT 100"
)
# The second (larger) SELECT inside `Reminders.claim_escalations`: unanswered after 7 days.
ESCALATION_SQL = (
    "SELECT id FROM reminders WHERE status = 'delivered' AND delivered_at <= :cutoff AND answer IS NULL "
    "AND (claimed_until IS NULL OR claimed_until < :now) ORDER BY delivered_at, id LIMIT 100"
)


async def _explain(store: Store, sql: str) -> str:
    """The plan of one of the queries above (EXPLAIN ANALYZE on PostgreSQL)."""
    now = datetime.now(UTC)
    params: dict[str, Any] = {"now": now, "cutoff": now - timedelta(days=7)}
    async with store.engine.connect() as conn:
        if store.is_sqlite:
            naive = {k: v.replace(tzinfo=None).isoformat(sep=" ") for k, v in params.items()}
            rows = await conn.execute(sa.text("EXPLAIN QUERY PLAN " + sql), naive)
            return "\n".join(str(r[-1]) for r in rows)
        rows = await conn.execute(sa.text("EXPLAIN (ANALYZE, BUFFERS) " + sql), params)
        return "\n".join(str(r[0]) for r in rows)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench_due(kind: str, contracts: int, runs: int, workdir: Path) -> dict[str, Any]:
    async with fresh_database(kind, workdir) as url:
        store = Store(url)
        try:
            await store.migrate()
            t = time.perf_counter()
            # 1 % due now, or enough for every run to claim a full batch of 100.
            due_fraction = max(0.01, 1.5 * runs * 100 / (4 * contracts))
            counts = await bulk_register(store, contracts, due_fraction=due_fraction)
            seed_s = time.perf_counter() - t
            if not store.is_sqlite:
                async with store.engine.connect() as conn:
                    await conn.execute(sa.text("COMMIT"))
                    await conn.execute(sa.text("ANALYZE"))
            else:
                async with store.engine.begin() as conn:
                    await conn.execute(sa.text("ANALYZE"))
            async with store.session() as session:
                total = int(await session.scalar(sa.select(sa.func.count()).select_from(Reminder)) or 0)
            reminders = Reminders(store)
            select_ms, claim_ms, esc_ms = [], [], []
            for i in range(runs):
                now = datetime.now(UTC)
                async with store.session() as session:
                    t = time.perf_counter()
                    found = list(await session.scalars(_due_select(now)))
                    select_ms.append((time.perf_counter() - t) * 1000)
                assert len(found) == 100, len(found)
                t = time.perf_counter()
                claimed = await reminders.claim_due(f"bench-{i}", 100, timedelta(minutes=5))
                claim_ms.append((time.perf_counter() - t) * 1000)
                assert len(claimed) == 100, len(claimed)
                t = time.perf_counter()
                await reminders.claim_escalations(f"bench-e-{i}", 100, timedelta(minutes=5))
                esc_ms.append((time.perf_counter() - t) * 1000)
            plan = await _explain(store, DUE_SQL)
            escalation_plan = await _explain(store, ESCALATION_SQL)
        finally:
            await store.close()
    return {
        "db": kind,
        "contracts": contracts,
        "reminders": total,
        "by_status": counts,
        "seed_s": round(seed_s, 1),
        "runs": runs,
        "due_select_ms_p50": round(statistics.median(select_ms), 2),
        "due_select_ms_p90": round(_pct(select_ms, 0.9), 2),
        "claim_due_ms_p50": round(statistics.median(claim_ms), 2),
        "claim_due_ms_p90": round(_pct(claim_ms, 0.9), 2),
        "claim_escalations_ms_p50": round(statistics.median(esc_ms), 2),
        "claim_escalations_ms_p90": round(_pct(esc_ms, 0.9), 2),
        "plan": plan,
        "escalation_plan": escalation_plan,
    }


# -- command line ---------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"
    )


def print_send(r: dict[str, Any]) -> None:
    print(
        f"[send/{r['db']}] {r['count']} reminders, {r['managers']} managers, batch {r['batch']}: "
        f"{r['sustained_per_s']}/s sustained = {r['of_ceiling_pct']} % of 50/s "
        f"(max {r['max_in_any_1s']} in any 1 s); lost {r['lost']}, duplicates {r['duplicates']}, "
        f"429s {r['http_429']}; worker {r['wall_s']} s in {r['rounds']} rounds (seeding {r['seed_s']} s); "
        f"stub statuses {r['stub_statuses']}; worker stats {r['worker_stats']}"
    )


def print_due(r: dict[str, Any]) -> None:
    print(
        f"[due/{r['db']}] {r['contracts']} contracts, {r['reminders']} reminders {r['by_status']}: "
        f"due SELECT p50 {r['due_select_ms_p50']} ms (p90 {r['due_select_ms_p90']}), "
        f"claim_due(100) p50 {r['claim_due_ms_p50']} ms (p90 {r['claim_due_ms_p90']}), "
        f"claim_escalations(100) p50 {r['claim_escalations_ms_p50']} ms "
        f"(p90 {r['claim_escalations_ms_p90']}) over {r['runs']} runs "
        f"(seeding {r['seed_s']} s)"
    )
    print("  due plan: " + r["plan"].replace("\n", "\n        "))
    print("  escalation plan: " + r["escalation_plan"].replace("\n", "\n        "))


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": "python -m benchmarks.reminders_bench " + " ".join(sys.argv[1:]),
        "send": [],
        "due": [],
    }
    kinds = args.db or ["sqlite"]
    with tempfile.TemporaryDirectory(prefix="reminders-bench-") as tmp:
        workdir = Path(tmp)
        if args.what in ("send", "all"):
            for kind in kinds:
                r = await bench_send(
                    kind,
                    args.count,
                    args.managers,
                    workdir,
                    args.timeout,
                    args.batch,
                    not args.stub_without_limits,
                )
                print_send(r)
                out["send"].append(r)
        if args.what in ("due", "all"):
            for kind in kinds:
                r = await bench_due(kind, args.contracts, args.runs, workdir)
                print_due(r)
                out["due"].append(r)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["send", "due", "all"])
    parser.add_argument(
        "--db",
        action="append",
        choices=["sqlite", "postgres"],
        help="repeat for both (default sqlite)",
    )
    parser.add_argument("--count", type=int, default=10_000, help="due reminders to send")
    parser.add_argument("--managers", type=int, default=2_000)
    parser.add_argument("--contracts", type=int, default=100_000, help="register size for `due`")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--batch", type=int, help="ReminderWorker.batch (default: the product's)")
    parser.add_argument(
        "--stub-without-limits",
        action="store_true",
        help="the stub answers everything (our limiter still applies): capacity check",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="give up sending after this many s")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Every 429 is logged by the SDK at ERROR; the stub's count is the figure that matters.
    logging.getLogger("microsoft_agents").setLevel(logging.CRITICAL)
    logging.getLogger("bot.reminder_worker").setLevel(logging.ERROR)
    result = asyncio.run(main_async(args))
    print(f"date {result['date']}; machine {result['machine']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    send_ok = all(r["lost"] == 0 and r["duplicates"] == 0 for r in result["send"])
    return 0 if send_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
