"""Contract reminders end to end: a contract imported with the product's own CLI, whose
option notice deadline is two months ahead, gives a reminder card in the avtaleforvalter's
(Kari's) personal chat in the Playground; 'Påminn om 7 dager' reschedules it; 'Ikke
aktuelt' needs a reason; 'Start ny behovsmelding' opens a prefilled needs-report form.

Reminders normally go out only in Norwegian working hours (08–16 Europe/Oslo, working
days). The bot and the import run with REMINDER_WORKING_HOURS=always, so the test gives
the same result at any hour.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from procurement.shared.calendar import OSLO
from tests.e2e.conftest import KARI, app_database_path
from tests.e2e.playground import (
    REPO_ROOT,
    BotMessage,
    Playground,
    button_titles,
    card_inputs,
    card_text,
    field_messages,
    find_input,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

KARI_EMAIL = "kari.nordmann@kommune.example.no"
SNOOZED = ("KAV-2025-0101", "Matombringing til hjemmeboende", "Norsk Storkjøkken AS")
RENEWED = ("KAV-2025-0102", "Vaktmestertjenester i barnehagene", "Byggservice Vest AS")


@pytest.fixture(scope="module")
def app_env_overrides() -> dict[str, str | None]:
    return {"REMINDER_WORKING_HOURS": "always"}


def oslo_today() -> date:
    return datetime.now(OSLO).date()


def nb_date(value: date) -> str:
    return value.strftime("%d.%m.%Y")


def contract_csv(path: Path) -> tuple[date, date]:
    """A KAV export with two contracts managed by Kari; first option's notice deadline
    two months ahead, so the 3-month option reminder is due now and nothing else is."""
    today = oslo_today()
    start = today - timedelta(days=365)
    end = today + timedelta(days=400)
    notice = today + timedelta(days=61)
    header = (
        "Avtalenummer;Leverandør;Avtalenavn;Kategori;Startdato;Sluttdato;Opsjoner;"
        "Opsjonsfrist;Avtaleverdi;Avtaletype;Avtaleforvalter"
    )
    rows = [
        f"{ref};{supplier};{title};Tjenester;{nb_date(start)};{nb_date(end)};1+1;"
        f"{nb_date(notice)};2 400 000;Enkeltkontrakt;{KARI_EMAIL}"
        for ref, title, supplier in (SNOOZED, RENEWED)
    ]
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return end, notice


async def run_import(csv_path: Path, db_path: Path, env: dict[str, str | None]) -> str:
    """`python app.py import-contracts FILE --database-url URL`, as an operator
    would run it next to the running bot."""
    environment = dict(os.environ)
    for key, value in env.items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "app.py",
        "import-contracts",
        str(csv_path),
        "--database-url",
        f"sqlite+aiosqlite:///{db_path}",
        cwd=str(REPO_ROOT),
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    output = out.decode("utf-8", "replace")
    assert proc.returncode == 0, f"import failed ({proc.returncode}):\n{output}"
    return output


def reminder_rows(db_path: Path, external_ref: str) -> list[sqlite3.Row]:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return list(
            db.execute(
                "SELECT r.* FROM reminders r JOIN contracts c ON c.id = r.contract_id "
                "WHERE c.external_ref = ? ORDER BY r.id",
                (external_ref,),
            )
        )


def as_utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def is_reminder_for(title: str) -> Callable[[BotMessage], bool]:
    def match(message: BotMessage) -> bool:
        return message.card is not None and f"{title}: Fristen for å utløse opsjon 1 er" in message.all_text

    return match


async def test_option_reminder_snooze_and_new_needs_report(
    app_playground: Playground, app_data_dir: Path, app_env: dict[str, str | None]
) -> None:
    pg = app_playground
    db_path = app_database_path(app_data_dir)
    kari_chat = pg.personal_chat_id

    # Kari has talked to the bot: it knows her personal chat for proactive messages.
    await pg.send_text(kari_chat, "hei")
    await pg.next_message("Innkjøpsassistenten", conversation_id=kari_chat)

    csv_path = app_data_dir / "kav-eksport.csv"
    end, notice = contract_csv(csv_path)
    output = await run_import(csv_path, db_path, app_env)
    assert "Opprettet: 2" in output and "Avvist: 0" in output, output

    # -- both reminders arrive in Kari's chat -----------------------------------------
    first = await pg.next_message(is_reminder_for(SNOOZED[1]), 20, conversation_id=kari_chat)
    second = await pg.next_message(is_reminder_for(RENEWED[1]), 20, conversation_id=kari_chat)
    for message, (ref, _title, supplier) in ((first, SNOOZED), (second, RENEWED)):
        assert message.event == "createMessage"
        assert message.message_id
        text = card_text(message.card)
        assert f"Fristen for å utløse opsjon 1 er {nb_date(notice)}, om 2 måneder" in text
        assert "Skal opsjon 1 utløses?" in text
        assert f"Avtalenummer: {ref}" in text
        assert f"Leverandør: {supplier}" in text
        assert button_titles(message.card) == [
            "Utløs opsjonen",
            "Start ny behovsmelding",
            "Ikke aktuelt",
            "Påminn om 7 dager",
        ]
    # One reminder per contract is due now (the option's 3-month notice), nothing else.
    await pg.expect_no_message(lambda m: m.card is not None and "Opsjon" in m.all_text, 2.0, conversation_id=kari_chat)
    for ref in (SNOOZED[0], RENEWED[0]):
        delivered = [r for r in reminder_rows(db_path, ref) if r["status"] == "delivered"]
        assert [r["kind"] for r in delivered] == ["option_notice_3m"]
        assert delivered[0]["recipient_aad_id"] == KARI

    # -- Påminn om 7 dager -----------------------------------------------------------
    pressed = datetime.now(UTC)
    result = await pg.click(first, "Påminn om 7 dager")
    assert result is not None and result.card is not None
    text = card_text(result.card)
    assert "påminnes om 7 dager" in text
    assert "Kari Nordmann" in text
    assert button_titles(result.card) == []  # answered for now: no buttons until it comes back
    row = next(r for r in reminder_rows(db_path, SNOOZED[0]) if r["kind"] == "option_notice_3m")
    assert row["status"] == "pending"
    assert row["answer"] == "snooze"
    send_after = as_utc(row["send_after"])
    expected = pressed + timedelta(days=7)
    assert abs(send_after - expected) < timedelta(minutes=5), (send_after, expected)
    # The message itself shows the answer too (the bot edits it), and no new reminder
    # comes straight back.
    edited = await pg.next_message(is_reminder_for(SNOOZED[1]), conversation_id=kari_chat, event="updateMessage")
    assert edited.message_id == first.message_id
    assert "påminnes om 7 dager" in edited.all_text
    await pg.expect_no_message(
        lambda m: m.event == "createMessage" and is_reminder_for(SNOOZED[1])(m),
        2.5,
        conversation_id=kari_chat,
    )

    # -- Ikke aktuelt without a reason: the same card, a message at the reason field ---
    result = await pg.click(second, "Ikke aktuelt")
    assert result is not None and result.card is not None
    again = result.card
    assert f"{RENEWED[1]}: Fristen for å utløse opsjon 1 er" in card_text(again)
    messages = " ".join(field_messages(again, "reason"))
    assert "Skriv en kort begrunnelse" in messages, card_text(again)
    assert button_titles(again) == button_titles(second.card)  # still open, nothing recorded
    row = next(r for r in reminder_rows(db_path, RENEWED[0]) if r["kind"] == "option_notice_3m")
    assert row["status"] == "delivered" and row["answer"] is None

    # -- Start ny behovsmelding: a prefilled needs-report form -------------------------
    result = await pg.click(second.with_card(again), "Start ny behovsmelding")
    assert result is not None and result.card is not None
    assert "ny behovsmelding startet" in card_text(result.card)
    form = await pg.next_message(
        lambda m: m.card is not None and any(i.get("id") == "title" for i in card_inputs(m.card)),
        conversation_id=kari_chat,
    )
    assert find_input(form.card, "title")["value"] == f"Ny avtale: {RENEWED[1]}"
    assert find_input(form.card, "replaces_contract")["value"] == RENEWED[0]
    assert find_input(form.card, "category")["value"] == "services"
    assert find_input(form.card, "start_date")["value"] == (end + timedelta(days=1)).isoformat()
    assert "Send til Innkjøpsseksjonen" in button_titles(form.card)
    row = next(r for r in reminder_rows(db_path, RENEWED[0]) if r["kind"] == "option_notice_3m")
    assert row["answer"] == "new_needs_report"

    # -- Kari's contracts show the option deadline ------------------------------------
    await pg.send_text(kari_chat, "mine kontrakter")
    listing = await pg.next_message("Mine kontrakter", conversation_id=kari_chat)
    text = card_text(listing.card)
    assert SNOOZED[0] in text and RENEWED[0] in text
    assert f"opsjonsfrist {nb_date(notice)}" in text
    assert pg.failed_exchanges() == []
