"""Shared fixtures.

- ``db_url``: a fresh, empty database URL, parametrized ``sqlite`` / ``postgres``. SQLite is a
  file under ``tmp_path``; PostgreSQL is a new database per test on the server named by
  ``TEST_POSTGRES_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``, trust
  auth), dropped afterwards. PostgreSQL not reachable → the postgres tests FAIL (CI has it);
  deselect them explicitly with ``-m "not postgres"``.
- ``store``: a migrated ``procurement.store.Store`` on ``db_url`` (so also both databases).
- ``new_database``: a factory for more fresh databases in one test,
  ``await new_database("postgres")`` → URL.
- ``local_mode_environment`` (autouse): ``LOCAL_MODE=true`` in ``os.environ`` unless set.
- ``make_settings(**env)``: ``settings.Settings`` from ``load_settings(env, dotenv=False)`` with
  ``DATA_DIR=tmp_path``, ``RUN_WORKERS=false``, ``SHAREPOINT_MIRROR=false`` and ``LOCAL_MODE=true`` (left out when the
  overrides give the app a CLIENTID); keyword names are the environment variables
  (``make_settings(DATABASE_URL=db_url, ALLOWED_TENANT_ID="…")``); a value of ``None``
  removes a default.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from procurement.store.database import Store
from settings import Settings, load_settings

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
DATABASE_KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

NewDatabase = Callable[[str], Awaitable[str]]

APP_CLIENT_ID_VAR = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID"


async def _admin_connection() -> Any:
    import asyncpg

    url = make_url(POSTGRES_URL)
    try:
        return await asyncpg.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username or "postgres",
            password=url.password,
            database=url.database or "test",
            timeout=5,
            command_timeout=120,  # a CREATE/DROP DATABASE that waits on a lock fails, not hangs
        )
    except (OSError, asyncpg.PostgresError) as err:
        pytest.fail(
            f"PostgreSQL is not reachable at {url.render_as_string(hide_password=True)} "
            f"({type(err).__name__}: {err}). Start it, set TEST_POSTGRES_URL, or deselect "
            f'with -m "not postgres".',
            pytrace=False,
        )


@pytest.fixture
async def new_database(tmp_path: Path) -> AsyncIterator[NewDatabase]:
    """Make fresh empty databases ("sqlite" or "postgres"); PostgreSQL ones are dropped after."""
    created: list[str] = []
    admin = None

    async def make(kind: str) -> str:
        nonlocal admin
        name = f"innkjop_t_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        if kind == "sqlite":
            return f"sqlite+aiosqlite:///{tmp_path / (name + '.db')}"
        if kind != "postgres":
            raise ValueError(f"unknown database kind {kind!r}")
        if admin is None:
            admin = await _admin_connection()
        await admin.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        url = make_url(POSTGRES_URL).set(drivername="postgresql+asyncpg", database=name)
        return url.render_as_string(hide_password=False)

    try:
        yield make
    finally:
        if admin is not None:
            try:
                for name in created:
                    # FORCE: a test that leaked a connection must not leave the database behind.
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


@pytest.fixture(params=DATABASE_KINDS)
async def db_url(request: pytest.FixtureRequest, new_database: NewDatabase) -> str:
    """A fresh empty database, once on SQLite and once on PostgreSQL."""
    return await new_database(request.param)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """A migrated Store on the test's database."""
    s = Store(db_url)
    try:
        await s.migrate()
        yield s
    finally:
        await s.close()


@pytest.fixture(autouse=True)
def local_mode_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """LOCAL_MODE=true in the environment, as `./dev test` sets it: code that reads settings
    from the environment (the import command, bots started as processes) runs in local mode.
    A test that wants otherwise deletes or replaces it."""
    if "LOCAL_MODE" not in os.environ:
        monkeypatch.setenv("LOCAL_MODE", "true")


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """`make_settings(DATABASE_URL=…, ALLOWED_TENANT_ID=…)` → Settings, as from the environment."""

    def make(**overrides: str | None) -> Settings:
        # The register mirror off unless a test asks (it adds an outbox job to every change).
        env: dict[str, str | None] = {"DATA_DIR": str(tmp_path), "RUN_WORKERS": "false", "SHAREPOINT_MIRROR": "false"}
        if not (overrides.get(APP_CLIENT_ID_VAR) or "").strip():
            env["LOCAL_MODE"] = "true"  # local mode is asked for, as ./dev run does
        env.update(overrides)
        return load_settings({k: v for k, v in env.items() if v is not None}, dotenv=False)

    return make
