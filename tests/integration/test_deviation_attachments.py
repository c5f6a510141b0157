"""Photos and files sent in the personal chat while a deviation report is open, over HTTP with
the Connector stub serving the files (the Playground cannot send files): a PNG and a PDF kept,
a 12 MB file and an .exe refused with the rest kept, a 403 download explained; on sending they
are stored under DATA_DIR/attachments/<ref>/ and their bytes leave the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from procurement.store.tables import DeviationAttachment
from tests.integration.bot_harness import KARI, OLA, Bot, activity, texts_of
from tests.integration.test_deviation_reports import (
    FOLLOW_UP,
    PER,
    details,
    press,
    ref_of,
    what,
)
from tests.integration.test_deviation_reports import dv_bot as dv_bot  # the fixture

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
FILE_INFO = "application/vnd.microsoft.teams.file.download.info"

_ = (FOLLOW_UP, PER)


def file_attachment(name: str, url: str, file_type: str) -> dict[str, Any]:
    return {
        "contentType": FILE_INFO,
        "name": name,
        "content": {"downloadUrl": url, "uniqueId": name, "fileType": file_type},
    }


async def send_files(bot: Bot, attachments: list[dict[str, Any]], user: str = KARI) -> dict[str, Any]:
    from tests.integration.bot_harness import USERS

    chat = USERS[user][1]
    before = len(bot.stub.cards(chat))
    status, _ = await bot.post(activity(bot.stub.url, text="", attachments=attachments, user=user))
    assert status in (200, 201, 202)
    cards = bot.stub.cards(chat)[before:]
    assert len(cards) == 1, [texts_of(c) for c in cards]
    return cards[0]


async def test_files_are_screened_kept_and_stored_with_the_report(dv_bot: Bot) -> None:
    bot = dv_bot
    stub = bot.stub
    form = (await bot.say("avvik"))[-1]
    card = await press(bot, form, "deviation.next", what())
    step3 = await press(bot, card, "deviation.next", details())
    answer = await send_files(
        bot,
        [
            file_attachment("Bilde av gangen.png", stub.serve_file("gang.png", PNG), "png"),
            file_attachment("rapport.pdf", stub.serve_file("rapport.pdf", PDF), "pdf"),
            file_attachment("stor.png", stub.serve_file("stor.png", PNG + b"\x00" * (12 * 1024 * 1024)), "png"),
            file_attachment("virus.exe", stub.serve_file("virus.exe", b"MZ\x90\x00"), "exe"),
            file_attachment("IMG_0001.jpg", stub.serve_file("kamera.jpg", b"", status=403), "jpg"),
            {"contentType": "image/png", "contentUrl": stub.serve_file("innlimt.png", PNG), "name": "innlimt.png"},
        ],
    )
    text = texts_of(answer)
    assert "Lagt ved: Bilde av gangen.png" in text and "Lagt ved: rapport.pdf" in text
    assert "Lagt ved: innlimt.png" in text
    assert "«stor.png» ble ikke lagt ved: filen er større enn 10 MB" in text
    assert "«virus.exe» ble ikke lagt ved: bare JPEG, PNG, HEIC, PDF" in text
    assert "Vi fikk ikke hentet «IMG_0001.jpg» fra Teams" in text and "send det som fil i stedet" in text
    assert "Resten av avviksmeldingen er tatt vare på." in text
    assert "3 av 10 vedlegg lagt ved" in text
    # The .exe was never fetched; no token went to a pre-authenticated download URL.
    fetched = [name for name, _ in stub.downloads]
    assert "virus.exe" not in fetched
    assert all("Authorization" not in headers for _, headers in stub.downloads)

    receipt = await press(bot, step3, "deviation.submit")
    ref = ref_of(receipt)
    assert "3 av 10 vedlegg" in texts_of(receipt)
    await bot.drain()
    folder = Path(bot.runtime.settings.data_dir) / "attachments" / ref
    assert sorted(p.name for p in folder.iterdir()) == ["Bilde av gangen.png", "innlimt.png", "rapport.pdf"]
    assert (folder / "rapport.pdf").read_bytes() == PDF
    rows = await bot.rows(DeviationAttachment)
    assert all(r.content is None and r.location for r in rows)
    added = [a for a in await bot.audit(ref) if a.action == "deviation.attachment_added"]
    assert len(added) == 3
    # The avtaleforvalter's card lists them.
    manager = [texts_of(c) for c in bot.stub.cards("a:ola-personal") if ref in texts_of(c)]
    assert manager and "rapport.pdf" in manager[-1]
    _ = OLA


async def test_files_without_an_open_report_are_an_ordinary_message(dv_bot: Bot) -> None:
    bot = dv_bot
    answer = await send_files(bot, [file_attachment("a.png", bot.stub.serve_file("a.png", PNG), "png")])
    assert "Innkjøpsassistenten" in texts_of(answer)  # the welcome, nothing attached
    assert await bot.rows(DeviationAttachment) == []


@pytest.mark.parametrize("count", [11])
async def test_at_most_ten_files_per_report(dv_bot: Bot, count: int) -> None:
    bot = dv_bot
    await bot.say("avvik")
    files = [file_attachment(f"f{i}.png", bot.stub.serve_file(f"f{i}.png", PNG), "png") for i in range(count)]
    answer = await send_files(bot, files)
    assert "10 av 10 vedlegg lagt ved" in texts_of(answer)
    assert "høyst 10 vedlegg" in texts_of(answer)
    assert len(await bot.rows(DeviationAttachment)) == 10
