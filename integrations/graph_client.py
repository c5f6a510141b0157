"""Building the msgraph-sdk client, sorting Graph errors, and our own retries.

`build_graph_client` keeps Graph's default middleware (kiota's retry handler for
429/503/504 with `Retry-After`, redirects, headers inspection, …) by building the httpx
client with `GraphClientFactory.create_with_default_middleware`. Create it inside the
running event loop (httpx/anyio bind to the loop that first uses the client).

The Graph token is sent only to Graph hosts (and the `base_url` host in tests): the auth
provider gets an explicit allow-list and the Graph scope, so an upload-session URL (a
SharePoint host) never receives it.

Uploads to a drive are in `drive_uploads.py`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlparse

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
        auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE], allowed_hosts=hosts)
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
    return PermanentError(f"{what}: {describe(err)}", status=error_status(err), code=error_code(err) or None)


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


def odata_literal(value: str) -> str:
    """A string inside an OData `$filter` literal ('…'): quotes doubled."""
    return value.replace("'", "''")
