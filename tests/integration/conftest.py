"""Fixtures shared by the integration tests that run the bot over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

import app as app_module
from settings import Settings
from tests.cardcheck import validate_card
from tests.connector_stub import ConnectorStub, adaptive_cards
from tests.integration.bot_harness import INGRID, INTAKE, KARI, OLA, AppServer, Bot, BotFactory


@pytest.fixture
async def stub() -> AsyncIterator[ConnectorStub]:
    """The Connector the bot replies to. Afterwards, every card it received must be valid."""
    async with ConnectorStub() as s:
        yield s
        for card in s.cards():
            validate_card(card)
        for update in s.updates:
            for card in adaptive_cards(update.activity):
                validate_card(card)


@pytest.fixture
async def serve_app() -> AsyncIterator[AppServer]:
    """`await serve_app(settings)` → a client of `app.build_app(settings)` on a TestServer; all closed after."""
    clients: list[TestClient] = []

    async def serve(settings: Settings) -> TestClient:
        client = TestClient(TestServer(await app_module.build_app(settings), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    try:
        yield serve
    finally:
        # Closing the client runs the app's cleanup, which closes its store.
        for client in reversed(clients):
            await client.close()


@pytest.fixture
async def start_bot(serve_app: AppServer, stub: ConnectorStub, make_settings: Callable[..., Settings]) -> BotFactory:
    async def start(db_url: str, **env: str | None) -> Bot:
        settings = make_settings(
            DATABASE_URL=db_url,
            PROCUREMENT_USER_IDS=INGRID,
            INTAKE_CHANNEL_ID=INTAKE,
            **env,
        )
        return Bot(await serve_app(settings), stub)

    return start


@pytest.fixture
async def bot(start_bot: BotFactory, db_url: str) -> Bot:
    """The app on SQLite and on PostgreSQL, workers off (the test drives the outbox)."""
    b = await start_bot(db_url)
    # Everyone has talked to the bot once: personal chats known, as after installing the app.
    for user in (KARI, OLA, INGRID):
        await b.say("hei", user=user)
    return b


@pytest.fixture
async def sqlite_bot(start_bot: BotFactory, new_database: Callable[[str], Awaitable[str]]) -> Bot:
    b = await start_bot(await new_database("sqlite"))
    for user in (KARI, OLA, INGRID):
        await b.say("hei", user=user)
    return b
