"""A Bot Framework Connector stub: where the bot's replies and proactive messages go.

Activities carry `serviceUrl`; the SDK posts replies to `{serviceUrl}/v3/conversations/...`.
Point `serviceUrl` at `stub.url` and every message the bot sends is recorded here.

    async with ConnectorStub() as stub:
        ...  # send an activity with serviceUrl=stub.url to the bot
        cards = stub.cards("a:conv-1")

Endpoints (as the Connector service answers them):

- ``POST /v3/conversations/{cid}/activities``          send → 201 ``{"id": …}``
- ``POST /v3/conversations/{cid}/activities/{aid}``    reply → 201 ``{"id": …}``
- ``PUT  /v3/conversations/{cid}/activities/{aid}``    update → 200 ``{"id": aid}``
- ``DELETE /v3/conversations/{cid}/activities/{aid}``  delete → 200
- ``POST /v3/conversations``                           create → 201 ``{"id": …, "activityId"?: …}``

Teams' limits are enforced (``rate_limits=True``, the default): per conversation
7 per 1 s, 8 per 2 s, 60 per 30 s, 1800 per hour, and per app 50 per second over all
conversations. A request over a limit gets 429 with ``Retry-After`` (whole seconds) and is
not delivered (not recorded in `activities`, but in `requests` with its status).

Files (as Teams serves attachments): ``url = stub.serve_file("photo.png", data)`` answers
``GET /files/photo.png`` with the bytes (``status=403`` refuses it, as phone camera photos
are known to); ``stub.downloads`` records each GET with its headers.

Faults: ``stub.fail(cid | None, status, times=N, retry_after=None)`` makes the next N
matching requests fail (``None`` matches any conversation); ``stub.block(cid)`` answers 403
(the user blocked the bot) for ever; ``stub.delay`` (seconds) adds latency to every answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

CARD_TYPE = "application/vnd.microsoft.card.adaptive"

# (limit, window seconds), per conversation, as documented for Teams bots.
CONVERSATION_LIMITS: tuple[tuple[int, float], ...] = (
    (7, 1.0),
    (8, 2.0),
    (60, 30.0),
    (1800, 3600.0),
)
# Per app (per bot, per tenant) over all conversations.
APP_LIMITS: tuple[tuple[int, float], ...] = ((50, 1.0),)

FAULT_BODIES: dict[int, dict[str, Any]] = {
    403: {
        "error": {
            "code": "ConversationBlockedByUser",
            "message": "User blocked the conversation with the bot.",
        }
    },
    404: {"error": {"code": "ConversationNotFound", "message": "Conversation not found."}},
    412: {"error": {"code": "PreconditionFailed", "message": "Precondition failed, please try again."}},
    429: {"error": {"code": "Throttled", "message": "Too many requests."}},
    500: {"error": {"code": "InternalServerError", "message": "An error has occurred."}},
    502: {"error": {"code": "BadGateway", "message": "Bad gateway."}},
    503: {"error": {"code": "ServiceUnavailable", "message": "Service unavailable."}},
    504: {"error": {"code": "GatewayTimeout", "message": "Gateway timeout."}},
}


@dataclass
class Request:
    """One request the stub answered (delivered or refused)."""

    method: str
    kind: str  # "send", "reply", "update", "delete", "create"
    conversation_id: str
    activity_id: str | None
    body: Any
    status: int
    at: float
    query: dict[str, str] = field(default_factory=dict)

    @property
    def delivered(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Update:
    conversation_id: str
    activity_id: str
    activity: dict[str, Any]


@dataclass
class _Fault:
    conversation_id: str | None
    status: int
    remaining: int
    retry_after: float | None


def adaptive_cards(activity: dict[str, Any]) -> list[dict[str, Any]]:
    """The Adaptive Card contents among an activity's attachments."""
    out = []
    for att in activity.get("attachments") or []:
        if isinstance(att, dict) and att.get("contentType") == CARD_TYPE and isinstance(att.get("content"), dict):
            out.append(att["content"])
    return out


def card_texts(card: Any) -> list[str]:
    """Every string in a card, depth first: handy for `"…" in " ".join(card_texts(c))`.
    Text that Teams renders as markdown is given as shown (its escapes removed)."""
    from tests.cardcheck import shown_card

    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(shown_card(card))
    return out


def idempotency_marker(activity: dict[str, Any]) -> str | None:
    """A caller-supplied idempotency marker, if the activity carries one.

    Looked up in ``channelData.idempotencyKey`` or an entity ``{"type": "idempotency", "key": …}``.
    """
    data = activity.get("channelData")
    if isinstance(data, dict) and isinstance(data.get("idempotencyKey"), str):
        return str(data["idempotencyKey"])
    for entity in activity.get("entities") or []:
        if isinstance(entity, dict) and entity.get("type") == "idempotency" and entity.get("key"):
            return str(entity["key"])
    return None


