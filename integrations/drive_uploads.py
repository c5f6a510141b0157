"""Uploading files to a drive (a channel's files folder, the archive library).

kiota never retries `application/octet-stream` bodies, so small uploads
(`PUT …:/name:/content`) retry here on 429/502/503/504 honouring `Retry-After`; large files go
through an upload session with our own chunk loop (chunks in multiples of 320 KiB,
`Content-Range`, no `Authorization` header, resuming from `nextExpectedRanges`).
msgraph-core's `LargeFileUploadTask` is not used (see STACK-NOTES).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from msgraph import GraphServiceClient

from procurement.errors import PermanentError, TransientError

from .graph_client import RetryPolicy, as_integration_error, graph_url, parse_retry_after, with_retries

log = logging.getLogger(__name__)

CHUNK_UNIT = 320 * 1024  # upload-session chunks must be multiples of 320 KiB


# -- uploads --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadedItem:
    id: str
    name: str
    web_url: str
    size: int


# SharePoint refuses these in file and folder names.
_ITEM_FORBIDDEN = re.compile(r'["*:<>?/\\|\x00-\x1f]')


def drive_item_name(text: str, fallback: str = "Dokument") -> str:
    """A file or folder name SharePoint accepts (forbidden characters become ``-``)."""
    cleaned = _ITEM_FORBIDDEN.sub("-", text or "").strip().strip(".").strip()
    return cleaned[:250] or fallback


def item_path_url(
    client: GraphServiceClient,
    drive_id: str,
    name: str,
    *,
    parent_id: str | None = None,
    folder_path: str | None = None,
    suffix: str,
) -> str:
    """``/drives/{d}/items/{parent}:/{name}:/{suffix}`` or ``/drives/{d}/root:/{folder}/{name}:/{suffix}``."""
    drive = quote(drive_id, safe="!")
    if parent_id is not None:
        return graph_url(
            client,
            f"/drives/{drive}/items/{quote(parent_id, safe='!')}:/{quote(name, safe='')}:/{suffix}",
        )
    parts = [p for p in (folder_path or "").split("/") if p] + [name]
    path = "/".join(quote(p, safe="") for p in parts)
    return graph_url(client, f"/drives/{drive}/root:/{path}:/{suffix}")


class DriveUploader:
    """Uploads bytes into a drive folder: one PUT when small, an upload session when large.

    - `small_upload_limit`: sizes up to this use the simple PUT (Graph allows up to 250 MB,
      but recommends sessions above 4 MiB).
    - `chunk_size`: bytes per session chunk; rounded down to a multiple of 320 KiB.
    - `policy`: attempts and backoff for the PUTs kiota won't retry.
    - `upload_http`: the httpx client for chunk PUTs (no auth, no Graph middleware); by
      default one is made per session.
    """

    def __init__(
        self,
        client: GraphServiceClient,
        *,
        small_upload_limit: int = 4 * 1024 * 1024,
        chunk_size: int = 10 * CHUNK_UNIT,
        policy: RetryPolicy | None = None,
        upload_http: httpx.AsyncClient | None = None,
        conflict_behavior: str = "replace",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if chunk_size < CHUNK_UNIT:
            raise ValueError("chunk_size must be at least 320 KiB")
        self.client = client
        self.small_upload_limit = small_upload_limit
        self.chunk_size = chunk_size - chunk_size % CHUNK_UNIT
        self.policy = policy or RetryPolicy()
        self.upload_http = upload_http
        self.conflict_behavior = conflict_behavior
        self.sleep = sleep

    async def upload(
        self,
        drive_id: str,
        name: str,
        content: bytes,
        *,
        parent_id: str | None = None,
        folder_path: str | None = None,
    ) -> UploadedItem:
        """Upload into the folder `parent_id` (an item id) or `folder_path` (from the drive root;
        Graph creates missing folders on the way)."""
        what = f"upload {name}"
        if len(content) <= self.small_upload_limit:
            return await self._put_small(drive_id, name, content, parent_id, folder_path, what)
        return await self._put_session(drive_id, name, content, parent_id, folder_path, what)

    async def _put_small(
        self,
        drive_id: str,
        name: str,
        content: bytes,
        parent_id: str | None,
        folder_path: str | None,
        what: str,
    ) -> UploadedItem:
        url = item_path_url(
            self.client,
            drive_id,
            name,
            parent_id=parent_id,
            folder_path=folder_path,
            suffix="content",
        )
        # Any builder's `with_url` sends to the raw url; this one knows the octet-stream PUT.
        builder = self.client.drives.by_drive_id(drive_id).items.by_drive_item_id("_").content.with_url(url)

        async def put() -> Any:
            return await builder.put(content)

        try:
            item = await with_retries(put, self.policy, what, self.sleep)
        except Exception as err:
            raise as_integration_error(err, what) from err
        if item is None or not item.id:
            raise PermanentError(f"{what}: Graph returned no item")
        return UploadedItem(item.id, item.name or name, item.web_url or "", int(item.size or len(content)))

    async def _create_session(
        self, drive_id: str, name: str, parent_id: str | None, folder_path: str | None, what: str
    ) -> str:
        from msgraph.generated.drives.item.items.item.create_upload_session.create_upload_session_post_request_body import (  # noqa: E501  (the module path is longer than a line)
            CreateUploadSessionPostRequestBody,
        )
        from msgraph.generated.models.drive_item_uploadable_properties import (
            DriveItemUploadableProperties,
        )

        url = item_path_url(
            self.client,
            drive_id,
            name,
            parent_id=parent_id,
            folder_path=folder_path,
            suffix="createUploadSession",
        )
        body = CreateUploadSessionPostRequestBody(
            item=DriveItemUploadableProperties(
                name=name,
                additional_data={"@microsoft.graph.conflictBehavior": self.conflict_behavior},
            )
        )
        builder = (
            self.client.drives.by_drive_id(drive_id).items.by_drive_item_id("_").create_upload_session.with_url(url)
        )
        try:
            session = await builder.post(body)  # JSON: kiota retries 429/503/504 itself
        except Exception as err:
            raise as_integration_error(err, f"{what} (create upload session)") from err
        if session is None or not session.upload_url:
            raise PermanentError(f"{what}: no upload url in the upload session")
        return session.upload_url

    async def _put_session(
        self,
        drive_id: str,
        name: str,
        content: bytes,
        parent_id: str | None,
        folder_path: str | None,
        what: str,
    ) -> UploadedItem:
        upload_url = await self._create_session(drive_id, name, parent_id, folder_path, what)
        if self.upload_http is not None:
            return await self._chunk_loop(self.upload_http, upload_url, content, name, what)
        async with httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=10.0)) as http:
            return await self._chunk_loop(http, upload_url, content, name, what)

    async def _chunk_loop(
        self, http: httpx.AsyncClient, upload_url: str, content: bytes, name: str, what: str
    ) -> UploadedItem:
        total = len(content)
        offset, limit = 0, total - 1
        failures = 0
        while True:
            end = min(offset + self.chunk_size, limit + 1, total) - 1
            headers = {
                "Content-Range": f"bytes {offset}-{end}/{total}",
                "Content-Type": "application/octet-stream",
            }
            retry_after: float | None = None
            try:
                # No Authorization header: the upload url is pre-authenticated, and a Graph
                # token sent there can be refused (401) or leak to another host.
                response = await http.put(upload_url, content=content[offset : end + 1], headers=headers)
            except httpx.TransportError as err:
                status, body, detail = 0, {}, type(err).__name__
            else:
                status = response.status_code
                body = _json(response)
                detail = f"{status} {_odata_code(body)}".strip()
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if status in (200, 201):
                return UploadedItem(
                    str(body.get("id", "")),
                    str(body.get("name") or name),
                    str(body.get("webUrl") or ""),
                    int(body.get("size") or total),
                )
            if status == 202:
                next_range = _first_range(body.get("nextExpectedRanges"), total)
                if next_range is None:  # everything received but no item yet: ask for the status
                    next_range = await self._session_status(http, upload_url, total, what)
                if next_range[0] > offset:
                    failures = 0
                else:  # no progress: the server wants the same bytes again
                    failures += 1
                    if failures >= self.policy.attempts:
                        raise TransientError(f"{what}: upload session makes no progress at {offset}")
                offset, limit = next_range
                continue
            if status == 404:
                raise TransientError(f"{what}: upload session expired or gone ({detail})")
            if status and status < 500 and status not in (408, 416, 429):
                raise PermanentError(
                    f"{what}: chunk refused ({detail})",
                    status=status,
                    code=_odata_code(body) or None,
                )
            failures += 1
            if failures >= self.policy.attempts:
                raise TransientError(
                    f"{what}: chunk failed {failures} times ({detail})",
                    retry_after,
                    status=status or None,
                )
            delay = self.policy.delay(failures - 1, retry_after)
            log.info(
                "%s: chunk at %d answered %s, retrying in %.2fs",
                what,
                offset,
                detail or status,
                delay,
            )
            await self.sleep(delay)
            # Ask the session what it still needs (a chunk may have landed despite the error).
            offset, limit = await self._session_status(http, upload_url, total, what)

    async def _session_status(self, http: httpx.AsyncClient, upload_url: str, total: int, what: str) -> tuple[int, int]:
        for attempt in range(self.policy.attempts):
            try:
                response = await http.get(upload_url)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 200:
                next_range = _first_range(_json(response).get("nextExpectedRanges"), total)
                if next_range is not None:
                    return next_range
                raise PermanentError(f"{what}: upload session has no missing range but no item")
            if response is not None and response.status_code == 404:
                raise TransientError(f"{what}: upload session expired or gone")
            retry_after = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
            await self.sleep(self.policy.delay(attempt, retry_after))
        raise TransientError(f"{what}: upload session status unavailable")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _odata_code(body: Mapping[str, Any]) -> str:
    error = body.get("error")
    return str(error.get("code", "")) if isinstance(error, Mapping) else ""


_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d*)\s*$")


def _first_range(ranges: Any, total: int) -> tuple[int, int] | None:
    """The first missing byte range from `nextExpectedRanges` (``"26-"`` or ``"0-99"``), inclusive."""
    if not isinstance(ranges, list):
        return None
    parsed: list[tuple[int, int]] = []
    for item in ranges:
        match = _RANGE.match(str(item))
        if match:
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else total - 1
            if start < total:
                parsed.append((start, min(end, total - 1)))
    return min(parsed) if parsed else None
