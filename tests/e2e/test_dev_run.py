"""The README's first command: `./dev run`, then opening the Playground shows the welcome card.

Runs `./dev run` from the repo (with the .venv and node_modules already there, so it installs
nothing) on free ports and a temporary DATA_DIR, waits for its "ready" banner, opens the
Playground in Debian's Chromium without typing anything (opening the page installs the app in
the current user's chat: installationUpdate/conversationUpdate) and expects the welcome card.
Then Ctrl-C (SIGINT to its process group, as a terminal does) must stop the bot and the
Playground quietly with status 130.

`./dev run --as siri` makes Siri the Playground's current user: the README's import command,
run as written next to it (same DATA_DIR), registers a contract she manages that ends in two
months, `./dev reminders` sends the due reminder now, and it appears in Siri's chat in the page.
The Playground stopping on its own SIGINT (exit 0) is a Ctrl-C too, not an error.
Output in test-artifacts/e2e/test_dev_run.../: dev-run.log, welcome.png, reminder.png.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from procurement.shared.calendar import OSLO
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
    "REMINDER_WORKING_HOURS",
    "REMINDER_POLL_SECONDS",
)

# Start `./dev run` as a terminal would: SIGINT at its default even if ours is ignored.
_LAUNCH = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv('./dev', ['./dev', *sys.argv[1:]])"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

SIRI_EMAIL = "siri.johansen@kommune.example.no"


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


def _group_pids(pgid: int) -> dict[int, str]:
    """The processes of a process group and their command lines (from /proc)."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # after "pid (comm)": state, ppid, pgrp
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
    return found


def _skip_without_tools() -> None:
    if not (REPO_ROOT / ".venv" / "bin" / "python").exists() or not PLAYGROUND_BIN.exists():
        pytest.skip(".venv or node_modules missing (./dev run would install them first)")


def _dev_env(data_dir: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REMOVE}
    env.update(DATA_DIR=data_dir, **extra)
    return env


@dataclass
class DevRun:
    proc: asyncio.subprocess.Process
    log_path: Path
    data_dir: str
    bot_port: int
    pg_port: int

    @property
    def pgid(self) -> int:
        return self.proc.pid

    @property
    def base(self) -> str:
        return f"http://localhost:{self.pg_port}"

    def log(self) -> str:
        return _ANSI.sub("", self.log_path.read_text(encoding="utf-8", errors="replace"))

    def banner(self) -> str:
        text = self.log()
        return text[text.index("== ready") :]

    async def stopped(self) -> int:
        """Wait for ./dev run to end; every process of it gone and both ports closed."""
        returncode = await asyncio.wait_for(self.proc.wait(), 15)
        for _ in range(50):
            if not _group_alive(self.pgid):
                break
            await asyncio.sleep(0.1)
        assert not _group_alive(self.pgid), "processes of ./dev run left after it stopped"
        assert not _listening(self.bot_port), f"the bot still listens on {self.bot_port}"
        assert not _listening(self.pg_port), f"the Playground still listens on {self.pg_port}"
        return returncode


@asynccontextmanager
async def dev_run(
    e2e_artifacts: Path, unused_port: Callable[[], int], *args: str, wait_ready: bool = True
) -> AsyncIterator[DevRun]:
    """`./dev run ARGS` in its own session (its pid is the group id) on free ports."""
    _skip_without_tools()
    bot_port, pg_port = unused_port(), unused_port()
    log_path = e2e_artifacts / "dev-run.log"
    with tempfile.TemporaryDirectory(prefix="dev-run-data-") as data_dir:
        env = _dev_env(data_dir, PORT=str(bot_port), PLAYGROUND_PORT=str(pg_port))
        with log_path.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _LAUNCH,
                "run",
                *args,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        run = DevRun(proc, log_path, data_dir, bot_port, pg_port)
        try:
            deadline = time.monotonic() + 45
            # The banner is printed line by line: wait for its last line, not only its first.
            while wait_ready and not _banner_done(run.log()):
                assert proc.returncode is None, f"./dev run exited {proc.returncode}:\n{run.log()}"
                assert time.monotonic() < deadline, f"./dev run not ready:\n{run.log()}"
                await asyncio.sleep(0.2)
            yield run
        finally:
            if _group_alive(run.pgid):
                os.killpg(run.pgid, signal.SIGKILL)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


@asynccontextmanager
async def playground_page(browser: Any, base: str) -> AsyncIterator[Any]:
    """The Playground's page, offline (every request off loopback is refused)."""
    page = await browser.new_page(viewport={"width": 1400, "height": 1000}, locale="nb-NO")
    outside: list[str] = []

    async def loopback_only(route: Any) -> None:
        outside.append(route.request.url)
        await route.abort()

    await page.route(lambda url: not url.startswith(base), loopback_only)
    try:
        await page.goto(base + "/", wait_until="load")
        yield page
    finally:
        await page.close()
    assert all("127.0.0.1" not in url and "localhost" not in url for url in outside)