class _Window:
    """At most `limit` accepted requests in any `seconds`-long sliding window."""

    __slots__ = ("limit", "seconds", "times")

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.times: deque[float] = deque()

    def wait(self, now: float) -> float:
        times = self.times
        while times and now - times[0] >= self.seconds:
            times.popleft()
        if len(times) < self.limit:
            return 0.0
        # The slot frees when the oldest of the last `limit` requests leaves the window.
        return times[len(times) - self.limit] + self.seconds - now


class ConnectorStub:
    def __init__(
        self,
        *,
        rate_limits: bool = True,
        delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        conversation_limits: tuple[tuple[int, float], ...] = CONVERSATION_LIMITS,
        app_limits: tuple[tuple[int, float], ...] = APP_LIMITS,
    ) -> None:
        self.rate_limits = rate_limits
        self.delay = delay
        self.host = host
        self.port = port
        self.conversation_limits = conversation_limits
        self.app_limits = app_limits
        self.requests: list[Request] = []
        self.updates: list[Update] = []
        self.deletes: list[tuple[str, str]] = []
        self.created: list[dict[str, Any]] = []
        self._files: dict[str, tuple[int, bytes, str]] = {}
        self.downloads: list[tuple[str, dict[str, str]]] = []
        self._delivered: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._faults: list[_Fault] = []
        self._blocked: set[str] = set()
        self._conv_windows: dict[str, list[_Window]] = {}
        self._app_windows = [_Window(n, w) for n, w in app_limits]
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()
        self.url = ""

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> ConnectorStub:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/v3/conversations", self._create)
        app.router.add_post("/v3/conversations/{cid}/activities", self._send)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._reply)
        app.router.add_put("/v3/conversations/{cid}/activities/{aid}", self._update)
        app.router.add_delete("/v3/conversations/{cid}/activities/{aid}", self._delete)
        app.router.add_get("/files/{name}", self._file)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.url = f"http://{self.host}:{self.port}/"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ConnectorStub:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- test controls --------------------------------------------------------------------

    def fail(
        self,
        conversation_id: str | None,
        status: int,
        *,
        times: int = 1,
        retry_after: float | None = None,
    ) -> None:
        """The next `times` requests to `conversation_id` (any, if None) answer `status`."""
        self._faults.append(_Fault(conversation_id, status, times, retry_after))

    def block(self, conversation_id: str) -> None:
        """The user blocked the bot: every request to the conversation answers 403."""
        self._blocked.add(conversation_id)

    def serve_file(self, name: str, content: bytes, *, status: int = 200, content_type: str = "") -> str:
        """Serve `content` at the returned URL (`status` other than 200: refused, no body)."""
        self._files[name] = (status, content, content_type or "application/octet-stream")
        return f"{self.url}files/{name}"

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.downloads.append((name, dict(request.headers)))
        found = self._files.get(name)
        if found is None:
            return web.Response(status=404)
        status, content, content_type = found
        if status != 200:
            return web.Response(status=status)
        return web.Response(body=content, content_type=content_type)

    def unblock(self, conversation_id: str) -> None:
        self._blocked.discard(conversation_id)

    def reset(self) -> None:
        """Forget recordings, faults, blocks and rate-limit history."""
        self.requests.clear()
        self.updates.clear()
        self.deletes.clear()
        self.created.clear()
        self._delivered.clear()
        self._faults.clear()
        self._blocked.clear()
        self._conv_windows.clear()
        self._app_windows = [_Window(n, w) for n, w in self.app_limits]

    # -- what was delivered ---------------------------------------------------------------

    def activities(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        """Activities delivered (sent or replied) to a conversation, or to all, in order."""
        if conversation_id is not None:
            return list(self._delivered.get(conversation_id, []))
        return [r.body for r in self.requests if r.delivered and r.kind in ("send", "reply")]

    def cards(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        """Adaptive Card contents delivered to a conversation (or to all), in order."""
        return [card for a in self.activities(conversation_id) for card in adaptive_cards(a)]

    def texts(self, conversation_id: str | None = None) -> list[str]:
        """The `text` of delivered activities that have one."""
        return [a["text"] for a in self.activities(conversation_id) if a.get("text")]

    def deliveries(self, conversation_id: str) -> int:
        return len(self._delivered.get(conversation_id, []))

    def delivery_counts(self) -> dict[str, int]:
        return {cid: len(items) for cid, items in self._delivered.items() if items}

    def refused(self, status: int | None = None) -> list[Request]:
        return [r for r in self.requests if not r.delivered and (status is None or r.status == status)]

    def duplicates(self, conversation_id: str | None = None) -> dict[str, int]:
        """Idempotency markers delivered more than once: marker → count."""
        counts: dict[str, int] = defaultdict(int)
        for activity in self.activities(conversation_id):
            marker = idempotency_marker(activity)
            if marker is not None:
                counts[marker] += 1
        return {k: v for k, v in counts.items() if v > 1}

    def everything_sent(self) -> str:
        """Every body the bot sent to the stub (delivered or not) as one JSON text."""
        return "\n".join(json.dumps(r.body, ensure_ascii=False) for r in self.requests)

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until `predicate()` is true (checked after each request), or fail after `within` s.

        For proactive sends that happen after the HTTP answer (outbox, reminders)."""
        deadline = time.monotonic() + within
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"ConnectorStub.wait_for: condition not met within {within} s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))

    # -- limits and faults ------------------------------------------------------------------

    def _throttle(self, conversation_id: str, now: float) -> float | None:
        """Seconds until this request would be within every limit, or None if it is now."""
        if not self.rate_limits:
            return None
        windows = self._app_windows
        if conversation_id:
            if conversation_id not in self._conv_windows:
                self._conv_windows[conversation_id] = [_Window(n, w) for n, w in self.conversation_limits]
            windows = self._conv_windows[conversation_id] + windows
        waits = [w.wait(now) for w in windows]
        wait = max(waits, default=0.0)
        if wait > 0:
            return wait
        for w in windows:
            w.times.append(now)
        return None

    def _take_fault(self, conversation_id: str) -> _Fault | None:
        for fault in self._faults:
            if fault.conversation_id in (None, conversation_id) and fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _refuse(self, status: int, retry_after: float | None) -> web.Response:
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        body = FAULT_BODIES.get(status, {"error": {"code": "Error", "message": f"HTTP {status}"}})
        return web.json_response(body, status=status, headers=headers)

    async def _handle(self, request: web.Request, kind: str) -> web.Response:
        cid = request.match_info.get("cid", "")
        aid = request.match_info.get("aid")
        try:
            body = await request.json() if request.can_read_body else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": {"code": "BadArgument", "message": "bad JSON"}}, status=400)
        if self.delay:
            await asyncio.sleep(self.delay)
        now = time.monotonic()
        record = Request(request.method, kind, cid, aid, body, 0, now, dict(request.query))
        self.requests.append(record)
        try:
            if kind == "create":
                # Creating a chat is not throttled per conversation (there is none yet).
                fault = self._take_fault("")
                if fault is not None:
                    record.status = fault.status
                    return self._refuse(fault.status, fault.retry_after)
                wait = self._throttle("", now)
                if wait is not None:
                    record.status = 429
                    return self._refuse(429, wait)
                new_cid = f"a:stub-{next(self._ids)}"
                self.created.append(body if isinstance(body, dict) else {})
                payload: dict[str, Any] = {"id": new_cid, "serviceUrl": self.url}
                record.status = 201
                return web.json_response(payload, status=201)
            if cid in self._blocked:
                record.status = 403
                return self._refuse(403, None)
            fault = self._take_fault(cid)
            if fault is not None:
                record.status = fault.status
                return self._refuse(fault.status, fault.retry_after)
            wait = self._throttle(cid, now)
            if wait is not None:
                record.status = 429
                return self._refuse(429, wait)
            if kind in ("send", "reply"):
                new_id = f"stub-{next(self._ids)}"
                if isinstance(body, dict):
                    body.setdefault("id", new_id)
                self._delivered[cid].append(body if isinstance(body, dict) else {"body": body})
                record.status = 201
                return web.json_response({"id": new_id}, status=201)
            if kind == "update":
                assert aid is not None
                self.updates.append(Update(cid, aid, body if isinstance(body, dict) else {}))
                record.status = 200
                return web.json_response({"id": aid}, status=200)
            assert aid is not None
            self.deletes.append((cid, aid))
            record.status = 200
            return web.Response(status=200)
        finally:
            self._changed.set()

    async def _send(self, request: web.Request) -> web.Response:
        return await self._handle(request, "send")

    async def _reply(self, request: web.Request) -> web.Response:
        return await self._handle(request, "reply")

    async def _update(self, request: web.Request) -> web.Response:
        return await self._handle(request, "update")

    async def _delete(self, request: web.Request) -> web.Response:
        return await self._handle(request, "delete")

    async def _create(self, request: web.Request) -> web.Response:
        return await self._handle(request, "create")
