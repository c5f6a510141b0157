"""Collaboration rooms: a channel per competition, provisioned one idempotent step at a time.

`GraphRoomProvisioner` implements `procurement.ports.RoomProvisioner`. Every step looks up
before it creates, so a step repeated after a crash, a restart or a retry finds what an earlier
run made (the Graph calls and their permissions are listed in docs/permissions.md):

- `ensure_channel`: ``GET /teams/{t}/channels?$filter=displayName eq '…'``, else
  ``POST /teams/{t}/channels`` (201). A private channel is created with its owner in ``members``
  (who must be in the team: added first when not). 409 ``NameAlreadyExists`` → looked up.
- `ensure_members`: ``GET``/``POST /teams/{t}/members`` (a private channel's members must be in
  the team; a standard channel's members *are* the team's) and ``GET``/``POST
  …/channels/{c}/members``. Already a member (409, or 400 saying so) is done; a person who can't
  be added is reported, not raised.
- `files_folder`: ``GET …/channels/{c}/filesFolder`` answers 404 for minutes after creation
  (SharePoint provisions lazily, and a private channel gets a site of its own): polled with
  backoff up to `files_folder_max_wait` seconds (15 minutes by default), then `TransientError`.
- `ensure_folders`: ``GET /drives/{d}/items/{i}/children``, then ``POST …/children`` with
  ``conflictBehavior: fail``; 409 ``nameAlreadyExists`` means it is there (looked up by path).
- `upload_file`: ``GET /drives/{d}/items/{folder}:/{name}`` first (an existing document is
  kept), then `DriveUploader` (our own retries: kiota skips octet-stream bodies).
- `ensure_tab`: ``GET …/channels/{c}/tabs?$expand=teamsApp`` by display name, then ``POST
  …/tabs`` with the Word file viewer (entityId = the file's sourcedoc GUID, contentUrl = folder
  webUrl + file name). Graph allows two tabs of one name, so the look-up is what prevents a second.

The creating POSTs (channel, tab) are not idempotent: kiota's retries are off for them and only
429/503 (not processed) are tried again; after an answer that leaves the outcome unknown
(502/504, a timeout, a dropped connection) the thing is looked up instead of posted again.
GETs keep kiota's retries (429/503/504 honouring `Retry-After`).

``POST /teams`` → 202 + ``Location: /teams('{id}')/operations('{op}')`` is polled until the
`teamsAsyncOperation` succeeds (`create_team_and_wait`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, unquote

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
from msgraph.generated.models.teams_tab import TeamsTab
from msgraph.generated.models.teams_tab_configuration import TeamsTabConfiguration
from msgraph.generated.teams.item.channels.channels_request_builder import ChannelsRequestBuilder
from msgraph.generated.teams.item.channels.item.tabs.tabs_request_builder import TabsRequestBuilder
from msgraph.generated.teams.item.members.members_request_builder import MembersRequestBuilder

from integrations.graph_client import odata_literal
from procurement.errors import PermanentError, TransientError
from procurement.ports import (
    LIST_FILES_LIMIT,
    ListedFile,
    MemberFailure,
    MemberProblem,
    MembershipType,
    MembersResult,
    RoomChannel,
    RoomFile,
    RoomFolder,
    RoomMember,
    RoomTab,
    channel_display_name,
)

from .drive_uploads import DriveUploader, drive_item_name
from .graph_client import (
    RetryPolicy,
    as_integration_error,
    describe,
    error_code,
    error_message,
    error_retry_after,
    error_status,
    graph_url,
    is_transient,
    with_retries,
)

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")

WORD_TAB_APP_ID = "com.microsoft.teamspace.tab.file.staticviewer.word"
_NO_KIOTA_RETRY = RetryHandlerOption(max_retries=0, should_retry=False)
_GUID = re.compile(r"[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}")
_SOURCEDOC = re.compile(r"sourcedoc=(?:%7B|\{)?([0-9A-Fa-f-]{36})", re.IGNORECASE)


class TeamCreationPending(TransientError):
    """The team is still being created; poll again later with `wait_for_team_operation`."""

    def __init__(self, team_id: str, operation_id: str, retry_after: float | None = None) -> None:
        super().__init__(f"team {team_id} is still being created (operation {operation_id})", retry_after)
        self.team_id = team_id
        self.operation_id = operation_id


def source_doc_id(item: DriveItem) -> str:
    """SharePoint's sourcedoc GUID of an item: from its eTag (``"{GUID},3"``) or its webUrl."""
    for text in (item.e_tag or "", unquote(item.web_url or "")):
        if "sourcedoc" in text.lower():
            match = _SOURCEDOC.search(text)
            if match:
                return match.group(1).upper()
        elif text.startswith(('"{', "{")):
            match = _GUID.search(text)
            if match:
                return match.group(0).upper()
    return ""


