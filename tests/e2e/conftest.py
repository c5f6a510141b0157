"""Fixtures for end-to-end tests through the Agents Playground.

Every test under tests/e2e is marked `e2e`.

The real app, one bot + Playground pair per test module (module-scoped, so the module's
tests share them and run in one event loop; such modules set
`pytestmark = pytest.mark.asyncio(loop_scope="module")`). Logs and websocket traffic go to
test-artifacts/e2e/<module>/; the SQLite database lives in a temporary DATA_DIR.

    pytestmark = pytest.mark.asyncio(loop_scope="module")

    async def test_x(app_playground):
        pg = app_playground
        await pg.send_text(pg.personal_chat_id, "hjelp")
        reply = await pg.next_message("Innkjøpsassistenten")

A module changes the bot's environment by overriding the `app_env_overrides` fixture
(module scope). Per-test processes (the echo bot, or anything else) come from
`bot_factory` / `playground_for`; they are stopped after the test and log to
test-artifacts/e2e/<test>/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.playground import (
    ARTIFACTS_ROOT,
    ECHO_BOT_COMMAND,
    PLAYGROUND_BIN,
    REPO_ROOT,
    BotProcess,
    Playground,
    free_port,
)

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def missing(what: str) -> None:
    """Skip when a part is missing, but fail under `./dev test` (INNKJOP_REQUIRE_E2E=1), which
    installs every part: an end-to-end test must not pass in CI by not running."""
    if os.environ.get("INNKJOP_REQUIRE_E2E") == "1":
        pytest.fail(what, pytrace=False)
    pytest.skip(what)


def playwright_async_api() -> Any:
    """Playwright's async API, or `missing` (a failure under INNKJOP_REQUIRE_E2E=1)."""
    try:
        import playwright.async_api as api
    except ImportError as err:
        missing(f"Playwright is not installed ({err}); pip install -e '.[test]'")
    return api


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """Debian's Chromium, headless, through Playwright (never downloads a browser); closed after."""
    if not HAVE_CHROMIUM:
        missing(f"{CHROMIUM} not installed")
    playwright_api = playwright_async_api()
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def loopback_page(browser: Any, pg: Playground, *, height: int = 1000) -> AsyncIterator[Any]:
    """A Norwegian page of `browser` that may load only from the Playground `pg`; closed after.

    Closed network: the page asks res-1.cdn.office.net for Segoe UI fonts and an animation
    worklet. Those requests are refused at once instead of waiting for DNS; it renders anyway.
    None of them may have gone to another local port (the UI must talk to `pg` only).
    """
    page = await browser.new_page(viewport={"width": 1400, "height": height}, locale="nb-NO")
    outside: list[str] = []

    async def refuse(route: Any) -> None:
        outside.append(route.request.url)
        await route.abort()

    await page.route(lambda url: not url.startswith(pg.base_url), refuse)
    try:
        yield page
    finally:
        await page.close()
    assert all("127.0.0.1" not in url for url in outside), outside


@pytest.fixture
def e2e_artifacts(request: pytest.FixtureRequest) -> Path:
    """test-artifacts/e2e/<test name>/, emptied at the start of the test."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:120]
    path = ARTIFACTS_ROOT / "e2e" / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture
def unused_port() -> Iterator[Callable[[], int]]:
    """A function returning a free TCP port, never the same one twice in a test."""
    given: set[int] = set()

    def pick() -> int:
        for _ in range(50):
            port = free_port()
            if port not in given:
                given.add(port)
                return port
        raise RuntimeError("no free port")

    yield pick


BotFactory = Callable[..., Awaitable[BotProcess]]
PlaygroundFactory = Callable[..., Awaitable[Playground]]


@pytest.fixture
async def bot_factory(e2e_artifacts: Path, unused_port: Callable[[], int]) -> AsyncIterator[BotFactory]:
    """Start bots: `await bot_factory(command=None, env=None, name="bot", port=None, ...)`.

    `command` defaults to `python app.py` in the repo root; `env` is layered over the
    environment (PORT is set for you; None removes a variable). Stopped after the test.
    """
    started: list[BotProcess] = []

    async def start(
        command: Sequence[str] | None = None,
        *,
        env: Mapping[str, str | None] | None = None,
        name: str = "bot",
        port: int | None = None,
        **kwargs: Any,
    ) -> BotProcess:
        bot = BotProcess(
            command,
            port=port or unused_port(),
            env=env,
            name=name,
            artifacts_dir=e2e_artifacts,
            **kwargs,
        )
        started.append(bot)
        return await bot.start()

    yield start
    for bot in reversed(started):
        await bot.stop()


@pytest.fixture
async def playground_for(e2e_artifacts: Path, unused_port: Callable[[], int]) -> AsyncIterator[PlaygroundFactory]:
    """Start Playgrounds: `await playground_for(bot_or_port, name="playground", ...)`."""
    if not PLAYGROUND_BIN.exists():
        missing(f"{PLAYGROUND_BIN} missing (npm ci)")
    started: list[Playground] = []

    async def start(bot: BotProcess | int | str, *, name: str = "playground", **kwargs: Any) -> Playground:
        kwargs.setdefault("port", unused_port())
        pg = Playground(bot, name=name, artifacts_dir=e2e_artifacts, **kwargs)
        started.append(pg)
        return await pg.start()

    yield start
    for pg in reversed(started):
        await pg.stop()


@pytest.fixture
async def echo_bot(bot_factory: BotFactory) -> BotProcess:
    """benchmarks/echo_bot.py on a free port."""
    return await bot_factory(list(ECHO_BOT_COMMAND), name="echo-bot")


@pytest.fixture
async def echo_playground(echo_bot: BotProcess, playground_for: PlaygroundFactory) -> Playground:
    return await playground_for(echo_bot)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium, headless, through Playwright (never downloads a browser)."""
    async with chromium() as browser:
        yield browser


