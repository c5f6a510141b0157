"""The aiohttp edge: `/api/messages` (JWT-checked by the SDK), `/healthz`."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable

import pydantic
from aiohttp import web
from microsoft_agents.hosting.aiohttp import CloudAdapter, jwt_authorization_decorator

from procurement.store.database import Store

from .agent import ProcurementAgent

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # an activity over 1 MiB is not from Teams

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def build_web_app(
    *,
    agent: ProcurementAgent,
    adapter: CloudAdapter,
    agent_configuration: object,
    store: Store,
    local_mode: bool,
) -> web.Application:
    @web.middleware
    async def loopback_only(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Local mode accepts anonymous activities; only processes on this machine may send them.
        if local_mode and request.path.startswith("/api/") and not _is_loopback(request.remote):
            log.warning("refused %s from %s: local mode accepts loopback only", request.path, request.remote)
            return web.json_response({"error": "local mode accepts requests from loopback only"}, status=403)
        return await handler(request)

    @jwt_authorization_decorator
    async def messages(request: web.Request) -> web.StreamResponse:
        try:
            response = await adapter.process(request, agent.app)
        except (pydantic.ValidationError, ValueError, TypeError) as err:
            log.warning("malformed activity refused: %s", type(err).__name__)
            return web.json_response({"error": "malformed activity"}, status=400)
        return response or web.Response(status=202)

    async def healthz(request: web.Request) -> web.StreamResponse:
        ok = await store.healthy()
        body = {
            "status": "ok" if ok else "unavailable",
            "database": store.dialect,
            "local_mode": local_mode,
        }
        return web.json_response(body, status=200 if ok else 503)

    app = web.Application(middlewares=[loopback_only], client_max_size=MAX_BODY)
    app["agent_configuration"] = agent_configuration
    app["agent_app"] = agent.app
    app["adapter"] = adapter
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    return app