def _user_bind(client: GraphServiceClient, aad_id: str) -> str:
    return f"{client.request_adapter.base_url.rstrip('/')}/users('{aad_id}')"


def _member_body(client: GraphServiceClient, aad_id: str, owner: bool) -> AadUserConversationMember:
    return AadUserConversationMember(
        odata_type="#microsoft.graph.aadUserConversationMember",
        roles=["owner"] if owner else [],
        additional_data={"user@odata.bind": _user_bind(client, aad_id)},
    )


class GraphRoomProvisioner:
    """`RoomProvisioner` over Graph.

    Delays are constructor parameters so tests can run with sub-second backoff:
    `files_folder_max_wait` (total seconds to wait for a new channel's files folder; 15 minutes),
    `files_folder_initial_delay` / `files_folder_max_delay` (its backoff), `create_policy` (tries
    of the non-idempotent POSTs on 429/503), `member_retry_delays` (waits while a person just
    added to the team is not yet seen by the private channel), and the uploader's
    `small_upload_limit`, `chunk_size` and `upload_policy`.
    """

    def __init__(
        self,
        client: GraphServiceClient,
        *,
        files_folder_max_wait: float = 900.0,
        files_folder_initial_delay: float = 2.0,
        files_folder_max_delay: float = 60.0,
        create_policy: RetryPolicy | None = None,
        member_retry_delays: Sequence[float] = (2.0, 5.0, 10.0),
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
        self.create_policy = create_policy or RetryPolicy(attempts=4, base_delay=2.0, max_delay=60.0)
        self.member_retry_delays = tuple(member_retry_delays)
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

    # -- creating without creating twice ---------------------------------------------------

    async def _create_or_find(
        self,
        create: Callable[[], Awaitable[T | None]],
        find: Callable[[], Awaitable[T | None]],
        what: str,
        exists: Callable[[Exception], bool] = lambda err: False,
    ) -> T:
        """`create()` once; again only after 429/503 (Graph did not do it). When Graph says it
        exists already, or the answer leaves it unknown (502/504, timeout, dropped connection),
        `find()` it instead: a second POST could make a second one."""
        for attempt in range(self.create_policy.attempts):
            try:
                created = await create()
            except Exception as err:
                status = error_status(err)
                if status in (429, 503):
                    if attempt + 1 >= self.create_policy.attempts:
                        raise TransientError(
                            f"{what}: {describe(err)} after {attempt + 1} attempts",
                            error_retry_after(err),
                            status=status,
                            code=error_code(err) or None,
                        ) from err
                    delay = self.create_policy.delay(attempt, error_retry_after(err))
                    log.info("%s: %s, retrying in %.2fs", what, describe(err), delay)
                    await self.sleep(delay)
                    continue
                if exists(err) or is_transient(err):
                    log.info("%s: %s; looking it up instead of creating it again", what, describe(err))
                    found = await find()
                    if found is not None:
                        return found
                    raise TransientError(
                        f"{what}: {describe(err)}, and not found afterwards", retry_after=10.0, status=status
                    ) from err
                raise as_integration_error(err, what) from err
            if created is None:
                raise PermanentError(f"{what}: Graph returned nothing")
            return created
        raise AssertionError("unreachable")  # pragma: no cover

    # -- channel ---------------------------------------------------------------------------

    @staticmethod
    def _room_channel(team_id: str, channel: Channel) -> RoomChannel:
        membership = str(channel.membership_type.value) if channel.membership_type else "standard"
        return RoomChannel(
            team_id=team_id,
            channel_id=channel.id or "",
            display_name=channel.display_name or "",
            membership_type=membership,
            web_url=channel.web_url or "",
        )

    async def ensure_channel(
        self,
        team_id: str,
        name: str,
        description: str,
        owner_aad_id: str,
        membership_type: MembershipType = "private",
    ) -> RoomChannel:
        name = channel_display_name(name)  # unchanged when already valid
        found = await self.find_channel(team_id, name)
        if found is None:
            private = membership_type == "private"
            if private:
                # A private channel's owner must be in the team (Graph: "User is not found in the team").
                problem = await self._ensure_team_member(team_id, owner_aad_id)
                if problem is not None:
                    raise PermanentError(f"owner {owner_aad_id} can't join team {team_id}: {problem}")
            body = Channel(
                display_name=name,
                description=description or None,
                membership_type=ChannelMembershipType.Private if private else ChannelMembershipType.Standard,
                members=[_member_body(self.client, owner_aad_id, owner=True)] if private else None,
            )
            channels = self.client.teams.by_team_id(team_id).channels

            async def create() -> Channel | None:
                return await channels.post(body, RequestConfiguration(options=[_NO_KIOTA_RETRY]))

            def exists(err: Exception) -> bool:
                return error_status(err) == 409 or error_code(err).lower() == "namealreadyexists"

            found = await self._create_or_find(
                create, lambda: self.find_channel(team_id, name), f"create channel {name!r}", exists
            )
        channel = self._room_channel(team_id, found)
        if not channel.channel_id:
            raise PermanentError(f"channel {name!r}: Graph returned no id")
        if channel.membership_type != membership_type:
            # Never put a confidential competition in a channel everyone in the team can read.
            raise PermanentError(
                f"channel {name!r} exists as {channel.membership_type}, not {membership_type}", code="membershipType"
            )
        return channel

    async def find_channel(self, team_id: str, name: str) -> Channel | None:
        channels = self.client.teams.by_team_id(team_id).channels
        wanted = name.casefold()
        query = ChannelsRequestBuilder.ChannelsRequestBuilderGetQueryParameters(
            filter=f"displayName eq '{odata_literal(name)}'"
        )
        try:
            # Filtered first; the full list too, as $filter on channels has been unreliable.
            for config in (RequestConfiguration(query_parameters=query), None):
                page = await channels.get(config)
                while page is not None:
                    for channel in page.value or []:
                        if channel.id and (channel.display_name or "").casefold() == wanted:
                            return channel
                    page = await channels.with_url(page.odata_next_link).get() if page.odata_next_link else None
        except Exception as err:
            raise as_integration_error(err, f"find channel {name!r}") from err
        return None

    # -- members ---------------------------------------------------------------------------

    async def _team_member(self, team_id: str, aad_id: str) -> bool:
        members = self.client.teams.by_team_id(team_id).members
        query = MembersRequestBuilder.MembersRequestBuilderGetQueryParameters(
            filter=f"(microsoft.graph.aadUserConversationMember/userId eq '{odata_literal(aad_id)}')"
        )
        try:
            page = await members.get(RequestConfiguration(query_parameters=query))
        except Exception as err:
            raise as_integration_error(err, f"team {team_id} member {aad_id}") from err
        return any(
            isinstance(m, AadUserConversationMember) and (m.user_id or "").lower() == aad_id.lower()
            for m in (page.value if page and page.value else [])
        )

    async def _add_member(self, builder: Any, aad_id: str, owner: bool, what: str) -> MemberFailure | None:
        """POST a conversationMember; None when the person is in (now or before), else why not.
        Transient failures and missing permissions are raised: they are not about the person."""
        try:
            await builder.post(_member_body(self.client, aad_id, owner))
        except Exception as err:
            status = error_status(err)
            message = error_message(err).lower()
            if status == 409 or (status == 400 and "already" in message):
                return None
            if status == 404:
                return "unknown_user"
            if status == 400 and "not found in the team" in message:
                raise  # the caller waits for the team membership to reach the channel
            if status in (400, 422):
                log.warning("%s: %s", what, describe(err))
                return "not_allowed"
            raise as_integration_error(err, what) from err
        return None

    async def _ensure_team_member(
        self, team_id: str, aad_id: str, *, known_absent: bool = False
    ) -> MemberFailure | None:
        if not known_absent and await self._team_member(team_id, aad_id):
            return None
        members = self.client.teams.by_team_id(team_id).members
        return await self._add_member(members, aad_id, False, f"add {aad_id} to team {team_id}")

    async def _channel_members(self, channel: RoomChannel) -> dict[str, list[str]]:
        builder = self.client.teams.by_team_id(channel.team_id).channels.by_channel_id(channel.channel_id).members
        found: dict[str, list[str]] = {}
        try:
            page = await builder.get()
            while page is not None:
                for member in page.value or []:
                    if isinstance(member, AadUserConversationMember) and member.user_id:
                        found[member.user_id.lower()] = [r.lower() for r in member.roles or []]
                page = await builder.with_url(page.odata_next_link).get() if page.odata_next_link else None
        except Exception as err:
            raise as_integration_error(err, f"members of channel {channel.display_name!r}") from err
        return found

    async def ensure_members(self, channel: RoomChannel, members: Sequence[RoomMember]) -> MembersResult:
        wanted: dict[str, RoomMember] = {}
        for member in members:
            key = member.aad_id.strip().lower()
            if key and (key not in wanted or member.role == "owner"):
                wanted[key] = RoomMember(key, member.role)
        if not wanted:
            return MembersResult()
        private = channel.membership_type != "standard"
        present_before = await self._channel_members(channel) if private else {}
        added: list[str] = []
        present: list[str] = []
        failed: list[MemberProblem] = []
        for aad_id, member in wanted.items():
            if aad_id in present_before:
                present.append(member.aad_id)
                continue
            in_team = await self._team_member(channel.team_id, aad_id)
            if not in_team:
                problem = await self._ensure_team_member(channel.team_id, aad_id, known_absent=True)
                if problem is not None:
                    failed.append(MemberProblem(member.aad_id, problem))
                    continue
            if not private:
                # A standard channel's membership is the team's (Graph refuses channel members).
                (present if in_team else added).append(member.aad_id)
                continue
            problem = await self._add_to_private_channel(channel, member)
            if problem is not None:
                failed.append(MemberProblem(member.aad_id, problem))
            else:
                added.append(member.aad_id)
        return MembersResult(tuple(added), tuple(present), tuple(failed))

    async def _add_to_private_channel(self, channel: RoomChannel, member: RoomMember) -> MemberFailure | None:
        builder = self.client.teams.by_team_id(channel.team_id).channels.by_channel_id(channel.channel_id).members
        what = f"add {member.aad_id} to channel {channel.display_name!r}"
        for wait in (*self.member_retry_delays, None):
            try:
                return await self._add_member(builder, member.aad_id, member.role == "owner", what)
            except Exception as err:
                if error_status(err) != 400 or wait is None:
                    if error_status(err) == 400:
                        return "failed"  # still "not in the team" after waiting
                    raise
                # Just added to the team: the channel sees it after a moment.
                log.info("%s: not in the team yet, retrying in %.2fs", what, wait)
                await self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- files folder ----------------------------------------------------------------------

    async def files_folder(self, channel: RoomChannel) -> RoomFolder:
        """The channel's folder, waiting while it is provisioned (bounded by `files_folder_max_wait`)."""
        builder = self.client.teams.by_team_id(channel.team_id).channels.by_channel_id(channel.channel_id).files_folder
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
                    raise as_integration_error(err, f"files folder of channel {channel.display_name!r}") from err
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TransientError(
                        f"files folder of channel {channel.display_name!r} not ready after {attempt} tries: "
                        f"{describe(err)}",
                        retry_after=max(30.0, self.files_folder_max_delay),
                        status=error_status(err),
                        code="filesFolderNotReady",
                    ) from err
                wait = min(delay, remaining)
                log.info(
                    "files folder of %s not ready (%s); retrying in %.2fs", channel.channel_id, describe(err), wait
                )
                await self.sleep(wait)
                delay = min(delay * 2, self.files_folder_max_delay)
                continue
            drive_id = item.parent_reference.drive_id if item and item.parent_reference else None
            if item is None or not item.id or not drive_id:
                raise PermanentError(f"files folder of channel {channel.channel_id}: no drive or item id")
            return RoomFolder(drive_id=drive_id, item_id=item.id, name=item.name or "", web_url=item.web_url or "")

    # -- folders ---------------------------------------------------------------------------

    async def _children(self, folder: RoomFolder) -> list[DriveItem]:
        builder = self.client.drives.by_drive_id(folder.drive_id).items.by_drive_item_id(folder.item_id).children
        items: list[DriveItem] = []
        try:
            page = await builder.get()
            while page is not None:
                items.extend(page.value or [])
                page = await builder.with_url(page.odata_next_link).get() if page.odata_next_link else None
        except Exception as err:
            raise as_integration_error(err, f"list folder {folder.name!r}") from err
        return items

    async def ensure_folders(self, parent: RoomFolder, names: Sequence[str]) -> tuple[RoomFolder, ...]:
        existing = {(item.name or "").casefold(): item for item in await self._children(parent)}
        result: list[RoomFolder] = []
        for raw in names:
            name = drive_item_name(raw)
            item = existing.get(name.casefold())
            if item is None:
                item = await self._create_folder(parent, name)
            elif item.folder is None:
                raise PermanentError(f"{name!r} exists as a file, not a folder", code="nameAlreadyExists")
            if not item.id:
                raise PermanentError(f"folder {name!r} has no id")
            result.append(RoomFolder(parent.drive_id, item.id, item.name or name, item.web_url or ""))
        return tuple(result)

    async def _create_folder(self, parent: RoomFolder, name: str) -> DriveItem:
        children = self.client.drives.by_drive_id(parent.drive_id).items.by_drive_item_id(parent.item_id).children
        body = DriveItem(name=name, folder=Folder(), additional_data={"@microsoft.graph.conflictBehavior": "fail"})
        try:
            # conflictBehavior fail makes the POST idempotent: kiota may retry it (a 504 whose
            # folder was made comes back as 409 on the retry).
            created = await children.post(body)
        except Exception as err:
            if error_status(err) != 409:
                raise as_integration_error(err, f"create folder {name!r}") from err
            found = await self._item_by_name(parent, name)
            if found is None:
                raise TransientError(f"folder {name!r} exists but was not found yet", retry_after=10.0) from err
            if found.folder is None:
                raise PermanentError(f"{name!r} exists as a file, not a folder", code="nameAlreadyExists") from err
            return found
        if created is None or not created.id:
            raise PermanentError(f"create folder {name!r}: Graph returned no item")
        return created

    async def _item_by_name(self, folder: RoomFolder, name: str) -> DriveItem | None:
        """The item `name` directly in `folder`, or None (a path GET; names are percent-encoded)."""
        drive, parent = quote(folder.drive_id, safe="!"), quote(folder.item_id, safe="!")
        url = graph_url(self.client, f"/drives/{drive}/items/{parent}:/{quote(name, safe='')}")
        builder = self.client.drives.by_drive_id(folder.drive_id).items.by_drive_item_id("_").with_url(url)
        try:
            return await builder.get()
        except Exception as err:
            if error_status(err) == 404:
                return None
            raise as_integration_error(err, f"find {name!r}") from err

    # -- files -----------------------------------------------------------------------------

    async def upload_file(self, folder: RoomFolder, name: str, content: bytes, replace: bool = False) -> RoomFile:
        name = drive_item_name(name)
        item = await self._item_by_name(folder, name)
        if item is not None and item.folder is not None:
            raise PermanentError(f"{name!r} exists as a folder, not a file", code="nameAlreadyExists")
        if item is None or replace:
            # PUT …:/content replaces by name, so a retried upload lands on the same item.
            uploaded = await self.uploader.upload(folder.drive_id, name, content, parent_id=folder.item_id)
            builder = self.client.drives.by_drive_id(folder.drive_id).items.by_drive_item_id(uploaded.id)
            try:
                item = await builder.get()  # the upload answer lacks nothing, but a session's may
            except Exception as err:
                raise as_integration_error(err, f"uploaded {name!r}") from err
        if item is None or not item.id:
            raise PermanentError(f"upload {name!r}: no item")
        return RoomFile(
            drive_id=folder.drive_id,
            item_id=item.id,
            name=item.name or name,
            web_url=item.web_url or "",
            folder_web_url=folder.web_url,
            source_doc_id=source_doc_id(item),
        )

    # -- listing and reading (the archive's "arkiver") ------------------------------------------

    async def list_files(self, folder: RoomFolder) -> tuple[ListedFile, ...]:
        found: list[ListedFile] = []
        # The files folder, then each folder directly under it (one level, as the room is laid out).
        for item in await self._children(folder):
            if len(found) >= LIST_FILES_LIMIT:
                break
            if item.folder is not None and item.id:
                sub = RoomFolder(folder.drive_id, item.id, item.name or "", item.web_url or "")
                for child in await self._children(sub):
                    if child.file is not None and child.id and len(found) < LIST_FILES_LIMIT:
                        found.append(_listed(folder.drive_id, sub.name, child))
            elif item.file is not None and item.id:
                found.append(_listed(folder.drive_id, "", item))
        return tuple(found)

    async def read_file(self, drive_id: str, item_id: str) -> bytes:
        builder = self.client.drives.by_drive_id(drive_id).items.by_drive_item_id(item_id).content

        async def get() -> bytes | None:
            return await builder.get()  # Graph answers 302 to a pre-authenticated download url

        try:
            content = await with_retries(get, self.uploader.policy, f"read {item_id}", self.sleep)
        except Exception as err:
            raise as_integration_error(err, f"read file {item_id!r}") from err
        return content or b""

    # -- tab -------------------------------------------------------------------------------

    async def find_tab(self, channel: RoomChannel, display_name: str) -> TeamsTab | None:
        builder = self.client.teams.by_team_id(channel.team_id).channels.by_channel_id(channel.channel_id).tabs
        query = TabsRequestBuilder.TabsRequestBuilderGetQueryParameters(expand=["teamsApp"])
        wanted = display_name.casefold()
        try:
            page = await builder.get(RequestConfiguration(query_parameters=query))
        except Exception as err:
            raise as_integration_error(err, f"tabs of channel {channel.display_name!r}") from err
        for tab in page.value if page and page.value else []:
            app = tab.teams_app.id if tab.teams_app else WORD_TAB_APP_ID
            if (tab.display_name or "").casefold() == wanted and app == WORD_TAB_APP_ID:
                return tab
        return None

    async def ensure_tab(self, channel: RoomChannel, file: RoomFile, display_name: str) -> RoomTab:
        tab = await self.find_tab(channel, display_name)
        if tab is None:
            if not file.source_doc_id or not file.folder_web_url:
                raise PermanentError(f"tab {display_name!r}: the file {file.name!r} has no sourcedoc id or folder url")
            base = self.client.request_adapter.base_url.rstrip("/")
            body = TeamsTab(
                display_name=display_name,
                configuration=TeamsTabConfiguration(
                    entity_id=file.source_doc_id,
                    content_url=f"{file.folder_web_url.rstrip('/')}/{quote(file.name)}",
                    remove_url=None,
                    website_url=None,
                ),
                additional_data={"teamsApp@odata.bind": f"{base}/appCatalogs/teamsApps/{WORD_TAB_APP_ID}"},
            )
            builder = self.client.teams.by_team_id(channel.team_id).channels.by_channel_id(channel.channel_id).tabs

            async def create() -> TeamsTab | None:
                return await builder.post(body, RequestConfiguration(options=[_NO_KIOTA_RETRY]))

            tab = await self._create_or_find(
                create, lambda: self.find_tab(channel, display_name), f"create tab {display_name!r}"
            )
        if not tab.id:
            raise PermanentError(f"tab {display_name!r}: Graph returned no id")
        return RoomTab(tab_id=tab.id, display_name=tab.display_name or display_name, web_url=tab.web_url or "")

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


def _listed(drive_id: str, folder: str, item: DriveItem) -> ListedFile:
    modified = item.last_modified_date_time.isoformat() if item.last_modified_date_time else ""
    return ListedFile(
        drive_id=drive_id,
        item_id=str(item.id),
        name=item.name or "",
        folder=folder,
        size=int(item.size or 0),
        web_url=item.web_url or "",
        modified=modified,
    )
