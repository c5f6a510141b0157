"""The README's first command: `./dev run`, then opening the Playground shows the welcome card.

Runs `./dev run` from the repo (with the .venv and node_modules already there, so it installs
nothing) on free ports and a temporary DATA_DIR, waits for its "ready" banner, opens the
Playground in Debian's Chromium without typing anything (opening the page installs the app in
Kari's chat: installationUpdate/conversationUpdate) and expects the welcome card. Then Ctrl-C
(SIGINT to its process group, as a terminal does) must stop the bot and the Playground.
Output in test-artifacts/e2e/test_dev_run.../: dev-run.log and welcome.png.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.playground import PLAYGROUND_BIN, REPO_ROOT

# Variables a developer may have set that would make `./dev run` something else than what a
# newcomer gets: removed so dev's own defaults apply.
_REMOVE = (
    "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID",
    "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTSECRET",
    "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__TENANTID",
    "DATABASE_URL",
    "HOST",
    "LOCAL_MODE",
    "PLAYGROUND_CONFIG",
    "TEAMSAPPTESTER_BROWSER",
    "ALLOWED_TENANT_ID",
    "PROCUREMENT_USER_IDS",
    "INTAKE_CHANNEL_ID",
    "FOLLOWUP_CHANNEL_ID",
    "PROCUREMENT_TEAM_ID",
    "DEFAULT_LANGUAGE",
)

# Start `./dev run` as a terminal would: SIGINT at its default even if ours is ignored.
_LAUNCH = "import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv('./dev', ['./dev', 'run'])"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_dev_run_shows_the_welcome_card_and_ctrl_c_stops_everything(
    browser: Any, e2e_artifacts: Path, unused_port: Callable[[], int]
) -> None:
    if not (REPO_ROOT / ".venv" / "bin" / "python").exists() or not PLAYGROUND_BIN.exists():
        pytest.skip(".venv or node_modules missing (./dev run would install them first)")
    bot_port, pg_port = unused_port(), unused_port()
    log_path = e2e_artifacts / "dev-run.log"

    def log() -> str:
        return _ANSI.sub("", log_path.read_text(encoding="utf-8", errors="replace"))

    with tempfile.TemporaryDirectory(prefix="dev-run-data-") as data_dir:
        env = {k: v for k, v in os.environ.items() if k not in _REMOVE}
        env.update(PORT=str(bot_port), PLAYGROUND_PORT=str(pg_port), DATA_DIR=data_dir)
        with log_path.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _LAUNCH,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        pgid = proc.pid
        try:
            deadline = time.monotonic() + 45
            while "== ready" not in log():
                assert proc.returncode is None, f"./dev run exited {proc.returncode}:\n{log()}"
                assert time.monotonic() < deadline, f"./dev run not ready:\n{log()}"
                await asyncio.sleep(0.2)
            text = log()
            assert "LOCAL MODE" in text
            banner = text[text.index("== ready") :]
            assert f"Open http://localhost:{pg_port} in your browser" in banner
            assert "LOCAL MODE" in banner
            assert "Ctrl-C stops" in banner
            assert (Path(data_dir) / "innkjop.db").exists()

            base = f"http://localhost:{pg_port}"
            page = await browser.new_page(viewport={"width": 1400, "height": 1000}, locale="nb-NO")
            outside: list[str] = []

            async def loopback_only(route: Any) -> None:
                outside.append(route.request.url)
                await route.abort()

            await page.route(lambda url: not url.startswith(base), loopback_only)
            try:
                await page.goto(base + "/", wait_until="load")
                # Nothing typed: opening the page is enough for the welcome card.
                card = page.locator(".ac-adaptiveCard").filter(has_text="Innkjøpsassistenten")
                await card.first.wait_for(timeout=20_000)
                card_text = await card.first.inner_text()
                assert "behovsmeldinger til Innkjøpsseksjonen" in card_text
                assert await card.first.get_by_role("button", name="Ny behovsmelding").is_visible()
                await page.screenshot(path=str(e2e_artifacts / "welcome.png"))
            finally:
                await page.close()
            assert all("127.0.0.1" not in url and "localhost" not in url for url in outside)

            # Ctrl-C in the terminal: SIGINT to the whole foreground process group.
            os.killpg(pgid, signal.SIGINT)
            returncode = await asyncio.wait_for(proc.wait(), 15)
            assert returncode == 130, log()
            for _ in range(50):
                if not _group_alive(pgid):
                    break
                await asyncio.sleep(0.1)
            assert not _group_alive(pgid), "processes of ./dev run left after Ctrl-C"
            assert not _listening(bot_port), f"the bot still listens on {bot_port}"
            assert not _listening(pg_port), f"the Playground still listens on {pg_port}"
            assert "== stopped" in log()
        finally:
            if _group_alive(pgid):
                os.killpg(pgid, signal.SIGKILL)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