async def _welcome_card(page: Any) -> Any:
    # Nothing typed: opening the page is enough for the welcome card.
    card = page.locator(".ac-adaptiveCard").filter(has_text="Innkjøpsassistenten")
    await card.first.wait_for(timeout=20_000)
    card_text = await card.first.inner_text()
    assert "behovsmeldinger til Innkjøpsseksjonen" in card_text
    assert await card.first.get_by_role("button", name="Ny behovsmelding").is_visible()
    return card.first


def _banner_done(text: str) -> bool:
    """The ready banner has reached its last line ("Ctrl-C stops …")."""
    return "== ready" in text and "Ctrl-C stops" in text[text.index("== ready") :]


def _assert_quiet_stop(run: DevRun) -> None:
    text = run.log()
    assert "== stopped" in text
    # The Playground's or the bot's normal exit on Ctrl-C is no error.
    assert "exited (status" not in text and "!!" not in text, text


async def test_dev_run_shows_the_welcome_card_and_ctrl_c_stops_everything(
    browser: Any, e2e_artifacts: Path, unused_port: Callable[[], int]
) -> None:
    async with dev_run(e2e_artifacts, unused_port) as run:
        assert "LOCAL MODE" in run.log()
        banner = run.banner()
        assert f"Open http://localhost:{run.pg_port} in your browser" in banner
        assert "LOCAL MODE" in banner
        assert "Ctrl-C stops" in banner
        assert "You are Kari Nordmann in the Playground; ./dev run --as ingrid" in banner
        assert (Path(run.data_dir) / "innkjop.db").exists()

        async with playground_page(browser, run.base) as page:
            await _welcome_card(page)
            await page.screenshot(path=str(e2e_artifacts / "welcome.png"))

        # Ctrl-C in the terminal: SIGINT to the whole foreground process group.
        os.killpg(run.pgid, signal.SIGINT)
        assert await run.stopped() == 130, run.log()
        _assert_quiet_stop(run)


