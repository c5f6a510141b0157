"""Building the msgraph-sdk client, sorting Graph errors, and uploading files to a drive.

`build_graph_client` keeps Graph's default middleware (kiota's retry handler for
429/503/504 with `Retry-After`, redirects, headers inspection, …) by building the httpx
client with `GraphClientFactory.create_with_default_middleware`. Create it inside the
running event loop (httpx/anyio bind to the loop that first uses the client).

The Graph token is sent only to Graph hosts (and the `base_url` host in tests): the auth
provider gets an explicit allow-list and the Graph scope, so an upload-session URL (a
SharePoint host) never receives it.

Uploads (`DriveUploader`): kiota never retries `application/octet-stream` bodies, so small
uploads (`PUT …:/name:/content`) retry here on 429/502/503/504 honouring `Retry-After`;
large files go through an upload session with our own chunk loop (chunks in multiples of
320 KiB, `Content-Range`, no `Authorization` header, resuming from `nextExpectedRanges`).
msgraph-core's `LargeFileUploadTask` is not used (see STACK-NOTES).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlparse

import httpx
from kiota_abstractions.api_error import APIError
from kiota_abstractions.authentication import (
    AnonymousAuthenticationProvider,
    AuthenticationProvider,
)
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphServiceClient
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_default_options
from msgraph_core import GraphClientFactory

from procurement.errors import IntegrationError, PermanentError, TransientError
from procurement.shared.backoff import backoff

from .graph_auth import GraphAuthError

log = logging.getLogger(__name__)

GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
GRAPH_HOSTS = [
    "graph.microsoft.com",
    "graph.microsoft.us",
    "dod-graph.microsoft.us",
    "microsoftgraph.chinacloudapi.cn",
]
# Worth another try later (by us or by the caller's outbox); kiota itself retries 429/503/504.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
CHUNK_UNIT = 320 * 1024  # upload-session chunks must be multiples of 320 KiB

T = TypeVar("T")


def build_graph_client(
    credential: Any | None,
    base_url: str | None = None,
    httpx_client: httpx.AsyncClient | None = None,
    *,
    max_retries: int = RetryHandlerOption.DEFAULT_MAX_RETRIES,
    retry_delay: float = RetryHandlerOption.DEFAULT_DELAY,
    timeout: float = 60.0,
) -> GraphServiceClient:
    """A `GraphServiceClient` with Graph's default middleware.

    - `credential`: an azure-identity style (async) token credential, e.g.
      `AsyncMsalClientCredential` or `StaticTokenCredential`; `None` sends no token.
    - `base_url`: e.g. ``http://127.0.0.1:PORT/v1.0`` for the test server (a trailing slash
      is removed: kiota would produce ``//`` paths).
    - `max_retries` / `retry_delay`: kiota's retry handler (429/503/504, honours
      `Retry-After`; `retry_delay` is a base delay added to its exponential backoff when no
      `Retry-After` is given).
    """
    asyncio.get_running_loop()  # RuntimeError outside a loop: httpx would bind to the wrong one
    base = (base_url or GRAPH_BASE_URL).rstrip("/")
    auth: AuthenticationProvider
    if credential is None:
        auth = AnonymousAuthenticationProvider()
    else:
        hosts = list(GRAPH_HOSTS)
        host = urlparse(base).hostname
        if host and host.lower() not in hosts:
            hosts.append(host.lower())
        auth = AzureIdentityAuthenticationProvider(
            credential, scopes=[GRAPH_SCOPE], allowed_hosts=hosts
        )
    options = dict(graph_default_options)
    retry = RetryHandlerOption(delay=retry_delay, max_retries=max_retries)
    options[retry.get_key()] = retry
    http = httpx_client or httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0))
    http = GraphClientFactory.create_with_default_middleware(client=http, options=options)
    adapter = GraphRequestAdapter(auth, http)
    adapter.base_url = base
    return GraphServiceClient(request_adapter=adapter)


async def close_graph_client(client: GraphServiceClient) -> None:
    """Close the client's httpx connection pool (idempotent; also one given to `build_graph_client`)."""
    http = getattr(client.request_adapter, "_http_client", None)
    if isinstance(http, httpx.AsyncClient):
        await http.aclose()


def graph_url(client: GraphServiceClient, path: str) -> str:
    """An absolute Graph url for a path such as ``/drives/{id}/root:/a/b.pdf:/content``."""
    return f"{client.request_adapter.base_url.rstrip('/')}/{path.lstrip('/')}"


# -- errors ---------------------------------------------------------------------------------


def error_status(err: BaseException) -> int | None:
    return getattr(err, "response_status_code", None) if isinstance(err, APIError) else None


def error_code(err: BaseException) -> str:
    """Graph's error code (``NameAlreadyExists``, ``NotFound``, …) or ``""``."""
    main = getattr(err, "error", None)
    code = getattr(main, "code", None)
    return str(code) if code else ""


