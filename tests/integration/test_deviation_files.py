"""The supplier CSV sent the Teams way (tenant mode), over HTTP against the real app with the
Connector stub and an upload server standing in for the requester's OneDrive: the file consent
card with the file's size, accept uploads exactly the CSV bytes and posts the file card, decline
sends nothing but a plain notice, and another user's answer with the same context gets nothing."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.deviation_files import CONSENT_TYPE, INFO_TYPE
from procurement.deviations.effects import SendSupplierExport
from tests.integration.bot_harness import OLA, OLA_CHAT, Bot, activity, texts_of
from tests.integration.test_deviation_reports import PER, PER_CHAT, SUPPLIER, press, send_report
from tests.integration.test_deviation_reports import dv_bot as dv_bot  # the fixture, reused


@dataclass
class Uploads:
    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
async def uploads() -> AsyncIterator[Uploads]:
    found = Uploads()

    async def put(request: web.Request) -> web.Response:
        found.received.append((dict(request.headers), await request.read()))
        return web.json_response({"id": "drive-item-1", "name": request.match_info["name"]}, status=201)

    app = web.Application()
    app.router.add_put("/upload/{name}", put)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    found.url = str(server.make_url("/upload/"))
    yield found
    await server.close()


@pytest.fixture
def teams_bot(dv_bot: Bot) -> Bot:
    """The app as in the tenant: the export goes as a Teams file (local mode writes it to disk).
    Plain http for the upload server on loopback."""
    effects = dv_bot.runtime.outbox.handlers[SendSupplierExport].__self__
    effects.teams_files = True
    effects.allow_http_upload = True
    return dv_bot


def attachments(bot: Bot, chat: str, kind: str) -> list[dict[str, Any]]:
    return [a for act in bot.stub.activities(chat) for a in act.get("attachments") or [] if a["contentType"] == kind]


async def request_export(bot: Bot) -> tuple[list[str], dict[str, Any]]:
    refs = [await send_report(bot), await send_report(bot, severity="critical")]
    summary = (await bot.say("avvik for renhold øst", user=OLA))[-1]
    await press(bot, summary, "deviation.export", user=OLA)
    await bot.drain()
    consents = attachments(bot, OLA_CHAT, CONSENT_TYPE)
    assert len(consents) == 1
    return refs, consents[0]


async def answer(bot: Bot, user: str, action: str, context: Any, upload_url: str = "") -> None:
    value: dict[str, Any] = {"type": "fileUpload", "action": action, "context": context}
    if upload_url:
        value["uploadInfo"] = {
            "name": "avvik.csv",
            "uploadUrl": upload_url,
            "contentUrl": "https://kommune-my.sharepoint.com/personal/ola/Documents/Applications/avvik.csv",
            "uniqueId": "1150D938-8870-4044-9F2C-5BBDEBA70C8C",
            "fileType": "csv",
        }
    status, body = await bot.post(activity(bot.stub.url, "invoke", name="fileConsent/invoke", value=value, user=user))
    assert status == 200 and not body, (status, body)
    await bot.drain()


async def test_accept_uploads_exactly_the_csv_and_posts_the_file_card(teams_bot: Bot, uploads: Uploads) -> None:
    bot = teams_bot
    refs, consent = await request_export(bot)
    name = consent["name"]
    assert name.startswith("avvik-renhold-ost-as-") and name.endswith(".csv")
    content = consent["content"]
    assert SUPPLIER in content["description"] and "2 avvik" in content["description"]
    assert content["acceptContext"] == content["declineContext"] and set(content["acceptContext"]) == {"exportId"}
    assert not list((bot.runtime.settings.data_dir / "exports").glob("avvik-*.csv"))  # not written as in local mode

    await answer(bot, OLA, "accept", content["acceptContext"], uploads.url + name)
    assert len(uploads.received) == 1
    headers, body = uploads.received[0]
    n = content["sizeInBytes"]
    assert len(body) == n and headers["Content-Range"] == f"bytes 0-{n - 1}/{n}" and headers["Content-Length"] == str(n)
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][0] == "Referanse" and {r[0] for r in rows[1:]} == set(refs)
    assert "Kari" not in body.decode("utf-8-sig")
    infos = attachments(bot, OLA_CHAT, INFO_TYPE)
    assert len(infos) == 1
    assert infos[0]["name"] == "avvik.csv" and infos[0]["contentUrl"].endswith("/avvik.csv")
    assert infos[0]["content"] == {"uniqueId": "1150D938-8870-4044-9F2C-5BBDEBA70C8C", "fileType": "csv"}

    # Teams repeating the invoke, or a second press: uploaded and shown once.
    await answer(bot, OLA, "accept", content["acceptContext"], uploads.url + name)
    assert len(uploads.received) == 1 and len(attachments(bot, OLA_CHAT, INFO_TYPE)) == 1


async def test_decline_sends_nothing_and_says_so(teams_bot: Bot, uploads: Uploads) -> None:
    bot = teams_bot
    _, consent = await request_export(bot)
    before = len(bot.stub.activities(OLA_CHAT))
    await answer(bot, OLA, "decline", consent["content"]["declineContext"])
    assert not uploads.received and not attachments(bot, OLA_CHAT, INFO_TYPE)
    told = bot.stub.cards(OLA_CHAT)[-1]
    assert len(bot.stub.activities(OLA_CHAT)) == before + 1
    assert "CSV-filen ble ikke sendt" in texts_of(told) and consent["name"] in texts_of(told)
    # Accepting afterwards finds nothing: the bytes are gone from the server.
    await answer(bot, OLA, "accept", consent["content"]["acceptContext"], uploads.url + "x.csv")
    assert not uploads.received and not attachments(bot, OLA_CHAT, INFO_TYPE)


async def test_another_users_answer_with_the_same_context_gets_nothing(teams_bot: Bot, uploads: Uploads) -> None:
    bot = teams_bot
    _, consent = await request_export(bot)
    before = {chat: len(bot.stub.activities(chat)) for chat in (OLA_CHAT, PER_CHAT)}
    await answer(bot, PER, "accept", consent["content"]["acceptContext"], uploads.url + "stolen.csv")
    await answer(bot, PER, "decline", consent["content"]["declineContext"])
    assert not uploads.received
    assert {chat: len(bot.stub.activities(chat)) for chat in (OLA_CHAT, PER_CHAT)} == before
    # Forged or broken contexts are answered 200 and do nothing.
    for context in ({"exportId": "../../etc/passwd"}, {"exportId": "0" * 32}, "x", None):
        await answer(bot, PER, "accept", context, uploads.url + "x.csv")
    assert not uploads.received
    # The owner still can.
    await answer(bot, OLA, "accept", consent["content"]["acceptContext"], uploads.url + "mine.csv")
    assert len(uploads.received) == 1