# --------------------------------------------------------------------------- the real app

#: The mock municipality of .m365agentsplayground.yml (docs/playground.md).
TENANT_ID = "6f1a2b3c-0000-4000-8000-000000000001"
INGRID = "00000000-0000-4000-8000-0000000000a1"  # innkjøper
KARI = "00000000-0000-4000-8000-0000000000a2"  # innkjøpskontakt, the Playground's current user
PER = "00000000-0000-4000-8000-0000000000a3"
SIRI = "00000000-0000-4000-8000-0000000000a4"
LARS = "00000000-0000-4000-8000-0000000000a5"  # innkjøper
NINA = "00000000-0000-4000-8000-0000000000a6"  # ansatt, not innkjøper
INTAKE_CHANNEL = "19:innkjop-behovsmeldinger@thread.tacv2"
TEAM = "19:innkjop-generelt@thread.tacv2"

#: `python app.py` in local mode against the Playground's tenant.
APP_ENV: dict[str, str | None] = {
    "LOCAL_MODE": "true",
    "ALLOWED_TENANT_ID": TENANT_ID,
    "PROCUREMENT_USER_IDS": f"{INGRID},{LARS}",
    "INTAKE_CHANNEL_ID": INTAKE_CHANNEL,
    "FOLLOWUP_CHANNEL_ID": TEAM,
    "PROCUREMENT_TEAM_ID": TEAM,
    "WORKER_POLL_SECONDS": "0.5",
    "REMINDER_POLL_SECONDS": "1",
    "PLAYGROUND_CONFIG": str(REPO_ROOT / ".m365agentsplayground.yml"),
    "DEFAULT_LANGUAGE": None,
    "LOG_LEVEL": "INFO",
    # Never an Entra app or a shared database from the caller's environment.
    "DATABASE_URL": None,
    "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID": None,
    "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTSECRET": None,
    "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__TENANTID": None,
    "REMINDER_WORKING_HOURS": None,
    "RUN_WORKERS": None,
}


@pytest.fixture(scope="module")
def module_artifacts(request: pytest.FixtureRequest) -> Path:
    """test-artifacts/e2e/<module name>/, emptied when the module starts."""
    name = Path(str(request.module.__file__)).stem
    path = ARTIFACTS_ROOT / "e2e" / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="module")
def app_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bot's DATA_DIR (SQLite database `innkjop.db`, local adapters' files)."""
    return tmp_path_factory.mktemp("innkjop-data")


@pytest.fixture(scope="module")
def app_env_overrides() -> dict[str, str | None]:
    """Override in a test module to change the bot's environment (module scope)."""
    return {}


@pytest.fixture(scope="module")
def app_env(app_data_dir: Path, app_env_overrides: Mapping[str, str | None]) -> dict[str, str | None]:
    """The environment layered over os.environ for `python app.py` (and product CLIs)."""
    return {**APP_ENV, "DATA_DIR": str(app_data_dir), **app_env_overrides}


def app_database_path(data_dir: Path) -> Path:
    return data_dir / "innkjop.db"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app_bot(app_env: dict[str, str | None], module_artifacts: Path) -> AsyncIterator[BotProcess]:
    """`python app.py` (local mode, temporary SQLite DATA_DIR) for one test module."""
    bot = BotProcess(env=app_env, name="bot", artifacts_dir=module_artifacts, startup_timeout=60.0)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app_playground(app_bot: BotProcess, module_artifacts: Path) -> AsyncIterator[Playground]:
    """The Agents Playground in front of `app_bot`, for one test module."""
    if not PLAYGROUND_BIN.exists():
        missing(f"{PLAYGROUND_BIN} missing (npm ci)")
    pg = Playground(app_bot, name="playground", artifacts_dir=module_artifacts)
    await pg.start()
    try:
        yield pg
    finally:
        await pg.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app_browser() -> AsyncIterator[Any]:
    """Debian's Chromium for a module whose tests run in the module's event loop."""
    async with chromium() as browser:
        yield browser
