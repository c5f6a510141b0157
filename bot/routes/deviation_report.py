"""Deviation-report routes: the form in three steps, sending, the follow-up card's status
changes and refresh, "mine avvik", "avvik for <leverandør>" and its CSV. The message action
("Meld avvik" on a message) and files sent in the chat reach the dialog from bot/agent.py."""

from __future__ import annotations

import re
from typing import Any

from bot.router import Router
from dialogs import deviation_report
from dialogs.base import Reply
from dialogs.services import Services
from procurement.access import Actor
from procurement.deviations.model import OfferedFile
from procurement.deviations.ports import IncomingFile

# The message action's command id, as the manifest declares it.
COMMAND_ID = "reportDeviation"
FILE_DOWNLOAD_INFO = "application/vnd.microsoft.teams.file.download.info"


def incoming_files(attachments: list[dict[str, Any]]) -> list[IncomingFile]:
    """Teams' file download infos (pre-authenticated `downloadUrl`) and inline images
    (`contentUrl`, fetched with the bot's token) as the dialog takes them."""
    files = []
    for item in attachments:
        kind = str(item.get("contentType") or "")
        name = str(item.get("name") or "")[:300]
        content = item.get("content") if isinstance(item.get("content"), dict) else {}
        assert isinstance(content, dict)
        if kind == FILE_DOWNLOAD_INFO:
            url = str(content.get("downloadUrl") or "")
            declared = str(content.get("fileType") or "") or None
            files.append(IncomingFile(OfferedFile(name or "vedlegg", declared), url, with_bot_token=False))
        elif item.get("contentUrl"):
            url = str(item.get("contentUrl") or "")
            fallback = "bilde" if kind.startswith("image/") else "vedlegg"
            files.append(IncomingFile(OfferedFile(name or fallback, kind or None), url, with_bot_token=True))
    return files


def register(router: Router) -> None:
    @router.text(
        "avvik", "meld avvik", "avviksmelding", "nytt avvik", "deviation", "report deviation", "report a deviation"
    )
    async def open_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        return await deviation_report.open_form(s, actor, {})

    @router.text("mine avvik", "mine avviksmeldinger", "my deviations", "my deviation reports")
    async def mine_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        return await deviation_report.mine(s, actor, {})

    @router.text(
        r"(?:avvik|avviksmeldinger)\s+(?:for|fra|hos|på)\s+(?P<supplier>.{1,200})",
        r"(?:deviations?|deviation reports)\s+(?:for|from|of)\s+(?P<supplier>.{1,200})",
    )
    async def supplier_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        return await deviation_report.supplier(s, actor, match.group("supplier").strip())

    @router.text(r"(?P<ref>av\s*-\s*\d{4}\s*-\s*\d{1,6})")
    async def ref_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        return await deviation_report.refresh(s, actor, {"ref": match.group("ref")})

    async def open_verb(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
        return await deviation_report.open_form(s, actor, data)

    async def next_verb(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
        return await deviation_report.next_step(s, actor, data)

    async def back_verb(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
        return await deviation_report.back_step(s, actor, data)

    async def submit_verb(s: Services, actor: Actor, data: dict[str, Any]) -> Reply:
        return await deviation_report.submit(s, actor, data)

    @router.attachments
    async def files_sent(s: Services, actor: Actor, attachments: list[dict[str, Any]]) -> Reply | None:
        files = incoming_files(attachments)
        if not files or not actor.in_personal_chat:
            return None
        return await deviation_report.attach(s, actor, files)

    @router.invoke("composeExtension/fetchTask")
    async def fetch_task(s: Services, actor: Actor, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("commandId") != COMMAND_ID:
            return deviation_report.task_message(deviation_report.unknown_command(actor))
        return await deviation_report.fetch_task(s, actor, value)

    @router.invoke("composeExtension/submitAction")
    async def submit_action(s: Services, actor: Actor, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("commandId") != COMMAND_ID:
            return deviation_report.task_message(deviation_report.unknown_command(actor))
        return await deviation_report.submit_action(s, actor, value)

    router.invoke("fileConsent/invoke")(deviation_report.file_consent)

    router.verbs_to(
        {
            "deviation.open": open_verb,
            "deviation.next": next_verb,
            "deviation.back": back_verb,
            "deviation.submit": submit_verb,
            "deviation.status": deviation_report.change_status,
            "deviation.refresh": deviation_report.refresh,
            "deviation.mine": deviation_report.mine,
            "deviation.export": deviation_report.export,
            "deviation.remove_attachment": deviation_report.remove_attachment,
        }
    )
