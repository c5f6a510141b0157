"""The database: engine, migrations at start, one unit of work per user action.

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) by `DATABASE_URL` for
production and several app instances.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from procurement.access import Actor
from procurement.store.unit_of_work import AuditHook, UnitOfWork

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every instance of this app.
_MIGRATION_LOCK_ID = 0x1A7E_0C0D


@asynccontextmanager
async def _file_lock(db_file: Path | None) -> AsyncIterator[None]:
    """An exclusive flock on `<db>.migrate.lock` (none for an in-memory database)."""
    if db_file is None:
        yield
        return
    fd = os.open(f"{db_file}.migrate.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        # flock blocks the thread, not the loop; separate opens exclude each other even
        # within one process.
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # WAL + NORMAL: a commit survives the app crashing (not a power cut before the next
    # checkpoint) and costs no fsync; SQLite is the single-machine/local store, production
    # runs on PostgreSQL.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Store:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._sqlite_file: Path | None = None
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            db_path = url.split("///", 1)[-1].split("?", 1)[0]
            if db_path and db_path != ":memory:":
                self._sqlite_file = Path(db_path)
                self._sqlite_file.parent.mkdir(parents=True, exist_ok=True)
            # SQLite has one writer. With one pooled connection, concurrent turns wait in the
            # pool's FIFO queue instead of SQLite's busy handler (which sleeps in growing steps
            # and fails after 5 s): measured in docs/benchmarks.md.
            kwargs.update(pool_size=1, max_overflow=0, pool_timeout=30)
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Called on every audit entry of every unit of work; each returns the effects the
        # change causes beyond its workflow's own (a register's list item, an archive copy).
        # Registered by the composition root, so the store knows no workflow.
        self.audit_hooks: list[AuditHook] = []

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def migrate(self) -> None:
        """Bring the schema to head. Safe when several instances start at once."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))

        def upgrade(sync_conn: sa.Connection) -> None:
            cfg.attributes["connection"] = sync_conn
            command.upgrade(cfg, "head")

        if self.is_sqlite:
            # SQLite has no advisory lock and runs DDL outside the transaction: a lock file
            # next to the database serialises processes (and stores) starting at once.
            async with _file_lock(self._sqlite_file):
                async with self.engine.begin() as conn:
                    await conn.run_sync(upgrade)
            return
        async with self.engine.begin() as conn:
            await conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})"))
            await conn.run_sync(upgrade)

    async def healthy(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(sa.text("SELECT 1")), timeout=3)
            return True
        except Exception:
            log.exception("database health check failed")
            return False

    def new_session(self) -> AsyncSession:
        return self._sessions()

    def unit_of_work(self, actor: Actor) -> UnitOfWork:
        """The transaction of one user action (see `unit_of_work.py`)."""
        return UnitOfWork(self, actor)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A transaction for reads and for background bookkeeping (claims, leases)."""
        async with self._sessions() as session, session.begin():
            yield session

    async def close(self) -> None:
        await self.engine.dispose()
