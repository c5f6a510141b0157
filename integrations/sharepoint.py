"""SharePoint through Graph: a list mirrored from the register, and the archive library.

`GraphListMirror.upsert_item(list, key, fields)`:
``GET /sites/{s}/lists/{list-title-or-id}`` (once per list) →
``GET …/items?$expand=fields&$filter=fields/{key_field} eq '{key}'`` (with
``Prefer: HonorNonIndexedQueriesWarningMayFailRandomly``; index the key column in the
list for large lists) → ``PATCH …/items/{id}/fields`` or ``POST …/items``.

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
from urllib.parse import quote

import httpx
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.field_value_set import FieldValueSet
from msgraph.generated.models.list_item import ListItem
from msgraph.generated.sites.item.lists.item.items.items_request_builder import ItemsRequestBuilder

from integrations.graph_client import odata_literal
from procurement.errors import PermanentError

from .drive_uploads import DriveUploader, drive_item_name
from .graph_client import (
    RetryPolicy,
    as_integration_error,
    error_status,
    graph_url,
)

log = logging.getLogger(__name__)

PREFER_NON_INDEXED = "HonorNonIndexedQueriesWarningMayFailRandomly"


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


class GraphListMirror:
    """`ListMirror` over a SharePoint site's lists. `key_field` is the column holding the key
    (internal name; ``Title`` by default)."""

    def __init__(self, client: GraphServiceClient, site_id: str, *, key_field: str = "Title") -> None:
        self.client = client
        self.site_id = site_id
        self.key_field = key_field
        self._list_ids: dict[str, str] = {}

    async def upsert_item(self, list_name: str, key: str, fields: dict[str, object]) -> str:
        list_id = await self._list_id(list_name)
        lists = self.client.sites.by_site_id(self.site_id).lists.by_list_id(list_id)
        values = {name: field_value(value) for name, value in fields.items()}
        values[self.key_field] = key
        existing = await self._find(list_id, key)
        if existing is not None:
            try:
                await lists.items.by_list_item_id(existing).fields.patch(FieldValueSet(additional_data=values))
            except Exception as err:
                raise as_integration_error(err, f"update item {key!r} in {list_name!r}") from err
            return existing
        try:
            created = await lists.items.post(ListItem(fields=FieldValueSet(additional_data=values)))
        except Exception as err:
            raise as_integration_error(err, f"create item {key!r} in {list_name!r}") from err
        if created is None or not created.id:
            raise PermanentError(f"create item {key!r} in {list_name!r}: Graph returned no item")
        return created.id

    async def _list_id(self, list_name: str) -> str:
        cached = self._list_ids.get(list_name)
        if cached:
            return cached
        try:
            found = await self.client.sites.by_site_id(self.site_id).lists.by_list_id(list_name).get()
        except Exception as err:
            if error_status(err) == 404:
                raise PermanentError(f"SharePoint list {list_name!r} not found on the site", status=404) from err
            raise as_integration_error(err, f"get list {list_name!r}") from err
        if found is None or not found.id:
            raise PermanentError(f"SharePoint list {list_name!r}: no id")
        self._list_ids[list_name] = found.id
        return found.id

    async def _find(self, list_id: str, key: str) -> str | None:
        items = self.client.sites.by_site_id(self.site_id).lists.by_list_id(list_id).items
        query = ItemsRequestBuilder.ItemsRequestBuilderGetQueryParameters(
            expand=["fields"],
            filter=f"fields/{self.key_field} eq '{odata_literal(key)}'",
        )
        config: RequestConfiguration[ItemsRequestBuilder.ItemsRequestBuilderGetQueryParameters] = RequestConfiguration(
            query_parameters=query
        )
        config.headers.add("Prefer", PREFER_NON_INDEXED)
        try:
            page = await items.get(config)
        except Exception as err:
            raise as_integration_error(err, f"find item {key!r}") from err
        for item in page.value if page and page.value else []:
            data = item.fields.additional_data if item.fields else {}
            if item.id and str(data.get(self.key_field, key)) == key:
                return item.id
        return None


class GraphArchiveStore:
    """`ArchiveStore` over a document library (`drive_id`). `root_folder` prefixes every
    folder (e.g. ``Innkjøp``). Files with the same name are replaced (an outbox retry
    uploads the same document again)."""

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
        self.uploader = DriveUploader(
            client,
            small_upload_limit=small_upload_limit,
            chunk_size=chunk_size,
            policy=upload_policy,
            upload_http=upload_http,
            conflict_behavior="replace",
            sleep=sleep,
        )

    async def upload(self, folder: str, filename: str, content: bytes, metadata: dict[str, str]) -> str:
        parts = [drive_item_name(p) for p in f"{self.root_folder}/{folder}".split("/") if p.strip()]
        item = await self.uploader.upload(
            self.drive_id, drive_item_name(filename), content, folder_path="/".join(parts)
        )
        if metadata:
            url = graph_url(
                self.client,
                f"/drives/{quote(self.drive_id, safe='!')}/items/{quote(item.id, safe='!')}/listItem/fields",
            )
            builder = (
                self.client.sites.by_site_id("_").lists.by_list_id("_").items.by_list_item_id("_").fields.with_url(url)
            )
            values = {name: field_value(value) for name, value in metadata.items()}
            try:
                await builder.patch(FieldValueSet(additional_data=values))
            except Exception as err:
                raise as_integration_error(err, f"set metadata on {filename!r}") from err
        return item.web_url or item.id
