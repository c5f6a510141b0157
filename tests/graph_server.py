"""A Microsoft Graph-shaped HTTP server for adapter tests (aiohttp, 127.0.0.1, random port).

It implements the endpoints the integrations use, with Graph's status codes, headers and
JSON shapes (see the `_routes` table), and the behaviours that matter:

- every ``/v1.0`` call needs ``Authorization: Bearer <token>`` (401 ``InvalidAuthenticationToken``);
- ``POST /teams`` → 202 + ``Location: /teams('{id}')/operations('{op}')``; the operation
  succeeds after `team_operation_polls` GETs;
- ``POST /teams/{id}/channels`` → 201, a duplicate name (case-insensitive) → 409
  ``NameAlreadyExists``; ``…/filesFolder`` → 404 ``NotFound`` for the first
  `files_folder_not_found_polls` calls (and `files_folder_ready_after` seconds) after creation;
- private channels: ``membershipType: private`` needs one ``aadUserConversationMember`` owner
  (``@odata.type``, ``user@odata.bind``) who is in the team; members given at creation who are
  not owners are dropped (as app-only creation does); the channel gets its own SharePoint site
  (drive). ``…/channels/{id}/members``: list, add (a private channel only: a standard one's
  members are the team's → 400; someone not in the team → 400 "User is not found in the team";
  twice → 409; unknown user → 404). ``/teams/{id}/members``: list (``$filter`` on userId), add
  (twice → 409);
- tabs: ``GET/POST …/channels/{id}/tabs`` (``$expand=teamsApp``); a Word tab needs
  ``configuration.entityId`` and ``contentUrl``; like Graph, two tabs may share a name;
- folders: ``GET …/children``; ``POST …/children`` with ``conflictBehavior: fail`` → 409
  ``nameAlreadyExists``; items carry an ``eTag`` ``"{GUID},n"`` (the sourcedoc id) and Office
  files a ``Doc.aspx?sourcedoc=…`` webUrl;
- uploads: ``PUT …:/name:/content``; upload sessions whose url is pre-authenticated
  (a request carrying ``Authorization`` gets 401), chunks checked for ``Content-Range``,
  contiguity (416), 320 KiB multiples (400), ``nextExpectedRanges`` in 202 answers;
- installedApps: POST 201 (no body) / 409, filtered GET with ``$expand=teamsApp``, GET chat;
  unknown users → 404, blocked users → 403 (an app permission policy);
- application permissions: ``server.revoke("AppCatalog.Read.All")`` makes the endpoints that
  need it answer 403 ``Forbidden`` "Missing role permissions on the request…" as Graph does
  (installedApps need ``TeamsAppInstallation.ReadWriteSelfForUser.All``, the catalog
  ``AppCatalog.Read.All``);
- SharePoint lists: get by id or title, items filtered by ``fields/X eq '…'`` (400 without the
  ``Prefer: HonorNonIndexedQueriesWarningMayFailRandomly`` header unless indexed), create,
  PATCH fields; ``PATCH /drives/{d}/items/{i}/listItem/fields`` (unknown columns → 400).

Fault injection: ``server.fail_next("POST", r"/channels$", 429, {"Retry-After": "1"}, times=2)``;
``commit=True`` does the work first and then answers with the fault (a 504 after the channel was
created); status ``DROP`` (0) closes the connection without an answer.
Every request is recorded (`server.requests`) with method, path, query, headers, body, time
and the status answered.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web

CHUNK_UNIT = 320 * 1024
MAX_CHUNK = 60 * 1024 * 1024
PREFER_NON_INDEXED = "HonorNonIndexedQueriesWarningMayFailRandomly"
TENANT_ID = "00000000-0000-4000-8000-0000000000aa"
INSTALL_PERMISSION = "TeamsAppInstallation.ReadWriteSelfForUser.All"
DROP = 0  # a fault status: close the connection without answering
PASS = -1  # a fault status: answer normally (with `delay`: a slow answer, a client timeout)
WORD_TAB_APP = "com.microsoft.teamspace.tab.file.staticviewer.word"
AAD_MEMBER = "#microsoft.graph.aadUserConversationMember"
_OFFICE_SUFFIXES = (".docx", ".xlsx", ".pptx")
CATALOG_PERMISSION = "AppCatalog.Read.All"

_DEFAULT_FAULT_CODES = {
    429: ("TooManyRequests", "Too many requests. Retry after the time in the Retry-After header."),
    500: ("generalException", "An internal server error occurred."),
    502: ("BadGateway", "Bad gateway."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable."),
    504: ("gatewayTimeout", "The gateway timed out."),
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _new_id() -> str:
    return str(uuid.uuid4())


def graph_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": _now()[:19],
                "request-id": _new_id(),
                "client-request-id": _new_id(),
            },
        }
    }
    return web.json_response(body, status=status, headers=headers)


def _odata_literal(expr: str, pattern: str) -> str | None:
    """The quoted value from ``<pattern> eq 'value'`` (with '' unescaped), or None."""
    match = re.fullmatch(rf"\s*{pattern}\s+eq\s+'((?:[^']|'')*)'\s*", expr or "")
    return match.group(1).replace("''", "'") if match else None


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    time: float
    status: int = 0

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    headers: dict[str, str]
    times: int
    body: Any = None
    after: int = 0
    commit: bool = False
    delay: float = 0.0


@dataclass
class Throttle:
    """At most `per_second` matching requests a second (a token bucket of `burst`); more get 429."""

    method: str
    path: re.Pattern[str]
    per_second: float
    burst: float
    retry_after: str
    tokens: float = 0.0
    at: float = 0.0
    refused: int = 0


@dataclass
class Item:
    id: str
    name: str
    parent_id: str | None
    is_folder: bool
    content: bytes = b""
    fields: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=_now)
    modified: str = field(default_factory=_now)
    unique_id: str = field(default_factory=lambda: str(uuid.uuid4()).upper())  # SharePoint's sourcedoc
    version: int = 1
    retention_label: str = ""  # PATCH …/retentionLabel


@dataclass
class Drive:
    id: str
    web_url: str
    items: dict[str, Item] = field(default_factory=dict)
    root_id: str = ""
    columns: set[str] | None = None  # listItem columns accepted by PATCH …/listItem/fields

    def children(self, parent_id: str) -> list[Item]:
        return [i for i in self.items.values() if i.parent_id == parent_id]

    def child(self, parent_id: str, name: str) -> Item | None:
        for item in self.children(parent_id):
            if item.name.casefold() == name.casefold():
                return item
        return None

    def path_of(self, item: Item) -> str:
        parts: list[str] = []
        current: Item | None = item
        while current is not None and current.parent_id is not None:
            parts.append(current.name)
            current = self.items.get(current.parent_id)
        return "/".join(reversed(parts))


@dataclass
class Channel:
    id: str
    display_name: str
    description: str | None
    membership_type: str
    created_at: float
    misses_left: int
    folder_id: str | None = None
    drive_id: str | None = None  # a private channel's own site; None: the team's drive
    members: dict[str, Member] = field(default_factory=dict)  # membership id -> member
    tabs: dict[str, Tab] = field(default_factory=dict)


@dataclass
class Member:
    id: str
    user_id: str
    roles: list[str]


@dataclass
class Tab:
    id: str
    display_name: str
    app_id: str
    configuration: dict[str, Any]


@dataclass
class Team:
    id: str
    display_name: str
    description: str | None
    drive_id: str
    ready: bool = True
    channels: dict[str, Channel] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)  # membership id -> member


@dataclass
class Operation:
    id: str
    team_id: str
    polls_left: int
    created: str = field(default_factory=_now)
    attempts: int = 0


@dataclass
class Installation:
    id: str
    app_id: str
    chat_id: str


@dataclass
class UploadSession:
    id: str
    drive_id: str
    parent_id: str
    name: str
    conflict: str
    expires: str
    received: bytearray = field(default_factory=bytearray)
    total: int | None = None


@dataclass
class SpList:
    id: str
    display_name: str
    indexed: set[str] = field(default_factory=set)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 1
    # Column definitions by internal name, for lists made through the API (`POST …/lists`):
    # then fields outside them are refused as Graph does. None: any field is accepted.
    columns: dict[str, dict[str, Any]] | None = None


Handler = Callable[[web.Request, "re.Match[str]", bytes], Awaitable[web.StreamResponse]]


class GraphTestServer:
    """``async with GraphTestServer() as graph: …`` — `graph.base_url` is the ``/v1.0`` root."""

    def __init__(
        self,
        *,
        token: str = "test-token",
        files_folder_not_found_polls: int = 2,
        files_folder_ready_after: float = 0.0,
        team_operation_polls: int = 2,
        bot_id: str = "28:00000000-0000-4000-8000-00000000b07",
    ) -> None:
        self.token = token
        self.files_folder_not_found_polls = files_folder_not_found_polls
        self.files_folder_ready_after = files_folder_ready_after
        self.team_operation_polls = team_operation_polls
        self.bot_id = bot_id
        self.requests: list[RecordedRequest] = []
        self.unhandled: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.throttles: list[Throttle] = []
        self.revoked: set[str] = set()  # application permissions the app does not have
        self.users: dict[str, dict[str, Any]] = {}
        self.catalog: dict[str, dict[str, Any]] = {}
        self.installations: dict[str, dict[str, Installation]] = {}  # user -> installation id -> …
        self.teams: dict[str, Team] = {}
        self.operations: dict[str, Operation] = {}
        self.drives: dict[str, Drive] = {}
        self.sessions: dict[str, UploadSession] = {}
        self.sites: dict[str, dict[str, SpList]] = {}
        self.retention_labels: set[str] | None = None  # the tenant's published labels; None: any
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"^/users/([^/]+)$"), self._get_user),
            ("POST", re.compile(r"^/users/([^/]+)/checkMemberGroups$"), self._check_member_groups),
            ("POST", re.compile(r"^/users/([^/]+)/teamwork/installedApps$"), self._install_app),
            ("GET", re.compile(r"^/users/([^/]+)/teamwork/installedApps$"), self._list_installed),
            (
                "GET",
                re.compile(r"^/users/([^/]+)/teamwork/installedApps/([^/]+)/chat$"),
                self._installed_chat,
            ),
            ("GET", re.compile(r"^/appCatalogs/teamsApps$"), self._list_catalog),
            ("POST", re.compile(r"^/teams$"), self._create_team),
            ("GET", re.compile(r"^/teams/([^/]+)/operations/([^/]+)$"), self._get_operation),
            ("GET", re.compile(r"^/teams/([^/]+)$"), self._get_team),
            ("POST", re.compile(r"^/teams/([^/]+)/channels$"), self._create_channel),
            ("GET", re.compile(r"^/teams/([^/]+)/members$"), self._list_team_members),
            ("POST", re.compile(r"^/teams/([^/]+)/members$"), self._add_team_member),
            ("GET", re.compile(r"^/teams/([^/]+)/channels/([^/]+)/members$"), self._list_channel_members),
            ("POST", re.compile(r"^/teams/([^/]+)/channels/([^/]+)/members$"), self._add_channel_member),
            ("GET", re.compile(r"^/teams/([^/]+)/channels/([^/]+)/tabs$"), self._list_tabs),
            ("POST", re.compile(r"^/teams/([^/]+)/channels/([^/]+)/tabs$"), self._create_tab),
            ("GET", re.compile(r"^/teams/([^/]+)/channels$"), self._list_channels),
            (
                "GET",
                re.compile(r"^/teams/([^/]+)/channels/([^/]+)/filesFolder$"),
                self._files_folder,
            ),
            ("GET", re.compile(r"^/teams/([^/]+)/channels/([^/]+)$"), self._get_channel),
            ("POST", re.compile(r"^/drives/([^/]+)/items/([^/:]+)/children$"), self._create_child),
            ("GET", re.compile(r"^/drives/([^/]+)/items/([^/:]+)/children$"), self._list_children),
            (
                "PUT",
                re.compile(r"^/drives/([^/]+)/(?:items/([^/:]+)|root):/(.+):/content$"),
                self._put_content,
            ),
            (
                "POST",
                re.compile(r"^/drives/([^/]+)/(?:items/([^/:]+)|root):/(.+):/createUploadSession$"),
                self._create_session,
            ),
            (
                "PATCH",
                re.compile(r"^/drives/([^/]+)/items/([^/:]+)/listItem/fields$"),
                self._patch_item_fields,
            ),
            (
                "GET",
                re.compile(r"^/drives/([^/]+)/(?:items/([^/:]+)|root):/(.+?):?$"),
                self._get_by_path,
            ),
            ("GET", re.compile(r"^/drives/([^/]+)/items/([^/:]+)$"), self._get_item),
            ("POST", re.compile(r"^/sites/([^/]+)/lists$"), self._create_list),
            ("GET", re.compile(r"^/sites/([^/]+)/lists/([^/]+)/columns$"), self._list_columns),
            ("POST", re.compile(r"^/sites/([^/]+)/lists/([^/]+)/columns$"), self._add_column),
            ("PATCH", re.compile(r"^/sites/([^/]+)/lists/([^/]+)/columns/([^/]+)$"), self._patch_column),
            ("GET", re.compile(r"^/sites/([^/]+)/lists/([^/]+)/items/([^/]+)$"), self._get_list_item),
            ("GET", re.compile(r"^/drives/([^/]+)/items/([^/:]+)/content$"), self._get_content),
            ("PATCH", re.compile(r"^/drives/([^/]+)/items/([^/:]+)/retentionLabel$"), self._set_retention_label),
            ("GET", re.compile(r"^/sites/([^/]+)/lists/([^/]+)$"), self._get_list),
            ("GET", re.compile(r"^/sites/([^/]+)/lists/([^/]+)/items$"), self._list_items),
            ("POST", re.compile(r"^/sites/([^/]+)/lists/([^/]+)/items$"), self._create_list_item),
            (
                "PATCH",
                re.compile(r"^/sites/([^/]+)/lists/([^/]+)/items/([^/]+)/fields$"),
                self._patch_list_item,
            ),
        ]

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> GraphTestServer:
        app = web.Application(client_max_size=MAX_CHUNK + 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1.0"

    # -- seeding ------------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str | None = None,
        display_name: str = "",
        *,
        blocked: bool = False,
        mail: str = "",
        groups: tuple[str, ...] = (),
    ) -> str:
        user_id = (user_id or _new_id()).lower()
        self.users[user_id] = {
            "id": user_id,
            "displayName": display_name,
            "blocked": blocked,
            "mail": mail,
            "groups": {g.lower() for g in groups},
        }
        return user_id

    def add_catalog_app(
        self,
        app_id: str | None = None,
        *,
        external_id: str | None = None,
        display_name: str = "Innkjøpsassistenten",
    ) -> str:
        app_id = app_id or _new_id()
        self.catalog[app_id] = {
            "id": app_id,
            "externalId": external_id or _new_id(),
            "displayName": display_name,
            "distributionMethod": "organization",
        }
        return app_id

    def add_drive(
        self,
        drive_id: str | None = None,
        *,
        columns: set[str] | None = None,
        web_url: str | None = None,
    ) -> str:
        drive_id = drive_id or "b!" + base64.urlsafe_b64encode(uuid.uuid4().bytes * 2).decode().rstrip("=")
        root = Item(id=self._item_id(), name="root", parent_id=None, is_folder=True)
        drive = Drive(
            id=drive_id,
            web_url=web_url or f"https://contoso.sharepoint.com/sites/x/{drive_id[-6:]}",
            root_id=root.id,
            columns=columns,
        )
        drive.items[root.id] = root
        self.drives[drive_id] = drive
        return drive_id

    def add_team(self, team_id: str | None = None, display_name: str = "Innkjøp") -> str:
        team_id = team_id or _new_id()
        drive_id = self.add_drive(
            web_url=f"https://contoso.sharepoint.com/sites/{quote(display_name)}/Shared%20Documents"
        )
        team = Team(id=team_id, display_name=display_name, description=None, drive_id=drive_id)
        self.teams[team_id] = team
        self._add_channel(team, "General", "The general channel", ready=True)
        return team_id

    def add_site(self, site_id: str | None = None) -> str:
        site_id = site_id or f"contoso.sharepoint.com,{_new_id()},{_new_id()}"
        self.sites[site_id] = {}
        return site_id

    def add_list(self, site_id: str, display_name: str, *, indexed: set[str] | None = None) -> str:
        list_id = _new_id()
        self.sites[site_id][list_id] = SpList(id=list_id, display_name=display_name, indexed=indexed or set())
        return list_id

    def revoke(self, *permissions: str) -> None:
        """Take application permissions from the app (admin consent withdrawn, never granted)."""
        self.revoked.update(permissions)

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        headers: dict[str, str] | None = None,
        times: int = 1,
        body: Any = None,
        *,
        after: int = 0,
        commit: bool = False,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` requests matching `method` ("*" for any) and `path_regex`
        (searched in the decoded path, e.g. ``/v1.0/teams/…`` or ``/upload/…``) with `status`
        (a Graph error body unless `body` is given), letting the first `after` matches pass.
        `commit`: handle the request first, then answer with the fault (the work is done but the
        caller can't know); `status` `DROP`: close the connection instead of answering; `delay`:
        wait that many seconds first (status `PASS` then answers normally: a slow answer)."""
        self.faults.append(
            Fault(
                method.upper(),
                re.compile(path_regex),
                status,
                dict(headers or {}),
                times,
                body,
                after,
                commit,
                delay,
            )
        )

    def throttle(
        self, method: str, path_regex: str, per_second: float, *, burst: float = 1.0, retry_after: str = "1"
    ) -> Throttle:
        """From now on, at most `per_second` requests a second matching `method` ("*" for any) and
        `path_regex` (after a burst of `burst`); the others get 429 with `Retry-After`, as
        SharePoint throttles an app. The returned `Throttle` counts the refused ones."""
        rule = Throttle(method.upper(), re.compile(path_regex), per_second, burst, retry_after, burst, time.monotonic())
        self.throttles.append(rule)
        return rule

    # -- inspection ---------------------------------------------------------------------------

    def requests_matching(self, method: str, path_regex: str) -> list[RecordedRequest]:
        pattern = re.compile(path_regex)
        return [r for r in self.requests if (method == "*" or r.method == method.upper()) and pattern.search(r.path)]

    def team_channel(self, team_id: str, name: str) -> Channel | None:
        for channel in self.teams[team_id].channels.values():
            if channel.display_name.casefold() == name.casefold():
                return channel
        return None

    def add_team_member(self, team_id: str, user_id: str, *, owner: bool = False) -> None:
        member = Member(_new_id(), user_id.lower(), ["owner"] if owner else [])
        self.teams[team_id].members[member.id] = member

    def channel_drive(self, team_id: str, channel: Channel) -> str:
        """The drive holding a channel's files (a private channel's own site)."""
        return channel.drive_id or self.teams[team_id].drive_id

    def item_at(self, drive_id: str, path: str) -> Item | None:
        drive = self.drives[drive_id]
        current = drive.items[drive.root_id]
        for part in [p for p in path.split("/") if p]:
            child = drive.child(current.id, part)
            if child is None:
                return None
            current = child
        return current

    def list_items(self, site_id: str, list_id: str) -> dict[str, dict[str, Any]]:
        return self.sites[site_id][list_id].items

    # -- dispatch -----------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            time=time.monotonic(),
        )
        self.requests.append(record)
        response = await self._answer(request, record, body)
        record.status = response.status
        return response

    async def _answer(self, request: web.Request, record: RecordedRequest, body: bytes) -> web.StreamResponse:
        path = request.path
        if path.startswith("/upload/"):
            fault = self._take_fault(request.method, path)
            if fault is not None and fault.delay:
                await asyncio.sleep(fault.delay)
            if fault is not None and fault.status == PASS:
                fault = None
            if fault is not None and not fault.commit:
                return self._fault_response(fault, request)
            # commit: the chunk lands, then the answer is lost (the client must ask the session).
            answer = await self._upload_url(request, path[len("/upload/") :], body)
            return self._fault_response(fault, request) if fault is not None else answer
        if path.startswith("/download/"):
            fault = self._take_fault(request.method, path)
            if fault is not None:
                return self._fault_response(fault, request)
            return self._download(path[len("/download/") :])
        if not path.startswith("/v1.0/"):
            return graph_error(404, "NotFound", f"No route for {path}")
        if request.headers.get("Authorization", "") != f"Bearer {self.token}":
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty."
                if "Authorization" not in request.headers
                else "Access token validation failure. Invalid audience.",
                {
                    "WWW-Authenticate": 'Bearer realm="", authorization_uri='
                    '"https://login.microsoftonline.com/common/oauth2/authorize", '
                    'client_id="00000003-0000-0000-c000-000000000000"'
                },
            )
        throttled = self._throttled(request.method, path)
        if throttled is not None:
            return throttled
        fault = self._take_fault(request.method, path)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status == PASS:
            fault = None
        if fault is not None and not fault.commit:
            return self._fault_response(fault, request)
        relative = path[len("/v1.0") :]
        for method, pattern, handler in self._routes:
            if method != request.method:
                continue
            match = pattern.match(relative)
            if match:
                answer = await handler(request, match, body)
                return self._fault_response(fault, request) if fault is not None else answer
        self.unhandled.append(record)
        return graph_error(400, "BadRequest", f"Resource not found for the segment '{relative}'.")

    def _throttled(self, method: str, path: str) -> web.Response | None:
        for rule in self.throttles:
            if rule.method in ("*", method.upper()) and rule.path.search(path):
                now = time.monotonic()
                rule.tokens = min(rule.burst, rule.tokens + (now - rule.at) * rule.per_second)
                rule.at = now
                if rule.tokens < 1.0:
                    rule.refused += 1
                    code, message = _DEFAULT_FAULT_CODES[429]
                    return graph_error(429, code, message, {"Retry-After": rule.retry_after})
                rule.tokens -= 1.0
        return None

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method in ("*", method.upper()) and fault.path.search(path):
                if fault.after > 0:
                    fault.after -= 1
                    continue
                fault.times -= 1
                return fault
        return None

    @staticmethod
    def _fault_response(fault: Fault, request: web.Request) -> web.Response:
        if fault.status == DROP:
            # No answer at all: the client sees the connection close (httpx RemoteProtocolError).
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("dropped by fault injection")
        if fault.body is not None:
            return web.json_response(fault.body, status=fault.status, headers=fault.headers)
        code, message = _DEFAULT_FAULT_CODES.get(fault.status, ("generalException", "Injected failure."))
        return graph_error(fault.status, code, message, fault.headers)

    def _item_id(self) -> str:
        return "01" + base64.b32encode(uuid.uuid4().bytes).decode().rstrip("=")[:32]

    @staticmethod
    def _body(raw: bytes) -> dict[str, Any]:
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    # -- users and app installations ----------------------------------------------------------

    def _permission_error(self, needed: str) -> web.Response | None:
        """Graph's answer when the token lacks the role an endpoint needs."""
        if needed not in self.revoked:
            return None
        granted = ", ".join(sorted({INSTALL_PERMISSION, CATALOG_PERMISSION} - self.revoked))
        return graph_error(
            403,
            "Forbidden",
            f"Missing role permissions on the request. API requires one of "
            f"'{needed}'. Roles on the request '{granted}'.",
        )

    def _user_or_error(self, user_id: str) -> tuple[dict[str, Any] | None, web.Response | None]:
        missing = self._permission_error(INSTALL_PERMISSION)
        if missing is not None:
            return None, missing
        user = self.users.get(user_id.lower())
        if user is None:
            return None, graph_error(404, "NotFound", f"User '{user_id}' was not found in the tenant.")
        if user["blocked"]:
            return None, graph_error(403, "Forbidden", "The app is blocked by an app permission policy for this user.")
        return user, None

    def _find_user(self, key: str) -> dict[str, Any] | None:
        key = key.lower()
        return self.users.get(key) or next(
            (u for u in self.users.values() if u["mail"] and u["mail"].lower() == key), None
        )

    async def _get_user(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        key = match.group(1)
        user = self._find_user(key)
        if user is None:
            return graph_error(
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
            )
        return web.json_response(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
                "id": user["id"],
                "displayName": user["displayName"],
                "mail": user["mail"] or None,
                "userPrincipalName": user["mail"] or f"{user['id']}@example.onmicrosoft.com",
            }
        )

    async def _check_member_groups(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        user = self._find_user(match.group(1))
        if user is None:
            return graph_error(404, "Request_ResourceNotFound", f"Resource '{match.group(1)}' does not exist.")
        wanted = self._body(raw).get("groupIds")
        if not isinstance(wanted, list) or not wanted or len(wanted) > 20:
            return graph_error(400, "Request_BadRequest", "groupIds must hold 1 to 20 ids.")
        value = [g for g in wanted if isinstance(g, str) and g.lower() in user["groups"]]
        return web.json_response(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)",
                "value": value,
            }
        )

    async def _install_app(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        user, error = self._user_or_error(match.group(1))
        if error is not None:
            return error
        assert user is not None
        bind = str(self._body(raw).get("teamsApp@odata.bind", ""))
        found = re.search(r"/appCatalogs/teamsApps(?:/|\(')([^/'()]+)", bind)
        if not found:
            return graph_error(400, "BadRequest", "teamsApp@odata.bind is required.")
        app_id = found.group(1)
        if app_id not in self.catalog:
            return graph_error(404, "NotFound", f"App '{app_id}' was not found in the app catalog.")
        installed = self.installations.setdefault(user["id"], {})
        if any(i.app_id == app_id for i in installed.values()):
            return graph_error(409, "Conflict", "App is already installed.")
        installation_id = base64.urlsafe_b64encode(f"{user['id']}##{app_id}".encode()).decode().rstrip("=")
        chat_id = f"19:{user['id']}_{self.bot_id.split(':', 1)[-1]}@unq.gbl.spaces"
        installed[installation_id] = Installation(installation_id, app_id, chat_id)
        return web.Response(status=201)

    async def _list_catalog(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        missing = self._permission_error(CATALOG_PERMISSION)
        if missing is not None:
            return missing
        wanted_filter = request.query.get("$filter")
        wanted = _odata_literal(wanted_filter, "externalId") if wanted_filter else None
        if wanted_filter and wanted is None:
            return graph_error(400, "BadRequest", f"Unsupported filter: {wanted_filter}")
        value = [app for app in self.catalog.values() if wanted is None or app["externalId"] == wanted]
        return web.json_response(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#appCatalogs/teamsApps",
                "value": value,
            }
        )

    async def _list_installed(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        user, error = self._user_or_error(match.group(1))
        if error is not None:
            return error
        assert user is not None
        expand = request.query.get("$expand", "")
        wanted_filter = request.query.get("$filter")
        wanted_app = _odata_literal(wanted_filter, r"teamsApp/id") if wanted_filter else None
        if wanted_filter and wanted_app is None:
            return graph_error(400, "BadRequest", f"Unsupported filter: {wanted_filter}")
        value = []
        for installation in self.installations.get(user["id"], {}).values():
            if wanted_app is not None and installation.app_id != wanted_app:
                continue
            entry: dict[str, Any] = {
                "@odata.type": "#microsoft.graph.userScopeTeamsAppInstallation",
                "id": installation.id,
            }
            if "teamsApp" in expand:
                entry["teamsApp"] = self.catalog[installation.app_id]
            value.append(entry)
        return web.json_response(
            {
                "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#users('{user['id']}')/teamwork/installedApps",
                "value": value,
            }
        )

    async def _installed_chat(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        user, error = self._user_or_error(match.group(1))
        if error is not None:
            return error
        assert user is not None
        installation = self.installations.get(user["id"], {}).get(match.group(2))
        if installation is None:
            return graph_error(404, "NotFound", "Installation not found.")
        return web.json_response(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#chats/$entity",
                "id": installation.chat_id,
                "topic": None,
                "createdDateTime": _now(),
                "lastUpdatedDateTime": _now(),
                "chatType": "oneOnOne",
                "webUrl": None,
                "tenantId": TENANT_ID,
                "onlineMeetingInfo": None,
                "viewpoint": None,
            }
        )

    # -- teams and channels -------------------------------------------------------------------

    def _team_json(self, team: Team) -> dict[str, Any]:
        return {
            "id": team.id,
            "displayName": team.display_name,
            "description": team.description,
            "isArchived": False,
            "webUrl": f"https://teams.microsoft.com/l/team/19%3a{team.id}%40thread.tacv2/conversations?groupId={team.id}&tenantId={TENANT_ID}",
        }

    def _channel_json(self, team: Team, channel: Channel) -> dict[str, Any]:
        return {
            "id": channel.id,
            "createdDateTime": _now(),
            "displayName": channel.display_name,
            "description": channel.description,
            "isFavoriteByDefault": None,
            "email": "",
            "tenantId": TENANT_ID,
            "membershipType": channel.membership_type,
            "webUrl": (
                f"https://teams.microsoft.com/l/channel/{quote(channel.id, safe='')}/"
                f"{quote(channel.display_name, safe='')}?groupId={team.id}&tenantId={TENANT_ID}"
            ),
        }

    def _add_channel(
        self,
        team: Team,
        name: str,
        description: str | None,
        *,
        ready: bool = False,
        membership: str = "standard",
    ) -> Channel:
        channel = Channel(
            id=f"19:{uuid.uuid4().hex}@thread.tacv2",
            display_name=name,
            description=description,
            membership_type=membership,
            created_at=time.monotonic(),
            misses_left=0 if ready else self.files_folder_not_found_polls,
        )
        team.channels[channel.id] = channel
        return channel

    def _team_or_error(self, team_id: str) -> tuple[Team | None, web.Response | None]:
        team = self.teams.get(team_id)
        if team is None or not team.ready:
            return None, graph_error(404, "NotFound", f"No team found with Group Id {team_id}")
        return team, None

    async def _create_team(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        body = self._body(raw)
        if not body.get("template@odata.bind") or not body.get("displayName"):
            return graph_error(400, "BadRequest", "template@odata.bind and displayName are required.")
        owners = [m for m in body.get("members") or [] if "owner" in (m.get("roles") or [])]
        if not owners:
            return graph_error(
                400,
                "BadRequest",
                "Team owner must be provided when creating a team with application permissions.",
            )
        team_id = self.add_team(display_name=str(body["displayName"]))
        team = self.teams[team_id]
        team.description = body.get("description")
        team.ready = False
        operation = Operation(id=_new_id(), team_id=team_id, polls_left=self.team_operation_polls)
        self.operations[operation.id] = operation
        return web.Response(
            status=202,
            headers={
                "Location": f"/teams('{team_id}')/operations('{operation.id}')",
                "Content-Location": f"/teams('{team_id}')",
            },
        )

    async def _get_operation(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        team_id, operation_id = match.group(1), match.group(2)
        operation = self.operations.get(operation_id)
        if operation is None or operation.team_id != team_id:
            return graph_error(404, "NotFound", "Operation not found.")
        operation.attempts += 1
        if operation.polls_left > 0:
            operation.polls_left -= 1
            status = "notStarted" if operation.attempts == 1 else "inProgress"
        else:
            status = "succeeded"
            self.teams[team_id].ready = True
        return web.json_response(
            {
                "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#teams('{team_id}')/operations/$entity",
                "id": operation.id,
                "operationType": "createTeam",
                "createdDateTime": operation.created,
                "status": status,
                "lastActionDateTime": _now(),
                "attemptsCount": operation.attempts,
                "targetResourceId": team_id,
                "targetResourceLocation": f"/teams('{team_id}')",
                "error": None,
            }
        )

    async def _get_team(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        team, error = self._team_or_error(match.group(1))
        if error is not None:
            return error
        assert team is not None
        return web.json_response(self._team_json(team))

    async def _create_channel(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        team, error = self._team_or_error(match.group(1))
        if error is not None:
            return error
        assert team is not None
        body = self._body(raw)
        name = str(body.get("displayName") or "")
        if (
            not name
            or len(name) > 50
            or re.search(r"[~#%&*{}+/\\:<>?|'\",]", name)
            or name[0] in "._ "
            or name[-1] in "._ "
        ):
            return graph_error(400, "BadRequest", f"Channel name '{name}' is invalid.")
        if any(c.display_name.casefold() == name.casefold() for c in team.channels.values()):
            return graph_error(409, "NameAlreadyExists", "Channel name already existed, please use other name.")
        membership = str(body.get("membershipType") or "standard")
        if membership not in ("standard", "private"):
            return graph_error(400, "BadRequest", f"membershipType '{membership}' is not supported here.")
        owners: list[str] = []
        if membership == "private":
            members = body.get("members")
            if not isinstance(members, list) or not members:
                return graph_error(400, "BadRequest", "A private channel needs at least one owner in members.")
            for member in members:
                if not isinstance(member, dict) or member.get("@odata.type") != AAD_MEMBER:
                    return graph_error(
                        400, "BadRequest", "'odata.type' must be specified in the request body for each member."
                    )
                user, problem = self._bound_user(member, team)
                if problem is not None:
                    return problem
                assert user is not None
                if "owner" in [str(r).lower() for r in member.get("roles") or []]:
                    owners.append(user["id"])
            if not owners:
                return graph_error(400, "BadRequest", "A private channel needs at least one owner in members.")
        channel = self._add_channel(team, name, body.get("description"), membership=membership)
        if membership == "private":
            site = quote(f"{team.display_name}-{name}")
            channel.drive_id = self.add_drive(web_url=f"https://contoso.sharepoint.com/sites/{site}/Shared%20Documents")
            # App-only creation keeps the owners and drops the others (they are added afterwards).
            for owner in dict.fromkeys(owners):
                member_id = _new_id()
                channel.members[member_id] = Member(member_id, owner, ["owner"])
        payload = {
            "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#teams('{team.id}')/channels/$entity",
            **self._channel_json(team, channel),
        }
        return web.json_response(payload, status=201)

    async def _list_channels(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        team, error = self._team_or_error(match.group(1))
        if error is not None:
            return error
        assert team is not None
        wanted_filter = request.query.get("$filter")
        wanted = _odata_literal(wanted_filter, "displayName") if wanted_filter else None
        if wanted_filter and wanted is None:
            return graph_error(400, "BadRequest", f"Unsupported filter: {wanted_filter}")
        value = [
            self._channel_json(team, c)
            for c in team.channels.values()
            if wanted is None or c.display_name.casefold() == wanted.casefold()
        ]
        return web.json_response(
            {
                "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#teams('{team.id}')/channels",
                "@odata.count": len(value),
                "value": value,
            }
        )

    def _channel_or_error(
        self, team_id: str, channel_id: str
    ) -> tuple[Team | None, Channel | None, web.Response | None]:
        team, error = self._team_or_error(team_id)
        if error is not None:
            return None, None, error
        assert team is not None
        channel = team.channels.get(channel_id)
        if channel is None:
            return None, None, graph_error(404, "NotFound", f"Channel {channel_id} not found.")
        return team, channel, None

    async def _get_channel(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        team, channel, error = self._channel_or_error(match.group(1), match.group(2))
        if error is not None:
            return error
        assert team is not None and channel is not None
        return web.json_response(self._channel_json(team, channel))

    async def _files_folder(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        team, channel, error = self._channel_or_error(match.group(1), match.group(2))
        if error is not None:
            return error
        assert team is not None and channel is not None
        young = time.monotonic() - channel.created_at < self.files_folder_ready_after
        if channel.misses_left > 0 or (young and channel.folder_id is None):
            channel.misses_left = max(0, channel.misses_left - 1)
            return graph_error(
                404,
                "NotFound",
                "Files folder for the channel was not found. It may still be provisioning.",
            )
        drive = self.drives[channel.drive_id or team.drive_id]
        if channel.folder_id is None:
            existing = drive.child(drive.root_id, channel.display_name)
            if existing is None:
                existing = Item(
                    id=self._item_id(),
                    name=channel.display_name,
                    parent_id=drive.root_id,
                    is_folder=True,
                )
                drive.items[existing.id] = existing
            channel.folder_id = existing.id
        item = drive.items[channel.folder_id]
        payload = self._item_json(drive, item)
        payload["@odata.context"] = (
            f"https://graph.microsoft.com/v1.0/$metadata#teams('{team.id}')/channels('…')/filesFolder/$entity"
        )
        return web.json_response(payload)

    # -- members and tabs ---------------------------------------------------------------------

    def _bound_user(self, member: dict[str, Any], team: Team) -> tuple[dict[str, Any] | None, web.Response | None]:
        """The user a conversationMember body binds (``user@odata.bind``), or Graph's error."""
        bind = str(member.get("user@odata.bind") or "")
        found = re.search(r"/users(?:\('|/)([^'/()]+)", bind)
        if not found:
            return None, graph_error(400, "BadRequest", "user@odata.bind is required.")
        user = self._find_user(found.group(1))
        if user is None or user["blocked"]:
            # Graph answers 404 for unknown and for disabled/blocked users alike.
            return None, graph_error(404, "NotFound", f"User {found.group(1)} was not found.")
        return user, None

    def _member_json(self, member: Member) -> dict[str, Any]:
        user = self.users.get(member.user_id, {})
        return {
            "@odata.type": AAD_MEMBER,
            "id": member.id,
            "roles": list(member.roles),
            "displayName": user.get("displayName"),
            "userId": member.user_id,
            "email": user.get("mail") or None,
            "tenantId": TENANT_ID,
            "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z",
        }

    @staticmethod
    def _has_member(members: dict[str, Member], user_id: str) -> bool:
        return any(m.user_id == user_id for m in members.values())

    def _team_member_ids(self, team: Team) -> set[str]:
        return {m.user_id for m in team.members.values()}

    async def _list_team_members(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        team, error = self._team_or_error(match.group(1))
        if error is not None:
            return error
        assert team is not None
        wanted_filter = (request.query.get("$filter") or "").strip()
        if wanted_filter.startswith("(") and wanted_filter.endswith(")"):
            wanted_filter = wanted_filter[1:-1]
        wanted = _odata_literal(wanted_filter, r"microsoft\.graph\.aadUserConversationMember/userId")
        if wanted_filter and wanted is None:
            return graph_error(400, "BadRequest", f"Unsupported filter: {wanted_filter}")
        value = [self._member_json(m) for m in team.members.values() if wanted is None or m.user_id == wanted.lower()]
        return web.json_response({"@odata.count": len(value), "value": value})

    async def _add_team_member(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        team, error = self._team_or_error(match.group(1))
        if error is not None:
            return error
        assert team is not None
        body = self._body(raw)
        if body.get("@odata.type") != AAD_MEMBER:
            return graph_error(400, "BadRequest", "'odata.type' must be specified in the request body.")
        user, problem = self._bound_user(body, team)
        if problem is not None:
            return problem
        assert user is not None
        if self._has_member(team.members, user["id"]):
            return graph_error(409, "Conflict", "The user is already a member of the team.")
        member = Member(_new_id(), user["id"], [str(r) for r in body.get("roles") or []])
        team.members[member.id] = member
        return web.json_response(self._member_json(member), status=201)

    async def _list_channel_members(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        team, channel, error = self._channel_or_error(match.group(1), match.group(2))
        if error is not None:
            return error
        assert team is not None and channel is not None
        members = channel.members.values() if channel.membership_type != "standard" else team.members.values()
        value = [self._member_json(m) for m in members]
        return web.json_response({"@odata.count": len(value), "value": value})

    async def _add_channel_member(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        team, channel, error = self._channel_or_error(match.group(1), match.group(2))
        if error is not None:
            return error
        assert team is not None and channel is not None
        if channel.membership_type == "standard":
            return graph_error(
                400, "BadRequest", "Operation not supported: a standard channel's members are the team's."
            )
        body = self._body(raw)
        if body.get("@odata.type") != AAD_MEMBER:
            return graph_error(400, "BadRequest", "'odata.type' must be specified in the request body.")
        user, problem = self._bound_user(body, team)
        if problem is not None:
            return problem
        assert user is not None
        if user["id"] not in self._team_member_ids(team):
            return graph_error(400, "BadRequest", "User is not found in the team.")
        if self._has_member(channel.members, user["id"]):
            return graph_error(409, "Conflict", "The user is already a member of the channel.")
        roles = [str(r) for r in body.get("roles") or []]
        if any(r.lower() not in ("owner", "") for r in roles):
            return graph_error(400, "BadRequest", "roles must be 'owner' or empty.")
        member = Member(_new_id(), user["id"], roles)
        channel.members[member.id] = member
        return web.json_response(self._member_json(member), status=201)

    def _tab_json(self, team: Team, channel: Channel, tab: Tab, expand: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": tab.id,
            "displayName": tab.display_name,
            "webUrl": (
                f"https://teams.microsoft.com/l/entity/{quote(tab.app_id, safe='')}/_djb2_msteams_prefix_{tab.id}"
                f"?label={quote(tab.display_name)}&context=%7B%22channelId%22%3A%22{quote(channel.id, safe='')}%22%7D"
                f"&groupId={team.id}&tenantId={TENANT_ID}"
            ),
            "configuration": dict(tab.configuration),
        }
        if expand:
            payload["teamsApp"] = {
                "id": tab.app_id,
                "externalId": None,
                "displayName": "Word" if tab.app_id == WORD_TAB_APP else tab.app_id,
                "distributionMethod": "store",
            }
        return payload

    async def _list_tabs(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        team, channel, error = self._channel_or_error(match.group(1), match.group(2))
        if error is not None:
            return error
        assert team is not None and channel is not None
        expand = "teamsApp" in request.query.get("$expand", "")
        value = [self._tab_json(team, channel, t, expand) for t in channel.tabs.values()]
        return web.json_response({"@odata.count": len(value), "value": value})

    async def _create_tab(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        team, channel, error = self._channel_or_error(match.group(1), match.group(2))
        if error is not None:
            return error
        assert team is not None and channel is not None
        body = self._body(raw)
        name = str(body.get("displayName") or "")
        found = re.search(r"/appCatalogs/teamsApps/([^/'()]+)$", str(body.get("teamsApp@odata.bind") or ""))
        if not name or not found:
            return graph_error(400, "BadRequest", "displayName and teamsApp@odata.bind are required.")
        configuration = body.get("configuration") if isinstance(body.get("configuration"), dict) else {}
        assert isinstance(configuration, dict)
        if found.group(1) == WORD_TAB_APP and not (configuration.get("entityId") and configuration.get("contentUrl")):
            return graph_error(400, "BadRequest", "A file tab needs configuration.entityId and contentUrl.")
        tab = Tab(_new_id(), name, found.group(1), dict(configuration))
        channel.tabs[tab.id] = tab  # Graph allows two tabs of one name: callers must look first
        return web.json_response(self._tab_json(team, channel, tab, expand=True), status=201)

    async def _list_children(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        drive, parent, error = self._drive_parent(match.group(1), match.group(2))
        if error is not None:
            return error
        assert drive is not None and parent is not None
        return web.json_response({"value": [self._item_json(drive, i) for i in drive.children(parent.id)]})

    # -- drives -------------------------------------------------------------------------------

    @staticmethod
    def _web_url(drive: Drive, item: Item) -> str:
        if not item.is_folder and item.name.lower().endswith(_OFFICE_SUFFIXES):
            # As SharePoint answers for Office documents: the viewer, addressed by sourcedoc.
            site = drive.web_url.rsplit("/", 1)[0]
            return (
                f"{site}/_layouts/15/Doc.aspx?sourcedoc=%7B{item.unique_id}%7D"
                f"&file={quote(item.name)}&action=default&mobileredirect=true"
            )
        return f"{drive.web_url}/{quote(drive.path_of(item))}"

    def _item_json(self, drive: Drive, item: Item) -> dict[str, Any]:
        parent = drive.items.get(item.parent_id) if item.parent_id else None
        payload: dict[str, Any] = {
            "id": item.id,
            "name": item.name,
            "createdDateTime": item.created,
            "lastModifiedDateTime": item.modified,
            "eTag": f'"{{{item.unique_id}}},{item.version}"',
            "cTag": f'"c:{{{item.unique_id}}},{item.version}"',
            "webUrl": self._web_url(drive, item),
            "size": len(item.content) if not item.is_folder else sum(len(c.content) for c in drive.children(item.id)),
            "parentReference": {
                "driveType": "documentLibrary",
                "driveId": drive.id,
                **(
                    {
                        "id": parent.id,
                        "path": f"/drives/{drive.id}/root:/{drive.path_of(parent)}".rstrip("/:") + ":",
                    }
                    if parent
                    else {}
                ),
            },
        }
        if item.is_folder:
            payload["folder"] = {"childCount": len(drive.children(item.id))}
        else:
            payload["file"] = {"mimeType": "application/octet-stream", "hashes": {}}
        return payload

    def _drive_parent(
        self, drive_id: str, parent_id: str | None
    ) -> tuple[Drive | None, Item | None, web.Response | None]:
        drive = self.drives.get(drive_id)
        if drive is None:
            return None, None, graph_error(404, "itemNotFound", "The resource could not be found.")
        if parent_id in (None, "root"):
            return drive, drive.items[drive.root_id], None
        parent = drive.items.get(str(parent_id))
        if parent is None:
            return None, None, graph_error(404, "itemNotFound", "The resource could not be found.")
        return drive, parent, None

    def _walk(self, drive: Drive, start: Item, path: str, create: bool) -> tuple[Item | None, str]:
        """The folder holding the last segment of `path` (creating folders on the way when asked)
        and that last segment."""
        parts = [p for p in path.split("/") if p]
        current: Item | None = start
        for part in parts[:-1]:
            assert current is not None
            child = drive.child(current.id, part)
            if child is None:
                if not create:
                    return None, parts[-1]
                child = Item(id=self._item_id(), name=part, parent_id=current.id, is_folder=True)
                drive.items[child.id] = child
            current = child
        return current, parts[-1] if parts else ""

    async def _get_item(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        drive, item, error = self._drive_parent(match.group(1), match.group(2))
        if error is not None:
            return error
        assert drive is not None and item is not None
        return web.json_response(self._item_json(drive, item))

    async def _get_by_path(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        drive, start, error = self._drive_parent(match.group(1), match.group(2))
        if error is not None:
            return error
        assert drive is not None and start is not None
        folder, last = self._walk(drive, start, match.group(3), create=False)
        item = drive.child(folder.id, last) if folder is not None else None
        if item is None:
            return graph_error(404, "itemNotFound", "The resource could not be found.")
        return web.json_response(self._item_json(drive, item))

    async def _create_child(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        drive, parent, error = self._drive_parent(match.group(1), match.group(2))
        if error is not None:
            return error
        assert drive is not None and parent is not None
        body = self._body(raw)
        name = str(body.get("name") or "")
        if not name or re.search(r'["*:<>?/\\|]', name):
            return graph_error(400, "invalidRequest", "Invalid name.")
        behavior = str(body.get("@microsoft.graph.conflictBehavior") or "fail")
        existing = drive.child(parent.id, name)
        if existing is not None:
            if behavior == "fail":
                return graph_error(
                    409,
                    "nameAlreadyExists",
                    f"The specified item name already exists. Name: {name}",
                )
            if behavior == "replace":
                del drive.items[existing.id]
            else:
                name = f"{name} 1"
        item = Item(id=self._item_id(), name=name, parent_id=parent.id, is_folder="folder" in body)
        drive.items[item.id] = item
        return web.json_response(self._item_json(drive, item), status=201)

    def _store_file(
        self, drive: Drive, parent: Item, name: str, content: bytes, conflict: str
    ) -> tuple[Item | None, int]:
        existing = drive.child(parent.id, name)
        if existing is not None:
            if existing.is_folder or conflict == "fail":
                return None, 409
            existing.content = bytes(content)
            existing.modified = _now()
            existing.version += 1
            return existing, 200
        item = Item(
            id=self._item_id(),
            name=name,
            parent_id=parent.id,
            is_folder=False,
            content=bytes(content),
        )
        drive.items[item.id] = item
        return item, 201

    async def _put_content(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        drive, start, error = self._drive_parent(match.group(1), match.group(2))
        if error is not None:
            return error
        assert drive is not None and start is not None
        if request.content_type == "application/json":
            return graph_error(400, "invalidRequest", "Entity only allows writes with a JSON Content-Type header.")
        folder, name = self._walk(drive, start, match.group(3), create=True)
        assert folder is not None
        conflict = request.query.get("@microsoft.graph.conflictBehavior", "replace")
        item, status = self._store_file(drive, folder, name, raw, conflict)
        if item is None:
            return graph_error(409, "nameAlreadyExists", f"The specified item name already exists. Name: {name}")
        return web.json_response(self._item_json(drive, item), status=status)

    async def _create_session(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        drive, start, error = self._drive_parent(match.group(1), match.group(2))
        if error is not None:
            return error
        assert drive is not None and start is not None
        folder, name = self._walk(drive, start, match.group(3), create=True)
        assert folder is not None
        item = self._body(raw).get("item") or {}
        session = UploadSession(
            id=uuid.uuid4().hex,
            drive_id=drive.id,
            parent_id=folder.id,
            name=name,
            conflict=str(item.get("@microsoft.graph.conflictBehavior") or "replace"),
            expires=(datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        )
        self.sessions[session.id] = session
        return web.json_response(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.uploadSession",
                "uploadUrl": f"{self.root_url}/upload/{session.id}?tempauth=fake",
                "expirationDateTime": session.expires,
                "nextExpectedRanges": ["0-"],
            }
        )

    async def _upload_url(self, request: web.Request, session_id: str, raw: bytes) -> web.StreamResponse:
        session = self.sessions.get(session_id)
        if session is None:
            return graph_error(404, "itemNotFound", "The upload session was not found.")
        if "Authorization" in request.headers:
            return graph_error(
                401,
                "unauthenticated",
                "The upload url is pre-authenticated; an Authorization header is not allowed.",
            )
        status_body = {
            "expirationDateTime": session.expires,
            "nextExpectedRanges": [f"{len(session.received)}-"],
        }
        if request.method == "GET":
            return web.json_response(status_body)
        if request.method == "DELETE":
            del self.sessions[session_id]
            return web.Response(status=204)
        if request.method != "PUT":
            return graph_error(405, "invalidRequest", "Method not allowed.")
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", request.headers.get("Content-Range", ""))
        if not match:
            return graph_error(400, "invalidRequest", "A valid Content-Range header is required.")
        start, end, total = (int(g) for g in match.groups())
        if end - start + 1 != len(raw) or end >= total:
            return graph_error(400, "invalidRequest", "Content-Range does not match the body.")
        if len(raw) > MAX_CHUNK:
            return graph_error(413, "requestTooLarge", "Fragment larger than 60 MiB.")
        if session.total is None:
            session.total = total
        elif session.total != total:
            return graph_error(400, "invalidRequest", "The declared total size changed.")
        if start != len(session.received):
            return graph_error(
                416,
                "invalidRange",
                f"The fragment starts at {start}; the server expects {len(session.received)}.",
            )
        last = end + 1 == total
        if not last and len(raw) % CHUNK_UNIT:
            return graph_error(400, "invalidRequest", "Fragments must be a multiple of 320 KiB.")
        session.received.extend(raw)
        if not last:
            return web.json_response(
                {
                    "expirationDateTime": session.expires,
                    "nextExpectedRanges": [f"{len(session.received)}-"],
                },
                status=202,
            )
        drive = self.drives[session.drive_id]
        item, status = self._store_file(
            drive,
            drive.items[session.parent_id],
            session.name,
            bytes(session.received),
            session.conflict,
        )
        del self.sessions[session_id]
        if item is None:
            return graph_error(
                409,
                "nameAlreadyExists",
                f"The specified item name already exists. Name: {session.name}",
            )
        return web.json_response(self._item_json(drive, item), status=status)

    async def _get_content(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        """As Graph: 302 to a pre-authenticated, short-lived download url (``/download/…``)."""
        drive, item, error = self._drive_parent(match.group(1), match.group(2))
        if error is not None:
            return error
        assert drive is not None and item is not None
        if item.is_folder:
            return graph_error(400, "invalidRequest", "A folder has no content.")
        return web.Response(
            status=302, headers={"Location": f"{self.root_url}/download/{drive.id}/{item.id}?tempauth=x"}
        )

    def _download(self, tail: str) -> web.Response:
        drive_id, _, item_id = tail.partition("/")
        drive = self.drives.get(drive_id)
        item = drive.items.get(item_id) if drive is not None else None
        if item is None or item.is_folder:
            return graph_error(404, "itemNotFound", "The resource could not be found.")
        return web.Response(body=item.content, content_type="application/octet-stream")

    async def _set_retention_label(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        """``PATCH /drives/{d}/items/{i}/retentionLabel`` with ``{"name": …}``; labels the tenant does
        not publish (`retention_labels`, when set) → 400 as Graph answers."""
        drive, item, error = self._drive_parent(match.group(1), match.group(2))
        if error is not None:
            return error
        assert drive is not None and item is not None
        name = str(self._body(raw).get("name") or "")
        if not name or (self.retention_labels is not None and name not in self.retention_labels):
            return graph_error(400, "invalidRequest", f"The retention label '{name}' is not available for this item.")
        item.retention_label = name
        return web.json_response(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.itemRetentionLabel",
                "name": name,
                "isLabelAppliedExplicitly": True,
                "labelAppliedBy": {"application": {"displayName": "Innkjøpsassistenten"}},
                "labelAppliedDateTime": _now(),
                "retentionSettings": {"behaviorDuringRetentionPeriod": "retain", "isRecordLocked": False},
            }
        )

    async def _patch_item_fields(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        drive, item, error = self._drive_parent(match.group(1), match.group(2))
        if error is not None:
            return error
        assert drive is not None and item is not None
        values = self._body(raw)
        if drive.columns is not None:
            unknown = [k for k in values if not k.startswith("@") and k not in drive.columns]
            if unknown:
                return graph_error(400, "invalidRequest", f"Field '{unknown[0]}' is not recognized")
        item.fields.update({k: v for k, v in values.items() if not k.startswith("@")})
        return web.json_response(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#fieldValueSet",
                "@odata.etag": f'"{item.id},2"',
                **item.fields,
            }
        )

    # -- SharePoint lists ---------------------------------------------------------------------

    def _list_or_error(self, site_id: str, list_ref: str) -> tuple[SpList | None, web.Response | None]:
        lists = self.sites.get(site_id)
        if lists is None:
            return None, graph_error(404, "itemNotFound", "Requested site could not be found")
        found = lists.get(list_ref) or next(
            (sp for sp in lists.values() if sp.display_name.casefold() == list_ref.casefold()), None
        )
        if found is None:
            return None, graph_error(404, "itemNotFound", "The specified list was not found")
        return found, None

    @staticmethod
    def _list_item_json(sp: SpList, item_id: str, expand: bool) -> dict[str, Any]:
        item = sp.items[item_id]
        payload: dict[str, Any] = {
            "@odata.etag": f'"{item_id},{item["_version"]}"',
            "id": item_id,
            "createdDateTime": item["_created"],
            "lastModifiedDateTime": item["_modified"],
            "webUrl": f"https://contoso.sharepoint.com/sites/x/Lists/{quote(sp.display_name)}/{item_id}_.000",
            "contentType": {"id": "0x0100", "name": "Item"},
        }
        if expand:
            payload["fields"] = {
                "@odata.etag": payload["@odata.etag"],
                "id": item_id,
                **{k: v for k, v in item.items() if not k.startswith("_")},
            }
        return payload

    async def _get_list(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        sp, error = self._list_or_error(match.group(1), match.group(2))
        if error is not None:
            return error
        assert sp is not None
        return web.json_response(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#sites('…')/lists/$entity",
                "id": sp.id,
                "name": sp.display_name.replace(" ", ""),
                "displayName": sp.display_name,
                "createdDateTime": _now(),
                "webUrl": f"https://contoso.sharepoint.com/sites/x/Lists/{quote(sp.display_name)}",
                "list": {"contentTypesEnabled": False, "hidden": False, "template": "genericList"},
            }
        )

    _COLUMN_FACETS = ("text", "number", "currency", "dateTime", "choice", "boolean")

    def _new_column(self, sp: SpList, body: dict[str, Any]) -> tuple[dict[str, Any] | None, web.Response | None]:
        name = str(body.get("name") or "")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,31}", name):
            return None, graph_error(400, "invalidRequest", f"Invalid column name '{name}'.")
        facets = [f for f in self._COLUMN_FACETS if isinstance(body.get(f), dict)]
        if len(facets) != 1:
            return None, graph_error(400, "invalidRequest", "A column needs exactly one type (text, number, …).")
        assert sp.columns is not None
        if name.casefold() in (n.casefold() for n in sp.columns):
            return None, graph_error(409, "nameAlreadyExists", f"A column named '{name}' already exists.")
        column = {
            "id": _new_id(),
            "name": name,
            "displayName": str(body.get("displayName") or name),
            "indexed": bool(body.get("indexed")),
            "readOnly": False,
            facets[0]: body[facets[0]],
        }
        sp.columns[name] = column
        if column["indexed"]:
            sp.indexed.add(name)
        return column, None

    async def _create_list(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        lists = self.sites.get(match.group(1))
        if lists is None:
            return graph_error(404, "itemNotFound", "Requested site could not be found")
        body = self._body(raw)
        title = str(body.get("displayName") or "")
        if not title:
            return graph_error(400, "invalidRequest", "displayName is required.")
        if any(sp.display_name.casefold() == title.casefold() for sp in lists.values()):
            return graph_error(409, "nameAlreadyExists", "The specified name is already in use.")
        sp = SpList(id=_new_id(), display_name=title, columns={})
        assert sp.columns is not None
        sp.columns["Title"] = {
            "id": "fa564e0f-0c70-4ab9-b863-0177e6ddd247",
            "name": "Title",
            "displayName": "Title",
            "indexed": False,
            "readOnly": False,
            "text": {"maxLength": 255},
        }
        for column in body.get("columns") or []:
            _, problem = self._new_column(sp, column if isinstance(column, dict) else {})
            if problem is not None:
                return problem
        lists[sp.id] = sp
        return web.json_response(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#sites('…')/lists/$entity",
                "id": sp.id,
                "name": sp.display_name.replace(" ", ""),
                "displayName": sp.display_name,
                "description": body.get("description"),
                "createdDateTime": _now(),
                "webUrl": f"https://contoso.sharepoint.com/sites/x/Lists/{quote(sp.display_name)}",
                "list": {"contentTypesEnabled": False, "hidden": False, "template": "genericList"},
            },
            status=201,
        )

    async def _list_columns(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        sp, error = self._list_or_error(match.group(1), match.group(2))
        if error is not None:
            return error
        assert sp is not None
        columns = list((sp.columns or {}).values())
        return web.json_response(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#sites('…')/lists('…')/columns",
                "value": columns,
            }
        )

    async def _add_column(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        sp, error = self._list_or_error(match.group(1), match.group(2))
        if error is not None:
            return error
        assert sp is not None
        if sp.columns is None:
            sp.columns = {}
        column, problem = self._new_column(sp, self._body(raw))
        if problem is not None:
            return problem
        return web.json_response(column, status=201)

    async def _patch_column(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        sp, error = self._list_or_error(match.group(1), match.group(2))
        if error is not None:
            return error
        assert sp is not None
        column = next((c for c in (sp.columns or {}).values() if c["id"] == match.group(3)), None)
        if column is None:
            return graph_error(404, "itemNotFound", "Column not found.")
        body = self._body(raw)
        if "indexed" in body:
            column["indexed"] = bool(body["indexed"])
            (sp.indexed.add if column["indexed"] else sp.indexed.discard)(column["name"])
        if "displayName" in body:
            column["displayName"] = str(body["displayName"])
        return web.json_response(column)

    def _unknown_field(self, sp: SpList, fields: dict[str, Any]) -> web.Response | None:
        if sp.columns is None:
            return None
        unknown = [k for k in fields if not k.startswith("@") and k not in sp.columns]
        if unknown:
            return graph_error(400, "invalidRequest", f"Field '{unknown[0]}' is not recognized")
        return None

    async def _get_list_item(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        sp, error = self._list_or_error(match.group(1), match.group(2))
        if error is not None:
            return error
        assert sp is not None
        if match.group(3) not in sp.items:
            return graph_error(404, "itemNotFound", "The specified list item was not found")
        expand = "fields" in request.query.get("$expand", "")
        return web.json_response(self._list_item_json(sp, match.group(3), expand))

    async def _list_items(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        sp, error = self._list_or_error(match.group(1), match.group(2))
        if error is not None:
            return error
        assert sp is not None
        expand = "fields" in request.query.get("$expand", "")
        wanted_filter = request.query.get("$filter")
        column = value = None
        if wanted_filter:
            found = re.fullmatch(r"\s*fields/(\w+)\s+eq\s+'((?:[^']|'')*)'\s*", wanted_filter)
            if not found:
                return graph_error(400, "invalidRequest", f"Unsupported filter: {wanted_filter}")
            column, value = found.group(1), found.group(2).replace("''", "'")
            if column not in sp.indexed and PREFER_NON_INDEXED not in request.headers.get("Prefer", ""):
                return graph_error(
                    400,
                    "invalidRequest",
                    f"Field '{column}' cannot be referenced in filter or orderby as it is not "
                    f"indexed. Provide the 'Prefer: {PREFER_NON_INDEXED}' header to allow "
                    "this, but be warned that such queries may fail on large lists.",
                )
        ids = [i for i, item in sp.items.items() if column is None or str(item.get(column)) == value]
        payload: dict[str, Any] = {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#sites('…')/lists('…')/items",
        }
        top = request.query.get("$top")
        if top is not None:
            # Pages as SharePoint gives them: `$top` items, then an `@odata.nextLink` with a skiptoken.
            start = int(request.query.get("$skiptoken") or 0)
            size = max(1, min(int(top), 5000))
            page, ids = ids[start : start + size], ids
            if start + size < len(ids):
                query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
                query["$skiptoken"] = str(start + size)
                payload["@odata.nextLink"] = str(request.url.with_query(query))
            ids = page
        payload["value"] = [self._list_item_json(sp, i, expand) for i in ids]
        return web.json_response(payload)

    async def _create_list_item(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        sp, error = self._list_or_error(match.group(1), match.group(2))
        if error is not None:
            return error
        assert sp is not None
        fields = self._body(raw).get("fields")
        if not isinstance(fields, dict):
            return graph_error(400, "invalidRequest", "fields are required.")
        problem = self._unknown_field(sp, fields)
        if problem is not None:
            return problem
        item_id = str(sp.next_id)
        sp.next_id += 1
        sp.items[item_id] = {
            **{k: v for k, v in fields.items() if not k.startswith("@")},
            "_created": _now(),
            "_modified": _now(),
            "_version": 1,
        }
        return web.json_response(self._list_item_json(sp, item_id, expand=True), status=201)

    async def _patch_list_item(self, request: web.Request, match: re.Match[str], raw: bytes) -> web.StreamResponse:
        sp, error = self._list_or_error(match.group(1), match.group(2))
        if error is not None:
            return error
        assert sp is not None
        item = sp.items.get(match.group(3))
        if item is None:
            return graph_error(404, "itemNotFound", "The specified list item was not found")
        problem = self._unknown_field(sp, self._body(raw))
        if problem is not None:
            return problem
        item.update({k: v for k, v in self._body(raw).items() if not k.startswith("@")})
        item["_modified"] = _now()
        item["_version"] += 1
        fields = self._list_item_json(sp, match.group(3), expand=True)["fields"]
        return web.json_response(
            {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#fieldValueSet", **fields}
        )
