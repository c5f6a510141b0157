"""Production wiring: with app credentials the runtime talks to Graph for the directory, the
innkjøper group and app installs (here the Graph-shaped test server; the runtime is given a
Graph client with a fixed token, as MSAL can't reach Entra ID from a test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import integrations.factory as factory
from app import Runtime, build_runtime
from integrations.graph_auth import AsyncMsalClientCredential, StaticTokenCredential
from integrations.graph_client import build_graph_client
from manifest.build import DEFAULT_TEAMS_APP_ID
from procurement.errors import IntegrationError, Unreachable
from settings import Settings
from tests.graph_server import GraphTestServer

TENANT = "6f1a2b3c-0000-4000-8000-000000000001"
APP = "11111111-2222-4333-8444-555555555555"
GROUP = "99999999-0000-4000-8000-00000000beef"
INGRID = "00000000-0000-4000-8000-0000000000a1"
KARI = "00000000-0000-4000-8000-0000000000a2"


@pytest.fixture
async def graph() -> AsyncIterator[GraphTestServer]:
    async with GraphTestServer() as server:
        server.add_user(INGRID, "Ingrid Innkjøper", mail="ingrid@kommune.no", groups=(GROUP,))
        server.add_user(KARI, "Kari Nordmann", mail="kari@kommune.no")
        yield server


@pytest.fixture
async def runtime(graph: GraphTestServer, make_settings: Callable[..., Settings]) -> AsyncIterator[Runtime]:
    settings = make_settings(
        CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID=APP,
        CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTSECRET="not-a-real-secret",
        CONNECTIONS__SERVICE_CONNECTION__SETTINGS__TENANTID=TENANT,
        PROCUREMENT_GROUP_ID=GROUP,
        GRAPH_BASE_URL=graph.base_url,
    )
    client = build_graph_client(StaticTokenCredential(graph.token), settings.graph_base_url)
    rt = await build_runtime(settings, graph=client)  # closes the client with the runtime
    try:
        yield rt
    finally:
        await rt.close()


def test_the_credential_is_msal_with_the_apps_own_secret(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID=APP,
        CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTSECRET="s3cret",
        CONNECTIONS__SERVICE_CONNECTION__SETTINGS__TENANTID=TENANT,
    )
    credential = factory.graph_credential(settings)
    assert isinstance(credential, AsyncMsalClientCredential)
    assert "s3cret" not in repr(credential)


def test_credentials_without_a_tenant_stop_the_start_with_a_clear_message(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID=APP)
    with pytest.raises(SystemExit) as exc:
        factory.build_graph(settings)
    assert "TENANTID" in str(exc.value)


async def test_local_mode_has_no_graph(make_settings: Callable[..., Settings]) -> None:
    rt = await build_runtime(make_settings())
    try:
        assert rt.graph is None
        with pytest.raises(Unreachable) as caught:
            await rt.sender.installer.ensure_personal_chat(KARI)  # type: ignore[union-attr]
        assert caught.value.why == "not_installed"
    finally:
        await rt.close()


async def test_directory_looks_people_up_in_entra_id(runtime: Runtime, graph: GraphTestServer) -> None:
    directory = runtime.services.directory
    person = await directory.resolve("Ingrid@Kommune.no")
    assert person is not None and (person.aad_id, person.name, person.email) == (
        INGRID,
        "Ingrid Innkjøper",
        "ingrid@kommune.no",
    )
    assert await directory.resolve("nobody@kommune.no") is None
    # Refused (no permission) is not "unknown person": the caller must hear about it.
    graph.fail_next("GET", r"/users/kari", 403, times=1)
    with pytest.raises(IntegrationError):
        await directory.resolve("kari@kommune.no")
    assert graph.requests and all(r.headers.get("authorization") == f"Bearer {graph.token}" for r in graph.requests)


async def test_the_innkjoper_role_follows_the_entra_group(runtime: Runtime, graph: GraphTestServer) -> None:
    roles = runtime.agent.roles
    assert await roles.is_procurement(INGRID)
    assert not await roles.is_procurement(KARI)
    asked = [r for r in graph.requests if r.path.endswith("/checkMemberGroups")]
    assert len(asked) == 2
    # Cached: a second turn does not ask Graph again.
    assert await roles.is_procurement(INGRID)
    assert len([r for r in graph.requests if r.path.endswith("/checkMemberGroups")]) == 2


async def test_group_check_failure_fails_closed(runtime: Runtime, graph: GraphTestServer) -> None:
    graph.fail_next("POST", r"/checkMemberGroups$", 403, times=1)
    assert not await runtime.agent.roles.is_procurement(INGRID)


async def test_the_app_is_installed_for_a_manager_found_in_the_catalog(
    runtime: Runtime, graph: GraphTestServer
) -> None:
    catalog_id = graph.add_catalog_app(external_id=DEFAULT_TEAMS_APP_ID)
    installer: Any = runtime.sender.installer
    chat = await installer.ensure_personal_chat(KARI)
    assert chat.startswith("19:") and KARI in chat
    assert any(i.app_id == catalog_id for i in graph.installations[KARI].values())
    # Already installed (409): the same chat, and the catalog is looked up only once.
    assert await installer.ensure_personal_chat(KARI) == chat
    assert len([r for r in graph.requests if r.path.endswith("/appCatalogs/teamsApps")]) == 1


async def test_an_unpublished_app_makes_the_manager_unreachable(runtime: Runtime) -> None:
    installer: Any = runtime.sender.installer
    with pytest.raises(Unreachable) as caught:
        await installer.ensure_personal_chat(KARI)
    assert caught.value.why == "not_in_catalog"