def _readme_import_command() -> str:
    """The README's import command, exactly as written (the first line of its code block)."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Importing contracts") :]
    block = section[section.index("```bash") + len("```bash") : section.index("```", section.index("```bash") + 7)]
    line = block.strip().splitlines()[0]
    return line.split("#", 1)[0].strip()


def _siri_contract_csv(path: Path) -> date:
    """One contract managed by Siri that ends in two months: its 3-month reminder is due now."""
    today = datetime.now(OSLO).date()
    end = today + timedelta(days=61)
    start = end - timedelta(days=4 * 365)
    path.write_text(
        "Avtalenummer;Leverandør;Avtalenavn;Kategori;Startdato;Sluttdato;Avtaleforvalter\n"
        f"KAV-2023-0777;Vaktmester Vest AS;Vaktmestertjenester Teknisk;Tjenester;"
        f"{start:%d.%m.%Y};{end:%d.%m.%Y};Siri Johansen <{SIRI_EMAIL}>\n",
        encoding="utf-8",
    )
    return end


async def _run(command: str, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_shell(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode("utf-8", "replace")


async def test_dev_run_as_siri_the_readme_import_and_dev_reminders_bring_her_reminder(
    browser: Any, e2e_artifacts: Path, unused_port: Callable[[], int]
) -> None:
    async with dev_run(e2e_artifacts, unused_port, "--as", "siri") as run:
        assert "You are Siri Johansen (avtaleforvalter) in the Playground." in run.banner()
        # The repo's yml is untouched; the Playground runs in a copy with Siri as current user.
        copy = (Path(run.data_dir) / "playground-as" / ".m365agentsplayground.yml").read_text(encoding="utf-8")
        assert "currentUser:\n  id: 29:siri-johansen-a4" in copy
        assert "currentUser:\n  id: 29:kari-nordmann-a2" in (REPO_ROOT / ".m365agentsplayground.yml").read_text(
            encoding="utf-8"
        )

        async with playground_page(browser, run.base) as page:
            await _welcome_card(page)  # Siri's chat: the bot now knows where to reach her

            # The README's import command as written, next to ./dev run (its DATA_DIR, its defaults).
            export = Path(run.data_dir) / "export.csv"
            end = _siri_contract_csv(export)
            command = _readme_import_command()
            assert command == "LOCAL_MODE=true .venv/bin/innkjop-import-contracts export.csv"
            env = _dev_env(run.data_dir)
            code, out = await _run(command.replace("export.csv", shlex.quote(str(export))), env)
            assert code == 0, out
            assert "Opprettet: 1" in out and "Avvist: 0" in out, out

            # Sent now whatever the hour (outside working hours it would wait until 08:00; in
            # them the bot's 5 s round may have sent it already).
            code, out = await _run("./dev reminders", env)
            assert code == 0, out
            assert "sendes nå" in out or "venter på sending" in out, out

            card = page.locator(".ac-adaptiveCard").filter(has_text="KAV-2023-0777")
            await card.first.wait_for(timeout=30_000)
            card_text = await card.first.inner_text()
            assert "Vaktmestertjenester Teknisk" in card_text
            assert f"{end:%d.%m.%Y}" in card_text
            await page.screenshot(path=str(e2e_artifacts / "reminder.png"))

        # The Playground's own exit on SIGINT (status 0) while the script has not seen a Ctrl-C:
        # the same quiet stop.
        playground = [pid for pid, cmd in _group_pids(run.pgid).items() if "agentsplayground" in cmd]
        assert playground, _group_pids(run.pgid)
        for pid in playground:
            os.kill(pid, signal.SIGINT)
        assert await run.stopped() == 130, run.log()
        _assert_quiet_stop(run)


async def test_dev_playground_as_siri_next_to_dev_run_gets_her_reminder(
    browser: Any, e2e_artifacts: Path, unused_port: Callable[[], int]
) -> None:
    async with dev_run(e2e_artifacts, unused_port) as run:
        side_port = unused_port()
        side_log = e2e_artifacts / "dev-playground.log"
        env = _dev_env(run.data_dir, PORT=str(run.bot_port), PLAYGROUND_PORT=str(side_port))
        with side_log.open("wb") as out:
            side = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _LAUNCH,
                "playground",
                "--as",
                "siri",
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def side_text() -> str:
            return _ANSI.sub("", side_log.read_text(encoding="utf-8", errors="replace"))

        try:
            deadline = time.monotonic() + 45
            while not _banner_done(side_text()):
                assert side.returncode is None, f"./dev playground exited {side.returncode}:\n{side_text()}"
                assert time.monotonic() < deadline, f"./dev playground not ready:\n{side_text()}"
                await asyncio.sleep(0.2)
            assert f"Open http://localhost:{side_port} in your browser: you are Siri Johansen" in side_text()

            async with (
                playground_page(browser, run.base) as kari_page,
                playground_page(browser, f"http://localhost:{side_port}") as siri_page,
            ):
                await _welcome_card(kari_page)
                await _welcome_card(siri_page)
                export = Path(run.data_dir) / "export.csv"
                _siri_contract_csv(export)
                env = _dev_env(run.data_dir)
                code, said = await _run(
                    f"LOCAL_MODE=true .venv/bin/innkjop-import-contracts {shlex.quote(str(export))}", env
                )
                assert code == 0, said
                code, said = await _run("./dev reminders", env)
                assert code == 0, said
                # Siri's reminder in Siri's page (the bot answers through the Playground it saw her on).
                card = siri_page.locator(".ac-adaptiveCard").filter(has_text="KAV-2023-0777")
                await card.first.wait_for(timeout=30_000)
                await siri_page.screenshot(path=str(e2e_artifacts / "siri.png"))
                assert await kari_page.locator(".ac-adaptiveCard").filter(has_text="KAV-2023-0777").count() == 0

            # Ctrl-C on the side Playground stops it alone, quietly.
            os.killpg(side.pid, signal.SIGINT)
            assert await asyncio.wait_for(side.wait(), 15) == 130, side_text()
            assert "exited (status" not in side_text() and "!!" not in side_text()
            assert not _listening(side_port)
            assert run.proc.returncode is None and _listening(run.bot_port)
        finally:
            if _group_alive(side.pid):
                os.killpg(side.pid, signal.SIGKILL)
            if side.returncode is None:
                side.kill()
                await side.wait()
        os.killpg(run.pgid, signal.SIGINT)
        assert await run.stopped() == 130, run.log()
        _assert_quiet_stop(run)


async def test_dev_run_as_an_unknown_person_lists_the_names(
    e2e_artifacts: Path, unused_port: Callable[[], int]
) -> None:
    async with dev_run(e2e_artifacts, unused_port, "--as", "bob", wait_ready=False) as run:
        code = await asyncio.wait_for(run.proc.wait(), 30)
        assert code == 2, run.log()
        assert "unknown person 'bob' for --as: choose one of kari, ingrid, per, siri, lars, nina" in run.log()
        assert "== ready" not in run.log()
