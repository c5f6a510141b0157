"""`innkjop-import-contracts` as a shell runs it: one accepted form of DATABASE_URL (the bot's),
a clear message and exit status 2 instead of a driver's error, and `./dev reminders`' command.

Runs the installed console scripts in subprocesses with an environment of our own (no `.env`
effects: the variables given win and DATA_DIR is a temporary directory).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from procurement.shared.calendar import OSLO

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "innkjop-import-contracts"

CSV = (
    "Avtalenummer;Leverandør;Avtalenavn;Kategori;Startdato;Sluttdato;Avtaleforvalter\n"
    "KAV-2024-0500;Renhold Øst AS;Renhold av skoler;Tjenester;01.01.2025;31.12.2030;"
    "Kari Nordmann <kari.nordmann@kommune.example.no>\n"
)


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTIONS__") and k != "DATABASE_URL"}
    base.update({"LOCAL_MODE": "true", "DATA_DIR": str(tmp_path / "data")})
    base.update(env)
    return subprocess.run(args, cwd=REPO, env=base, capture_output=True, text=True, timeout=60)


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "export.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def contracts_in(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT external_ref FROM contracts")]


def test_the_default_database_is_the_bots_data_dir(tmp_path: Path, export: Path) -> None:
    done = run([str(SCRIPT), str(export)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Opprettet: 1" in done.stdout
    assert contracts_in(tmp_path / "data" / "innkjop.db") == ["KAV-2024-0500"]


@pytest.mark.parametrize("how", ["env", "flag"])
@pytest.mark.parametrize("scheme", ["sqlite:///", "sqlite+aiosqlite:///"])
def test_a_plain_sqlite_url_works_as_for_the_bot(tmp_path: Path, export: Path, how: str, scheme: str) -> None:
    db = tmp_path / "elsewhere" / "register.db"
    url = f"{scheme}{db}"
    if how == "env":
        done = run([str(SCRIPT), str(export)], tmp_path, DATABASE_URL=url)
    else:
        done = run([str(SCRIPT), str(export), "--database-url", url], tmp_path)
    assert done.returncode == 0, done.stderr
    assert contracts_in(db) == ["KAV-2024-0500"]


@pytest.mark.parametrize("how", ["env", "flag"])
def test_an_unreadable_url_is_refused_naming_only_its_scheme(tmp_path: Path, export: Path, how: str) -> None:
    url = "mysql://user:hemmelig@db.kommune.no/innkjop"
    if how == "env":
        done = run([str(SCRIPT), str(export)], tmp_path, DATABASE_URL=url)
    else:
        done = run([str(SCRIPT), str(export), "--database-url", url], tmp_path)
    assert done.returncode == 2
    assert "Importen stoppet" in done.stderr
    assert "DATABASE_URL must start with postgresql://, postgres:// or sqlite:///" in done.stderr
    assert "got scheme 'mysql'" in done.stderr
    assert "hemmelig" not in done.stderr + done.stdout and "Traceback" not in done.stderr


def test_a_database_that_cannot_be_opened_gives_a_message_not_a_driver_error(tmp_path: Path, export: Path) -> None:
    a_directory = tmp_path / "not-a-file.db"
    a_directory.mkdir()
    done = run([str(SCRIPT), str(export), "--database-url", f"sqlite:///{a_directory}"], tmp_path)
    assert done.returncode == 2
    assert "Importen stoppet: databasen kunne ikke åpnes (OperationalError)" in done.stderr
    assert "Traceback" not in done.stderr and "sqlalchemy" not in done.stderr.lower()
    assert "background on this error" not in done.stderr  # SQLAlchemy's own wording


def test_without_local_mode_or_an_app_the_import_says_what_to_set(tmp_path: Path, export: Path) -> None:
    done = run([str(SCRIPT), str(export)], tmp_path, LOCAL_MODE="")
    assert done.returncode == 2
    assert "Importen stoppet" in done.stderr and "LOCAL_MODE=true" in done.stderr
    assert "Traceback" not in done.stderr


def test_send_reminders_now_makes_due_reminders_due_and_reports_the_next(tmp_path: Path, export: Path) -> None:
    # Ends 31.12.2030: nothing is due yet; the next due date is reported.
    assert run([str(SCRIPT), str(export)], tmp_path).returncode == 0
    done = run([sys.executable, "app.py", "send-reminders-now"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Ingen påminnelser med forfall i dag eller tidligere venter på sending" in done.stdout
    assert "Neste påminnelse forfaller 31.12.2029" in done.stdout  # 12 months before the end


def test_send_reminders_now_sends_a_reminder_held_for_working_hours(tmp_path: Path) -> None:
    today = datetime.now(OSLO).date()
    end = today + timedelta(days=61)  # the 3-month reminder is due now
    export = tmp_path / "soon.csv"
    export.write_text(
        "Avtalenummer;Leverandør;Avtalenavn;Kategori;Startdato;Sluttdato;Avtaleforvalter\n"
        f"KAV-2024-0600;Vaktmester AS;Vaktmester;Tjenester;01.01.2024;{end:%d.%m.%Y};"
        "siri.johansen@kommune.example.no\n",
        encoding="utf-8",
    )
    assert run([str(SCRIPT), str(export)], tmp_path).returncode == 0
    db = tmp_path / "data" / "innkjop.db"
    # As planned in the evening: held until the next working morning (no bot runs here to send it).
    held = (datetime.now(UTC) + timedelta(hours=14)).replace(tzinfo=None).isoformat(sep=" ")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE reminders SET send_after = ?", (held,))
        [(kind,)] = conn.execute("SELECT kind FROM reminders WHERE due_date <= ?", (today.isoformat(),)).fetchall()
    assert kind == "end_3m"
    done = run([sys.executable, "app.py", "send-reminders-now"], tmp_path, REMINDER_POLL_SECONDS="5")
    assert done.returncode == 0, done.stderr
    assert "1 påminnelse sendes nå av boten som kjører (./dev run), innen 5 s" in done.stdout
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT kind, send_after FROM reminders").fetchall())
    assert datetime.fromisoformat(rows.pop("end_3m")) <= datetime.now(UTC).replace(tzinfo=None)
    assert all(datetime.fromisoformat(v) > datetime.now(UTC).replace(tzinfo=None) for v in rows.values())
    # Outside local mode it refuses (in production, working hours are the rule).
    refused = run(
        [sys.executable, "app.py", "send-reminders-now"],
        tmp_path,
        LOCAL_MODE="false",
        CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID="11111111-2222-3333-4444-555555555555",
    )
    assert refused.returncode == 2
    assert "bare for lokal modus" in refused.stderr