def error_message(err: BaseException) -> str:
    main = getattr(err, "error", None)
    message = getattr(main, "message", None)
    return str(message) if message else str(getattr(err, "message", "") or "")


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    if isinstance(headers, httpx.Headers):
        return headers.get(name)
    if isinstance(headers, Mapping):
        for key, value in headers.items():
            if str(key).lower() == name.lower():
                if isinstance(value, (set, list, tuple)):
                    return next(iter(value), None)
                return str(value)
    return None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(when.tzinfo or dt.UTC)).total_seconds())


def error_retry_after(err: BaseException) -> float | None:
    return parse_retry_after(_header(getattr(err, "response_headers", None), "Retry-After"))


def describe(err: BaseException) -> str:
    status = error_status(err)
    code = error_code(err)
    message = error_message(err)
    parts = [p for p in (str(status) if status else "", code, message) if p]
    return " ".join(parts) or type(err).__name__


def is_transient(err: BaseException) -> bool:
    if isinstance(err, TransientError):
        return True
    if isinstance(err, (httpx.TransportError, asyncio.TimeoutError)):
        return True
    return error_status(err) in TRANSIENT_STATUSES


def as_integration_error(err: Exception, what: str) -> Exception:
    """The port-level error for a Graph failure: transient (retry later) or permanent.

    A refused token request (`GraphAuthError`: a wrong or expired secret or certificate)
    surfaces from inside the Graph call; it becomes `PermanentError(why="sign_in_failed")`.
    """
    if isinstance(err, GraphAuthError):
        return PermanentError(f"{what}: {err.reason}", code=err.code, why="sign_in_failed")
    if isinstance(err, IntegrationError):
        return err
    if is_transient(err):
        return TransientError(
            f"{what}: {describe(err)}",
            error_retry_after(err),
            status=error_status(err),
            code=error_code(err) or None,
        )
    if not isinstance(err, APIError):
        return err  # a bug or something unexpected: keep it as it is
    return PermanentError(
        f"{what}: {describe(err)}", status=error_status(err), code=error_code(err) or None
    )


# -- our own retries (octet-stream bodies, upload chunks) -------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and backoff for the requests kiota does not retry.

    The delay is the response's `Retry-After` when given (capped at `max_delay`), else the
    shared `backoff` (``base_delay * 2**n`` with jitter, capped at `max_delay`).
    """

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self.max_delay, retry_after)
        return backoff(attempt, base=self.base_delay, cap=self.max_delay)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    what: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    statuses: frozenset[int] = TRANSIENT_STATUSES,
) -> T:
    """Run `call`, retrying Graph's transient answers (`statuses`, by default 408/429/5xx
    gateway errors, and network errors). Only for requests that are safe to repeat.

    After the last attempt a `TransientError` carries the last `Retry-After`.
    """
    for attempt in range(policy.attempts):
        try:
            return await call()
        except Exception as err:
            status = error_status(err)
            retryable = status in statuses if status is not None else is_transient(err)
            if not retryable:
                raise
            retry_after = error_retry_after(err)
            if attempt + 1 >= policy.attempts:
                raise TransientError(
                    f"{what}: {describe(err)} after {policy.attempts} attempts",
                    retry_after,
                    status=status,
                    code=error_code(err) or None,
                ) from err
            delay = policy.delay(attempt, retry_after)
            log.info("%s: %s, retrying in %.2fs", what, describe(err), delay)
            await sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


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
        builder = (
            self.client.drives.by_drive_id(drive_id)
            .items.by_drive_item_id("_")
            .content.with_url(url)
        )

        async def put() -> Any:
            return await builder.put(content)

        try:
            item = await with_retries(put, self.policy, what, self.sleep)
        except Exception as err:
            raise as_integration_error(err, what) from err
        if item is None or not item.id:
            raise PermanentError(f"{what}: Graph returned no item")
        return UploadedItem(
            item.id, item.name or name, item.web_url or "", int(item.size or len(content))
        )

    async def _create_session(
        self, drive_id: str, name: str, parent_id: str | None, folder_path: str | None, what: str
    ) -> str:
        from msgraph.generated.drives.item.items.item.create_upload_session.create_upload_session_post_request_body import (
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
            self.client.drives.by_drive_id(drive_id)
            .items.by_drive_item_id("_")
            .create_upload_session.with_url(url)
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
                response = await http.put(
                    upload_url, content=content[offset : end + 1], headers=headers
                )
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
                        raise TransientError(
                            f"{what}: upload session makes no progress at {offset}"
                        )
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

    async def _session_status(
        self, http: httpx.AsyncClient, upload_url: str, total: int, what: str
    ) -> tuple[int, int]:
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
            retry_after = (
                parse_retry_after(response.headers.get("Retry-After"))
                if response is not None
                else None
            )
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


def odata_literal(value: str) -> str:
    """A string inside an OData `$filter` literal ('…'): quotes doubled."""
    return value.replace("'", "''")
