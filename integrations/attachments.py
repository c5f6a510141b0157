"""Photos and files of deviation reports: fetched from Teams, kept locally or in SharePoint.

Fetching (`TeamsAttachmentDownloader`), our own rather than the SDK's `M365AttachmentDownloader`
(which relabels every image as PNG, sends the bot token to pre-authenticated URLs and returns
nothing on a failed download):

- a file download info's `downloadUrl` is pre-authenticated and short-lived: fetched
  without any Authorization header;
- an inline image's `contentUrl` needs the bot's token (Bot Framework scope): sent only to
  the hosts Teams serves those from, never elsewhere;
- at most the attachment limit plus one byte is read (the rest is refused by size);
- a non-2xx answer (phone camera photos are known to give 403) or a network error becomes a
  `ReceivedFile` without data and with the status, so the user is told what to do instead.

Keeping: `LocalAttachmentStore` writes DATA_DIR/attachments/<ref>/<name> (and exports under
DATA_DIR/exports/); `SharePointAttachmentStore` uploads into a document library folder
<root>/<ref>/ through Graph (`DriveUploader`: our retries, upload sessions above 4 MiB).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from procurement.deviations.fields import MAX_ATTACHMENT_BYTES
from procurement.deviations.model import ReceivedFile
from procurement.deviations.ports import IncomingFile
from procurement.errors import PermanentError

if TYPE_CHECKING:
    from msgraph import GraphServiceClient

log = logging.getLogger(__name__)

BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
# Where Teams serves inline images that need the bot's token.
TOKEN_HOSTS = (".botframework.com", ".trafficmanager.net", ".skype.com", ".teams.microsoft.com")
TokenSource = Callable[[], Awaitable[str | None]]


def _token_host(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host.endswith(suffix) or host == suffix.lstrip(".") for suffix in TOKEN_HOSTS)


class TeamsAttachmentDownloader:
    def __init__(
        self,
        token: TokenSource | None = None,
        *,
        allow_http: bool = False,
        max_bytes: int = MAX_ATTACHMENT_BYTES,
        timeout: float = 30.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.token = token
        # Local mode only: the Connector stub serves files over plain http on loopback.
        self.allow_http = allow_http
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.http = http

    async def download(self, files: Sequence[IncomingFile]) -> list[ReceivedFile]:
        if self.http is not None:
            return list(await asyncio.gather(*(self._one(self.http, f) for f in files)))
        async with httpx.AsyncClient(timeout=httpx.Timeout(self.timeout, connect=10.0), follow_redirects=True) as http:
            return list(await asyncio.gather(*(self._one(http, f) for f in files)))

    def _allowed(self, url: str) -> bool:
        scheme = urlsplit(url).scheme.lower()
        return scheme == "https" or (self.allow_http and scheme == "http")

    async def _one(self, http: httpx.AsyncClient, file: IncomingFile) -> ReceivedFile:
        name, declared = file.offered.name, file.offered.declared_type
        if not self._allowed(file.url):
            log.warning("attachment %r: refused url scheme %r", name[:80], urlsplit(file.url).scheme)
            return ReceivedFile(name, declared, None, 0)
        headers: dict[str, str] = {}
        if file.with_bot_token and self.token is not None and _token_host(file.url):
            token = await self.token()
            if token:
                headers["Authorization"] = f"Bearer {token}"
        try:
            async with http.stream("GET", file.url, headers=headers) as response:
                if not 200 <= response.status_code < 300:
                    log.info("attachment %r: download answered %s", name[:80], response.status_code)
                    return ReceivedFile(name, declared, None, response.status_code)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > self.max_bytes:
                        break  # over the limit: enough to refuse it by size
                data = b"".join(chunks)[: self.max_bytes + 1]
        except httpx.HTTPError as err:
            log.info("attachment %r: download failed: %s", name[:80], type(err).__name__)
            return ReceivedFile(name, declared, None, 0)
        return ReceivedFile(name, declared, data)


def bot_token_source(connection_manager: object) -> TokenSource:
    """The bot's own token for inline images (the SDK's MSAL connection)."""

    async def token() -> str | None:
        connection = connection_manager.get_default_connection()  # type: ignore[attr-defined]
        value = await connection.get_access_token("https://api.botframework.com", [BOT_FRAMEWORK_SCOPE])
        return str(value) if value else None

    return token


# -- keeping ------------------------------------------------------------------------------------

_SEGMENT = re.compile(r"[^0-9A-Za-zÆØÅæøå ._()-]")


def _segment(text: str) -> str:
    cleaned = _SEGMENT.sub("_", text).strip(" .") or "_"
    return cleaned[:150]


def _write_atomic(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class LocalAttachmentStore:
    """DATA_DIR/attachments/<ref>/<name>; a second store of the same name replaces it."""

    def __init__(self, data_dir: str | Path, folder: str = "attachments") -> None:
        self.root = Path(data_dir).resolve() / folder

    async def store(self, ref: str, name: str, content: bytes, content_type: str) -> str:
        path = self.root / _segment(ref) / _segment(name)
        if self.root not in path.resolve().parents:
            raise PermanentError(f"attachment path outside {self.root}")
        await asyncio.to_thread(_write_atomic, path, content)
        return str(path)


class SharePointAttachmentStore:
    """A document library through Graph: <root>/<ref>/<name> (the folder made on the way)."""

    def __init__(self, client: GraphServiceClient, drive_id: str, root: str = "Avviksmeldinger") -> None:
        from integrations.drive_uploads import DriveUploader

        self.drive_id = drive_id
        self.root = root
        self.uploader = DriveUploader(client, conflict_behavior="replace")

    async def store(self, ref: str, name: str, content: bytes, content_type: str) -> str:
        from integrations.drive_uploads import drive_item_name

        folder = f"{drive_item_name(self.root)}/{drive_item_name(ref)}"
        item = await self.uploader.upload(self.drive_id, drive_item_name(name), content, folder_path=folder)
        return item.web_url or f"{folder}/{item.name}"
