"""Collaboration rooms: a standard channel per competition, with folders and starting files.

Graph calls (application permissions `Channel.Create`, `ChannelSettings.Read.All`,
`Files.ReadWrite.All` / `Sites.ReadWrite.All`; `Team.Create` for `create_team_and_wait`):

- ``POST /teams/{id}/channels`` → 201; 409 ``NameAlreadyExists`` → the channel is looked up
  by display name and reused (so a repeated outbox run does not fail or duplicate).
- ``GET /teams/{id}/channels/{cid}/filesFolder`` answers 404 for a while after the channel
  is created (SharePoint provisions the folder lazily): polled with exponential backoff
  up to `files_folder_max_wait` seconds, then `TransientError`.
- ``POST /drives/{d}/items/{folder}/children`` with ``conflictBehavior: fail``; 409 means the
  folder is there already (looked up by path).
- Files through `DriveUploader` (own retries for octet-stream PUTs; upload sessions for
  large files).
- ``POST /teams`` → 202 + ``Location: /teams('{id}')/operations('{op}')``, polled until the
  `teamsAsyncOperation` succeeds (`create_team_and_wait`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import HeadersInspectionHandlerOption, RetryHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.models.aad_user_conversation_member import AadUserConversationMember
from msgraph.generated.models.channel import Channel
from msgraph.generated.models.channel_membership_type import ChannelMembershipType
from msgraph.generated.models.drive_item import DriveItem
from msgraph.generated.models.folder import Folder
from msgraph.generated.models.team import Team
from msgraph.generated.models.teams_async_operation_status import TeamsAsyncOperationStatus
from msgraph.generated.teams.item.channels.channels_request_builder import ChannelsRequestBuilder

from integrations.graph_client import odata_literal
from procurement.errors import PermanentError, TransientError
from procurement.ports import RoomInfo, channel_display_name

from .drive_uploads import DriveUploader, drive_item_name
from .graph_client import (
    RetryPolicy,
    as_integration_error,
    describe,
    error_code,
    error_status,
    graph_url,
    is_transient,
    with_retries,
)

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class TeamCreationPending(TransientError):
    """The team is still being created; poll again later with `wait_for_team_operation`."""

    def __init__(self, team_id: str, operation_id: str, retry_after: float | None = None) -> None:
        super().__init__(f"team {team_id} is still being created (operation {operation_id})", retry_after)
        self.team_id = team_id
        self.operation_id = operation_id


class GraphRoomProvisioner:
    """`RoomProvisioner` over Graph.

    Delays are constructor parameters so tests can run with sub-second backoff:
    `files_folder_max_wait` (total seconds to wait for a new channel's files folder),
    `files_folder_initial_delay` / `files_folder_max_delay` (its backoff), and the uploader's
    `small_upload_limit`, `chunk_size` and `upload_policy`.
    """

    def __init__(
        self,
        client: GraphServiceClient,
        *,
        files_folder_max_wait: float = 300.0,
        files_folder_initial_delay: float = 2.0,
        files_folder_max_delay: float = 30.0,
        small_upload_limit: int = 4 * 1024 * 1024,
        chunk_size: int = 10 * 320 * 1024,
        upload_policy: RetryPolicy | None = None,
        upload_http: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self.files_folder_max_wait = files_folder_max_wait
        self.files_folder_initial_delay = files_folder_initial_delay
        self.files_folder_max_delay = files_folder_max_delay
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

    async def create_room(
        self,
        team_id: str,
        name: str,
        description: str,
        folders: list[str],
        files: list[tuple[str, bytes]],
    ) -> RoomInfo:
        name = channel_display_name(name)  # unchanged when already valid
        channel = await self.ensure_channel(team_id, name, description)
        assert channel.id is not None
        drive_id, root_id = await self.files_folder(team_id, channel.id)
        folder_ids: dict[str, str] = {"": root_id}
        for folder in folders:
            await self._ensure_folder_path(drive_id, folder, folder_ids)
        for file_name, content in files:
            parts = [p for p in file_name.split("/") if p.strip()]
            parent = "/".join(parts[:-1])
            parent_id = await self._ensure_folder_path(drive_id, parent, folder_ids)
            await self.uploader.upload(
                drive_id, drive_item_name(parts[-1] if parts else ""), content, parent_id=parent_id
            )
        return RoomInfo(
            channel_id=channel.id,
            web_url=channel.web_url or "",
            drive_id=drive_id,
            folder_id=root_id,
        )

    # -- channel ---------------------------------------------------------------------------

    async def ensure_channel(self, team_id: str, name: str, description: str) -> Channel:
        channels = self.client.teams.by_team_id(team_id).channels
        body = Channel(
            display_name=name,
            description=description or None,
            membership_type=ChannelMembershipType.Standard,
        )
        try:
            created = await channels.post(body)
        except Exception as err:
            if error_status(err) == 409 or error_code(err).lower() == "namealreadyexists":
                log.info("channel %r exists in team %s; reusing it", name, team_id)
                existing = await self.find_channel(team_id, name)
                if existing is None:
                    raise TransientError(
                        f"channel {name!r} exists but was not found by name yet", retry_after=10
                    ) from err
                return existing
            raise as_integration_error(err, f"create channel {name!r}") from err
        if created is None or not created.id:
            raise PermanentError(f"create channel {name!r}: Graph returned no channel")
        return created

    async def find_channel(self, team_id: str, name: str) -> Channel | None:
        channels = self.client.teams.by_team_id(team_id).channels
        wanted = name.casefold()
        query = ChannelsRequestBuilder.ChannelsRequestBuilderGetQueryParameters(
            filter=f"displayName eq '{odata_literal(name)}'"
        )
        try:
            for config in (RequestConfiguration(query_parameters=query), None):
                page = await channels.get(config)
                for channel in page.value if page and page.value else []:
                    if channel.id and (channel.display_name or "").casefold() == wanted:
                        return channel
        except Exception as err:
            raise as_integration_error(err, f"find channel {name!r}") from err
        return None

    # -- files folder ----------------------------------------------------------------------

    async def files_folder(self, team_id: str, channel_id: str) -> tuple[str, str]:
        """(drive id, folder item id) of the channel's folder, waiting while it is provisioned."""
        builder = self.client.teams.by_team_id(team_id).channels.by_channel_id(channel_id).files_folder
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.files_folder_max_wait
        delay = self.files_folder_initial_delay
        attempt = 0
        while True:
            attempt += 1
            try:
                item = await builder.get()
            except Exception as err:
                if error_status(err) != 404 and not is_transient(err):
                    raise as_integration_error(err, f"files folder of channel {channel_id}") from err
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TransientError(
                        f"files folder of channel {channel_id} not ready after {attempt} tries: {describe(err)}",
                        retry_after=max(30.0, self.files_folder_max_delay),
                    ) from err
                wait = min(delay, remaining)
                log.info(
                    "files folder of %s not ready (%s); retrying in %.2fs",
                    channel_id,
                    describe(err),
                    wait,
                )
                await self.sleep(wait)
                delay = min(delay * 2, self.files_folder_max_delay)
                continue
            drive_id = item.parent_reference.drive_id if item and item.parent_reference else None
            if item is None or not item.id or not drive_id:
                raise PermanentError(f"files folder of channel {channel_id}: no drive or item id")
            return drive_id, item.id

    # -- folders ---------------------------------------------------------------------------

    async def _ensure_folder_path(self, drive_id: str, path: str, known: dict[str, str]) -> str:
        parts = [drive_item_name(p) for p in path.split("/") if p.strip()]
        current = ""
        parent_id = known[""]
        for part in parts:
            current = f"{current}/{part}" if current else part
            if current not in known:
                known[current] = await self.ensure_folder(drive_id, parent_id, part)
            parent_id = known[current]
        return parent_id

    async def ensure_folder(self, drive_id: str, parent_id: str, name: str) -> str:
        """The id of folder `name` under `parent_id`, created when missing (409 → exists)."""
        children = self.client.drives.by_drive_id(drive_id).items.by_drive_item_id(parent_id).children
        body = DriveItem(
            name=name,
            folder=Folder(),
            additional_data={"@microsoft.graph.conflictBehavior": "fail"},
        )
        try:
            created = await children.post(body)
        except Exception as err:
            if error_status(err) != 409:
                raise as_integration_error(err, f"create folder {name!r}") from err
            return await self._folder_by_name(drive_id, parent_id, name)
        if created is None or not created.id:
            raise PermanentError(f"create folder {name!r}: Graph returned no item")
        return created.id

    async def _folder_by_name(self, drive_id: str, parent_id: str, name: str) -> str:
        url = graph_url(
            self.client,
            f"/drives/{quote(drive_id, safe='!')}/items/{quote(parent_id, safe='!')}:/{quote(name, safe='')}",
        )
        builder = self.client.drives.by_drive_id(drive_id).items.by_drive_item_id("_").with_url(url)
        try:
            item = await builder.get()
        except Exception as err:
            raise as_integration_error(err, f"find folder {name!r}") from err
        if item is None or not item.id:
            raise PermanentError(f"folder {name!r} exists but has no id")
        if item.folder is None and item.file is not None:
            raise PermanentError(f"{name!r} exists as a file, not a folder")
        return item.id

    # -- teams -----------------------------------------------------------------------------

    async def create_team_and_wait(self, display_name: str, description: str, owner_aad_id: str, **kwargs: Any) -> str:
        return await create_team_and_wait(
            self.client, display_name, description, owner_aad_id, sleep=self.sleep, **kwargs
        )


_OPERATION_LOCATION = [
    re.compile(r"teams\('(?P<team>[^']+)'\)/operations\('(?P<op>[^']+)'\)", re.IGNORECASE),
    re.compile(r"teams/(?P<team>[^/?]+)/operations/(?P<op>[^/?]+)", re.IGNORECASE),
]


def parse_operation_location(location: str) -> tuple[str, str] | None:
    """(team id, operation id) from ``/teams('{id}')/operations('{op}')``."""
    for pattern in _OPERATION_LOCATION:
        match = pattern.search(location)
        if match:
            return match.group("team"), match.group("op")
    return None


async def create_team_and_wait(
    client: GraphServiceClient,
    display_name: str,
    description: str,
    owner_aad_id: str,
    *,
    template: str = "standard",
    poll_interval: float = 5.0,
    max_poll_interval: float = 30.0,
    max_wait: float = 600.0,
    policy: RetryPolicy | None = None,
    sleep: Sleep = asyncio.sleep,
) -> str:
    """Create a team (``POST /teams`` → 202 + Location) and wait until it exists; its id.

    App-only creation needs an owner. When the operation is still running after `max_wait`
    seconds, `TeamCreationPending` carries the team and operation ids: resume with
    `wait_for_team_operation` instead of creating a second team.
    """
    base = client.request_adapter.base_url.rstrip("/")
    team = Team(
        display_name=display_name,
        description=description or None,
        members=[
            AadUserConversationMember(
                roles=["owner"],
                additional_data={"user@odata.bind": f"{base}/users('{owner_aad_id}')"},
            )
        ],
        additional_data={"template@odata.bind": f"{base}/teamsTemplates('{template}')"},
    )
    # POST /teams is not idempotent: a 502/504 may hide a team that was created anyway, so
    # kiota's retries are off for it and only 429/503 (not processed) are tried again.
    no_kiota_retry = RetryHandlerOption(max_retries=0, should_retry=False)

    async def post() -> HeadersInspectionHandlerOption:
        inspect = HeadersInspectionHandlerOption(inspect_request_headers=False, inspect_response_headers=True)
        await client.teams.post(team, RequestConfiguration(options=[inspect, no_kiota_retry]))
        return inspect

    try:
        inspect = await with_retries(
            post,
            policy or RetryPolicy(),
            f"create team {display_name!r}",
            sleep,
            statuses=frozenset({429, 503}),
        )
    except Exception as err:
        raise as_integration_error(err, f"create team {display_name!r}") from err
    location = next(iter(inspect.response_headers.get("location") or []), "")
    parsed = parse_operation_location(location)
    if parsed is None:
        raise PermanentError(f"create team {display_name!r}: no operation in Location {location!r}")
    team_id, operation_id = parsed
    return await wait_for_team_operation(
        client,
        team_id,
        operation_id,
        poll_interval=poll_interval,
        max_poll_interval=max_poll_interval,
        max_wait=max_wait,
        sleep=sleep,
    )


async def wait_for_team_operation(
    client: GraphServiceClient,
    team_id: str,
    operation_id: str,
    *,
    poll_interval: float = 5.0,
    max_poll_interval: float = 30.0,
    max_wait: float = 600.0,
    sleep: Sleep = asyncio.sleep,
) -> str:
    """Poll ``GET /teams/{id}/operations/{op}`` until it succeeds; the team id."""
    builder = client.teams.by_team_id(team_id).operations.by_teams_async_operation_id(operation_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait
    delay = poll_interval
    while True:
        try:
            operation = await builder.get()
        except Exception as err:
            if error_status(err) != 404 and not is_transient(err):
                raise as_integration_error(err, f"team operation {operation_id}") from err
            operation = None
        status = operation.status if operation else None
        if status == TeamsAsyncOperationStatus.Succeeded:
            return operation.target_resource_id if operation and operation.target_resource_id else team_id
        if status == TeamsAsyncOperationStatus.Failed:
            message = operation.error.message if operation and operation.error else ""
            raise PermanentError(f"team creation failed: {message or 'no reason given'}")
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TeamCreationPending(team_id, operation_id, retry_after=max_poll_interval)
        await sleep(min(delay, remaining))
        delay = min(delay * 2, max_poll_interval)
