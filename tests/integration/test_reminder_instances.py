"""Several app instances sending reminders at once, and an instance killed mid-batch.

On PostgreSQL, each instance claims due reminders with `FOR UPDATE SKIP LOCKED` and a
lease (`claimed_by`, `claimed_until`, two minutes); the tests run two real `python app.py`
processes (RUN_WORKERS=true) against one test database and a Connector stub that enforces
Teams' limits, and count each reminder's deliveries on the stub (its id is in the card's
action data).

What the design guarantees, and what the kill test measures: delivery at least once. A
reminder is sent, then marked delivered in its own transaction; a claimed reminder whose
delivery is recorded is never sent again. An instance killed between the stub's 201 and
that commit leaves a claimed, still pending reminder that was in fact delivered; when the
lease runs out another instance sends it again. So after a kill: nothing is lost, and a
duplicate occurs only for a reminder Teams accepted but we had not yet recorded at the
moment of the kill (at most the sends in flight); the test prints how many it saw. The lease length (2 min) is not
configurable, so the test expires the dead instance's leases in the database instead of
waiting two minutes.

On SQLite, one instance is the rule (README: "On SQLite run one instance"): its claim has
no row lock. A single instance that is restarted after a crash loses nothing either
(`test_restart_after_a_crash_loses_nothing`, both databases).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from app import build_runtime
from procurement.reminders.service import Reminders
from procurement.store.database import Store
from procurement.store.tables import Reminder
from settings import Settings
from tests.connector_stub import ConnectorStub
from tests.integration.reminder_fixtures import (
    FOLLOWUP_CHANNEL,
    bulk_due_reminders,
    manager_id,
    reminder_deliveries,
    seed_people,
)

REPO = Path(__file__).resolve().parents[2]
COUNT = 500
MANAGERS = 100
NewDatabase = Callable[[str], Awaitable[str]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Instance:
    """`python app.py` with the reminder worker on, logging to a file."""

    def __init__(self, name: str, database_url: str, workdir: Path) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        data = workdir / name
        data.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTIONS__", "CONNECTIONSMAP__"))}
        env.update(
            {
                "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID": "",  # local mode, whatever a .env says
                "LOCAL_MODE": "true",
                "DATABASE_URL": database_url,
                "DATA_DIR": str(data),
                "HOST": "127.0.0.1",
                "PORT": str(free_port()),
                "RUN_WORKERS": "true",
                "REMINDER_POLL_SECONDS": "0.2",
                "WORKER_POLL_SECONDS": "5",
                "FOLLOWUP_CHANNEL_ID": FOLLOWUP_CHANNEL,
                "REMINDER_WORKING_HOURS": "always",
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> Instance:
        self._out = self.log.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "app.py",
            cwd=str(REPO),
            env=self.env,
            stdout=self._out,
            stderr=self._out,
        )
        return self

    async def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no last commits."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                await self.kill()
        self._out.close()

    def sends(self) -> int:
        """Sends this instance saw acknowledged (the SDK logs each reply's resource id)."""
        text = self.log.read_text("utf-8", "replace") if self.log.exists() else ""
        return len(re.findall(r"Reply to conversation/activity: stub-\d+", text))

    def tail(self) -> str:
        text = self.log.read_text("utf-8", "replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-30:])


@pytest.fixture
async def seeded(
    new_database: NewDatabase,
) -> AsyncIterator[tuple[str, Store, ConnectorStub, list[int]]]:
    url = await new_database("postgres")
    async with ConnectorStub() as stub:
        store = Store(url)
        try:
            await store.migrate()
            managers = [manager_id(i) for i in range(MANAGERS)]
            await seed_people(store, stub.url, managers)
            ids = await bulk_due_reminders(store, COUNT, managers)
            yield url, store, stub, ids
        finally:
            await store.close()


async def count_status(store: Store) -> dict[str, int]:
    async with store.session() as session:
        rows = await session.execute(sa.select(Reminder.status, sa.func.count()).group_by(Reminder.status))
        return {status: int(n) for status, n in rows.all()}


async def wait_until(check: Callable[[], Awaitable[bool]], within: float, what: str, instances: list[Instance]) -> None:
    deadline = time.monotonic() + within
    while not await check():
        for inst in instances:
            if inst.proc is not None and inst.proc.returncode is not None:
                raise AssertionError(f"{inst.name} exited ({inst.proc.returncode}):\n{inst.tail()}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {i.name}\n{i.tail()}" for i in instances)
            raise AssertionError(f"not within {within} s: {what}\n{logs}")
        await asyncio.sleep(0.25)


@pytest.mark.postgres
async def test_two_instances_share_the_reminders_without_duplicates(
    seeded: tuple[str, Store, ConnectorStub, list[int]], tmp_path: Path
) -> None:
    url, store, stub, ids = seeded
    instances = [Instance("a", url, tmp_path), Instance("b", url, tmp_path)]
    try:
        await asyncio.gather(*(i.start() for i in instances))

        async def all_delivered() -> bool:
            return (await count_status(store)).get("delivered", 0) == COUNT

        await wait_until(all_delivered, 50, f"{COUNT} reminders delivered", instances)
        await asyncio.sleep(1.0)  # anything more would show up now
    finally:
        for inst in instances:
            await inst.stop()

    per_reminder = reminder_deliveries(stub)
    assert set(per_reminder) == set(ids), "none lost"
    duplicates = {rid: n for rid, n in per_reminder.items() if n > 1}
    assert duplicates == {}, f"delivered more than once: {duplicates}"
    assert await count_status(store) == {"delivered": COUNT}
    shares = {i.name: i.sends() for i in instances}
    # Both did part of the work (each instance keeps its own 50/s books, so together they
    # offer more than Teams takes: the stub's 429s send some back for a later round).
    assert sum(shares.values()) == COUNT and all(shares.values()), shares
    print(f"\ntwo instances: shares {shares}, 429s {len(stub.refused(429))}")


@pytest.mark.postgres
async def test_instance_killed_mid_batch_loses_nothing(
    seeded: tuple[str, Store, ConnectorStub, list[int]], tmp_path: Path
) -> None:
    url, store, stub, ids = seeded
    a, b = Instance("a", url, tmp_path), Instance("b", url, tmp_path)
    try:
        await a.start()

        async def some_sent() -> bool:
            return len(reminder_deliveries(stub)) >= 150

        await wait_until(some_sent, 40, "150 deliveries by instance a", [a])
        await a.kill()
        await asyncio.sleep(0.3)  # a request the stub was reading when a died is finished now

        on_stub = set(reminder_deliveries(stub))
        async with store.session() as session:
            rows = (await session.execute(sa.select(Reminder.id, Reminder.status, Reminder.claimed_by))).all()
        in_flight = {rid for rid, status, by in rows if status == "pending" and by is not None}
        dead_workers = {by for _, status, by in rows if status == "pending" and by is not None}
        acked_not_recorded = in_flight & on_stub
        assert in_flight, "killed mid-batch: some reminders were claimed and not finished"
        assert {rid for rid, status, _ in rows if status == "delivered"} <= on_stub

        await b.start()

        # b does everything else, but leaves the dead instance's leases alone …
        async def rest_delivered() -> bool:
            return (await count_status(store)).get("delivered", 0) == COUNT - len(in_flight)

        await wait_until(rest_delivered, 40, "b delivers all but a's claimed reminders", [b])
        await asyncio.sleep(1.0)
        async with store.session() as session:
            still = set(
                await session.scalars(
                    sa.select(Reminder.id).where(Reminder.status == "pending", Reminder.claimed_by.in_(dead_workers))
                )
            )
        assert still == in_flight, "an unexpired lease is respected"

        # … until the lease runs out (2 minutes in the product; expired here instead).
        async with store.session() as session:
            await session.execute(
                sa.update(Reminder)
                .where(Reminder.claimed_by.in_(dead_workers))
                .values(claimed_until=datetime.now(UTC) - timedelta(seconds=1))
            )

        async def all_delivered() -> bool:
            return (await count_status(store)).get("delivered", 0) == COUNT

        await wait_until(all_delivered, 30, f"all {COUNT} delivered", [b])
        await asyncio.sleep(0.5)
    finally:
        await a.kill()
        await a.stop()
        await b.stop()

    per_reminder = reminder_deliveries(stub)
    assert set(per_reminder) == set(ids), "none lost"
    duplicates = {rid for rid, n in per_reminder.items() if n > 1}
    assert all(n <= 2 for n in per_reminder.values())
    # Exactly the ones acknowledged by the stub but not yet recorded when a died.
    assert duplicates == acked_not_recorded
    assert len(duplicates) <= len(in_flight)
    assert await count_status(store) == {"delivered": COUNT}
    print(
        f"\nkill test: in flight at kill {len(in_flight)}, acknowledged but not recorded "
        f"{len(acked_not_recorded)}, duplicates {len(duplicates)}, 429s {len(stub.refused(429))}"
    )


# -- one instance, restarted; and why SQLite is one instance ---------------------------------


async def test_restart_after_a_crash_loses_nothing(db_url: str, make_settings: Callable[..., Settings]) -> None:
    async with ConnectorStub() as stub:
        runtime = await build_runtime(
            make_settings(
                DATABASE_URL=db_url,
                FOLLOWUP_CHANNEL_ID=FOLLOWUP_CHANNEL,
                REMINDER_WORKING_HOURS="always",
            )
        )
        try:
            managers = [manager_id(i) for i in range(30)]
            await seed_people(runtime.store, stub.url, managers)
            ids = await bulk_due_reminders(runtime.store, 60, managers)
            # The instance before the restart claimed 40 and died without a word.
            dead = await runtime.services.reminders.claim_due("dead-instance", 40)
            assert len(dead) == 40
            worker = runtime.reminder_worker
            assert await worker.run_once() == 20
            assert set(reminder_deliveries(stub)) == set(ids) - {d.id for d in dead}
            assert await worker.run_once() == 0, "the lease is respected"
            async with runtime.store.session() as session:
                await session.execute(
                    sa.update(Reminder)
                    .where(Reminder.claimed_by == "dead-instance")
                    .values(claimed_until=datetime.now(UTC) - timedelta(seconds=1))
                )
            assert await worker.run_once() == 40
            for _ in range(5):
                if await count_status(runtime.store) == {"delivered": 60}:
                    break
                # A send the stub throttled (429 when the limiter's booking and the stub's clock
                # disagree on a busy machine) was released until its Retry-After: bring it forward.
                async with runtime.store.session() as session:
                    await session.execute(
                        sa.update(Reminder)
                        .where(Reminder.status == "pending")
                        .values(send_after=datetime.now(UTC) - timedelta(seconds=1))
                    )
                await worker.run_once()
            per_reminder = reminder_deliveries(stub)
            assert per_reminder == Counter(dict.fromkeys(ids, 1)), "a lease taken over sends what was not sent"
            assert await count_status(runtime.store) == {"delivered": 60}
            duplicates = sum(n - 1 for n in per_reminder.values())
            print(f"\nrestart test: claimed by the dead instance {len(dead)}, duplicates {duplicates}")
        finally:
            await runtime.store.close()


async def test_claims_lock_rows_on_postgresql_only(store: Store) -> None:
    """Why several instances need PostgreSQL: only there does the claim lock and skip rows."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    try:
        await Reminders(store).claim_due("probe", 10)
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", record)
    claim = next(s for s in statements if "FROM reminders" in s and "ORDER BY" in s)
    if store.is_sqlite:
        assert "FOR UPDATE" not in claim
        readme = (REPO / "README.md").read_text("utf-8")
        assert "On SQLite run one instance" in readme
    else:
        assert "FOR UPDATE SKIP LOCKED" in claim
