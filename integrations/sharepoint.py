"""SharePoint through Graph: the archive library. (The register lists are in `sharepoint_lists.py`.)

`GraphArchiveStore.upload(folder, filename, content, metadata)`: the file into
``/drives/{d}/root:/{folder}/{filename}:`` (Graph creates missing folders; large files by
upload session) → ``PATCH /drives/{d}/items/{id}/listItem/fields`` with the metadata
(the library's columns, by internal name).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from enum import Enum
from typing import Any
from urllib.parse import quote

import httpx
from msgraph import GraphServiceClient
from msgraph.generated.models.field_value_set import FieldValueSet
from msgraph.generated.models.item_retention_label import ItemRetentionLabel

from procurement.ports import ArchivedFile, ArchiveValue

from .drive_uploads import DriveUploader, drive_item_name
from .graph_client import (
    RetryPolicy,
    as_integration_error,
    error_status,
    graph_url,
    with_retries,
)

log = logging.getLogger(__name__)


def field_value(value: object) -> object:
    """A value SharePoint columns accept in JSON."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Enum):
        return field_value(value.value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [field_value(v) for v in value]
    return value


class GraphArchiveStore:
    """`ArchiveStore` over the archive's document library (`drive_id`). `root_folder` prefixes
    every folder (e.g. ``Innkjøp``); the case's reference is the folder below it.

    - `find`: ``GET /drives/{d}/root:/{folder}/{name}`` (404 → not there): looked up before any
      upload, so a retry after a lost answer does not upload the same document again;
    - `put`: ``PUT …:/content`` up to `small_upload_limit` (4 MiB), an upload session above it
      (`DriveUploader`: 320 KiB multiples, ``Content-Range``, no ``Authorization`` on the chunks,
      resume from ``nextExpectedRanges``);
    - `describe`: ``PATCH /drives/{d}/items/{id}/listItem/fields`` with the metadata columns and
      ``PATCH /drives/{d}/items/{id}/retentionLabel`` with the configured label (both idempotent:
      the same values again change nothing).
    """

    def __init__(
        self,
        client: GraphServiceClient,
        drive_id: str,
        *,
        root_folder: str = "",
        small_upload_limit: int = 4 * 1024 * 1024,
        chunk_size: int = 10 * 320 * 1024,
        upload_policy: RetryPolicy | None = None,
        upload_http: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.drive_id = drive_id
        self.root_folder = root_folder.strip("/")
        self.policy = upload_policy or RetryPolicy()
        self.sleep = sleep
        self.uploader = DriveUploader(
            client,
            small_upload_limit=small_upload_limit,
            chunk_size=chunk_size,
            policy=upload_policy,
            upload_http=upload_http,
            conflict_behavior="replace",
            sleep=sleep,
        )

    def _folder_path(self, folder: str) -> str:
        return "/".join(drive_item_name(p) for p in f"{self.root_folder}/{folder}".split("/") if p.strip())

    def _item_url(self, item_id: str, suffix: str = "") -> str:
        path = f"/drives/{quote(self.drive_id, safe='!')}/items/{quote(item_id, safe='!')}"
        return graph_url(self.client, path + (f"/{suffix}" if suffix else ""))

    async def find(self, folder: str, filename: str) -> ArchivedFile | None:
        parts = [p for p in self._folder_path(folder).split("/") if p] + [drive_item_name(filename)]
        path = "/".join(quote(p, safe="") for p in parts)
        url = graph_url(self.client, f"/drives/{quote(self.drive_id, safe='!')}/root:/{path}")
        builder = self.client.drives.by_drive_id(self.drive_id).items.by_drive_item_id("_").with_url(url)

        async def get() -> Any:
            return await builder.get()

        try:
            item = await with_retries(get, self.policy, f"find {filename}", self.sleep)
        except Exception as err:
            if error_status(err) == 404:
                return None
            raise as_integration_error(err, f"find {filename!r} in the archive") from err
        if item is None or not item.id or item.folder is not None:
            return None
        return ArchivedFile(item.id, item.web_url or "", int(item.size or 0))

    async def put(self, folder: str, filename: str, content: bytes) -> ArchivedFile:
        item = await self.uploader.upload(
            self.drive_id, drive_item_name(filename), content, folder_path=self._folder_path(folder)
        )
        return ArchivedFile(item.id, item.web_url or item.id, item.size)

    async def describe(self, file: ArchivedFile, columns: dict[str, ArchiveValue], retention_label: str) -> None:
        values = {name: field_value(value) for name, value in columns.items() if value is not None}
        if values:
            fields = (
                self.client.sites.by_site_id("_")
                .lists.by_list_id("_")
                .items.by_list_item_id("_")
                .fields.with_url(self._item_url(file.item_id, "listItem/fields"))
            )
            body = FieldValueSet(additional_data=values)

            async def patch_fields() -> Any:
                return await fields.patch(body)

            try:
                # Setting the same values again changes nothing: safe to repeat after a dropped
                # connection or a timeout, which kiota does not retry.
                await with_retries(patch_fields, self.policy, f"metadata {file.item_id}", self.sleep)
            except Exception as err:
                raise as_integration_error(err, f"set archive metadata on {file.item_id}") from err
        if retention_label:
            label = (
                self.client.drives.by_drive_id(self.drive_id)
                .items.by_drive_item_id(file.item_id)
                .retention_label.with_url(self._item_url(file.item_id, "retentionLabel"))
            )

            async def patch_label() -> Any:
                return await label.patch(ItemRetentionLabel(name=retention_label))

            try:
                await with_retries(patch_label, self.policy, f"retention label {file.item_id}", self.sleep)
            except Exception as err:
                raise as_integration_error(err, f"set retention label on {file.item_id}") from err

    async def upload(self, folder: str, filename: str, content: bytes, metadata: dict[str, str]) -> str:
        """The file and its columns in one call (no retention label): `put` + `describe`."""
        file = await self.put(folder, filename, content)
        await self.describe(file, dict(metadata), "")
        return file.url or file.item_id
