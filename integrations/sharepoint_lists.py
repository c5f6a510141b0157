"""SharePoint register lists through Graph (msgraph-sdk): `RegisterLists` for one site.

Calls (permissions in docs/permissions.md: `Sites.Selected` with a write grant on the site):

- ``GET /sites/{s}/lists/{title}`` → 404: ``POST /sites/{s}/lists`` with the columns
  (``genericList``); 409 (another instance made it meanwhile): get it again;
- ``GET /sites/{s}/lists/{id}/columns`` → ``POST …/columns`` for each missing column,
  ``PATCH …/columns/{id}`` to index the key column when someone made it without an index;
- ``GET …/items?$expand=fields&$filter=fields/{key} eq '…'`` (a lost item id, found by the record's
  reference; ``Prefer: HonorNonIndexedQueriesWarningMayFailRandomly`` keeps a list whose index
  was removed working);
- ``GET …/items/{id}?$expand=fields``, ``PATCH …/items/{id}/fields``, ``POST …/items``;
- ``GET …/items?$expand=fields&$top=…`` and its ``@odata.nextLink`` pages (the re-sync).

Kiota's retry handler retries 429/503/504 honouring `Retry-After` — except on the create: an
answer lost after SharePoint made the item would make a second one on retry, so the create
goes out once and the caller (`RecordMirror`) looks the item up by reference before trying again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.models.boolean_column import BooleanColumn
from msgraph.generated.models.choice_column import ChoiceColumn
from msgraph.generated.models.column_definition import ColumnDefinition
from msgraph.generated.models.currency_column import CurrencyColumn
from msgraph.generated.models.date_time_column import DateTimeColumn
from msgraph.generated.models.field_value_set import FieldValueSet
from msgraph.generated.models.list_ import List_
from msgraph.generated.models.list_info import ListInfo
from msgraph.generated.models.list_item import ListItem
from msgraph.generated.models.number_column import NumberColumn
from msgraph.generated.models.text_column import TextColumn
from msgraph.generated.sites.item.lists.item.items.item.list_item_item_request_builder import (
    ListItemItemRequestBuilder,
)
from msgraph.generated.sites.item.lists.item.items.items_request_builder import ItemsRequestBuilder

from procurement.errors import PermanentError
from procurement.records.lists import BUILT_IN_COLUMNS, TEXT_MAX, Column, ListItemState, ListSpec

from .graph_client import as_integration_error, error_status, odata_literal

log = logging.getLogger(__name__)

PREFER_NON_INDEXED = "HonorNonIndexedQueriesWarningMayFailRandomly"
PAGE_SIZE = 500


def column_definition(column: Column) -> ColumnDefinition:
    """The Graph column for a configured one (internal `name`, Norwegian `display_name`)."""
    definition = ColumnDefinition(name=column.name, display_name=column.display, indexed=column.indexed or None)
    kind = column.type
    if kind == "text":
        definition.text = TextColumn(max_length=TEXT_MAX)
    elif kind == "note":
        definition.text = TextColumn(allow_multiple_lines=True, lines_for_editing=6)
    elif kind == "number":
        definition.number = NumberColumn()
    elif kind == "currency":
        definition.currency = CurrencyColumn(locale="nb-NO")
    elif kind == "date":
        definition.date_time = DateTimeColumn(format="dateOnly")
    elif kind == "dateTime":
        definition.date_time = DateTimeColumn(format="dateTime")
    elif kind == "choice":
        # Text entry allowed: a status added to the product later is written as it is rather than refused.
        definition.choice = ChoiceColumn(choices=[label for _, label in column.choices], allow_text_entry=True)
    elif kind == "boolean":
        definition.boolean = BooleanColumn()
    return definition


def _fields(item: ListItem) -> dict[str, object]:
    data: dict[str, Any] = dict(item.fields.additional_data) if item.fields and item.fields.additional_data else {}
    return {k: v for k, v in data.items() if not k.startswith("@")}


class GraphListMirror:
    """`RegisterLists` on one SharePoint site (`site_id`: ``host,site-guid,web-guid``)."""

    def __init__(self, client: GraphServiceClient, site_id: str) -> None:
        self.client = client
        self.site_id = site_id
        self._list_ids: dict[str, str] = {}
        self._lock = asyncio.Lock()

    def _lists(self) -> Any:
        return self.client.sites.by_site_id(self.site_id).lists

    # -- lists and columns ---------------------------------------------------------------------

    async def ensure_list(self, spec: ListSpec) -> None:
        async with self._lock:
            list_id = await self._find_list(spec.title)
            if list_id is None:
                list_id = await self._create_list(spec)
            await self._ensure_columns(spec, list_id)
            self._list_ids[spec.title] = list_id

    async def _find_list(self, title: str) -> str | None:
        try:
            found = await self._lists().by_list_id(title).get()
        except Exception as err:
            if error_status(err) == 404:
                return None
            raise as_integration_error(err, f"get list {title!r}") from err
        if found is None or not found.id:
            raise PermanentError(f"SharePoint list {title!r}: no id")
        return str(found.id)

    async def _create_list(self, spec: ListSpec) -> str:
        body = List_(
            display_name=spec.title,
            description=spec.description or None,
            list_=ListInfo(template="genericList"),
            columns=[column_definition(c) for c in spec.columns if c.name not in BUILT_IN_COLUMNS],
        )
        try:
            created = await self._lists().post(body)
        except Exception as err:
            if error_status(err) == 409:  # another instance created it meanwhile
                again = await self._find_list(spec.title)
                if again:
                    return again
            raise as_integration_error(err, f"create list {spec.title!r}") from err
        if created is None or not created.id:
            raise PermanentError(f"create list {spec.title!r}: Graph returned no list")
        log.info("SharePoint list %s created on site %s", spec.title, self.site_id)
        return str(created.id)

    async def _ensure_columns(self, spec: ListSpec, list_id: str) -> None:
        columns = self._lists().by_list_id(list_id).columns
        try:
            page = await columns.get()
        except Exception as err:
            raise as_integration_error(err, f"get columns of {spec.title!r}") from err
        existing = {str(c.name).casefold(): c for c in (page.value if page and page.value else []) if c.name}
        for column in spec.columns:
            have = existing.get(column.name.casefold())
            if have is None:
                if column.name in BUILT_IN_COLUMNS:
                    continue
                try:
                    await columns.post(column_definition(column))
                except Exception as err:
                    if error_status(err) != 409:  # 409: added by another instance meanwhile
                        raise as_integration_error(err, f"add column {column.name!r} to {spec.title!r}") from err
                log.info("SharePoint list %s: column %s added", spec.title, column.name)
            elif column.indexed and not have.indexed and have.id:
                try:
                    await columns.by_column_definition_id(have.id).patch(ColumnDefinition(indexed=True))
                except Exception as err:
                    raise as_integration_error(err, f"index column {column.name!r} of {spec.title!r}") from err

    async def _list_id(self, spec: ListSpec) -> str:
        cached = self._list_ids.get(spec.title)
        if cached:
            return cached
        found = await self._find_list(spec.title)
        if found is None:
            raise PermanentError(f"SharePoint list {spec.title!r} not found on the site", status=404)
        self._list_ids[spec.title] = found
        return found

    async def _items(self, spec: ListSpec) -> ItemsRequestBuilder:
        items: ItemsRequestBuilder = self._lists().by_list_id(await self._list_id(spec)).items
        return items

    # -- items -----------------------------------------------------------------------------------

    async def get_item(self, spec: ListSpec, item_id: str) -> ListItemState | None:
        items = await self._items(spec)
        query = ListItemItemRequestBuilder.ListItemItemRequestBuilderGetQueryParameters(expand=["fields"])
        config: RequestConfiguration[ListItemItemRequestBuilder.ListItemItemRequestBuilderGetQueryParameters] = (
            RequestConfiguration(query_parameters=query)
        )
        try:
            item = await items.by_list_item_id(item_id).get(config)
        except Exception as err:
            if error_status(err) == 404:
                return None
            raise as_integration_error(err, f"get item {item_id} of {spec.title!r}") from err
        return ListItemState(str(item.id), _fields(item)) if item is not None and item.id else None

    async def find_item(self, spec: ListSpec, key: str) -> ListItemState | None:
        items = await self._items(spec)
        query = ItemsRequestBuilder.ItemsRequestBuilderGetQueryParameters(
            expand=["fields"], filter=f"fields/{spec.key} eq '{odata_literal(key)}'"
        )
        config: RequestConfiguration[ItemsRequestBuilder.ItemsRequestBuilderGetQueryParameters] = RequestConfiguration(
            query_parameters=query
        )
        config.headers.add("Prefer", PREFER_NON_INDEXED)
        try:
            page = await items.get(config)
        except Exception as err:
            raise as_integration_error(err, f"find {key!r} in {spec.title!r}") from err
        found = [
            ListItemState(str(i.id), _fields(i))
            for i in (page.value if page and page.value else [])
            if i.id and str(_fields(i).get(spec.key, "")) == key
        ]
        found.sort(key=lambda s: (len(s.item_id), s.item_id))  # the oldest (ids grow)
        return found[0] if found else None

    async def create_item(self, spec: ListSpec, fields: Mapping[str, object]) -> str:
        items = await self._items(spec)
        config: RequestConfiguration[Any] = RequestConfiguration(
            options=[RetryHandlerOption(max_retries=0, should_retry=False)]
        )
        try:
            created = await items.post(ListItem(fields=FieldValueSet(additional_data=dict(fields))), config)
        except Exception as err:
            raise as_integration_error(err, f"create item in {spec.title!r}") from err
        if created is None or not created.id:
            raise PermanentError(f"create item in {spec.title!r}: Graph returned no item")
        return str(created.id)

    async def update_item(self, spec: ListSpec, item_id: str, fields: Mapping[str, object]) -> bool:
        items = await self._items(spec)
        try:
            await items.by_list_item_id(item_id).fields.patch(FieldValueSet(additional_data=dict(fields)))
        except Exception as err:
            if error_status(err) == 404:
                return False
            raise as_integration_error(err, f"update item {item_id} of {spec.title!r}") from err
        return True

    async def all_items(self, spec: ListSpec) -> list[ListItemState]:
        items = await self._items(spec)
        query = ItemsRequestBuilder.ItemsRequestBuilderGetQueryParameters(expand=["fields"], top=PAGE_SIZE)
        config: RequestConfiguration[ItemsRequestBuilder.ItemsRequestBuilderGetQueryParameters] = RequestConfiguration(
            query_parameters=query
        )
        found: list[ListItemState] = []
        try:
            page = await items.get(config)
            while page is not None:
                found.extend(ListItemState(str(i.id), _fields(i)) for i in page.value or [] if i.id)
                if not page.odata_next_link:
                    break
                page = await items.with_url(page.odata_next_link).get()
        except Exception as err:
            raise as_integration_error(err, f"read items of {spec.title!r}") from err
        return found
