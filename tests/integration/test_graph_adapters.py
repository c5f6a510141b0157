"""The Graph adapters against the Graph-shaped test server (real msgraph-sdk, kiota middleware,
httpx; only Graph itself is faked)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from msgraph import GraphServiceClient

from integrations.drive_uploads import CHUNK_UNIT, drive_item_name
from integrations.graph_auth import AsyncMsalClientCredential, GraphAuthError, StaticTokenCredential
from integrations.graph_client import RetryPolicy, build_graph_client, close_graph_client
from integrations.sharepoint import GraphArchiveStore
from integrations.sharepoint_lists import GraphListMirror
from integrations.teams_apps import GraphChatInstaller, resolve_catalog_app_id
from integrations.teams_rooms import (
    GraphRoomProvisioner,
    TeamCreationPending,
    create_team_and_wait,
    parse_operation_location,
    wait_for_team_operation,
)
from procurement.errors import IntegrationError, PermanentError, TransientError, Unreachable
from procurement.ports import (
    ArchiveStore,
    ChatInstaller,
    RoomFolder,
    RoomProvisioner,
)
from procurement.records.lists import RegisterLists
from tests.graph_server import CATALOG_PERMISSION, INSTALL_PERMISSION, GraphTestServer

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=2.0)


@pytest.fixture
async def graph() -> AsyncIterator[GraphTestServer]:
    async with GraphTestServer(files_folder_not_found_polls=2, team_operation_polls=2) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


def make_client(
    graph: GraphTestServer,
    http: httpx.AsyncClient,
    *,
    token: str | None = None,
    max_retries: int = 3,
) -> GraphServiceClient:
    # A trailing slash on purpose: build_graph_client must strip it (kiota would send `//`).
    return build_graph_client(
        StaticTokenCredential(token or graph.token),
        base_url=graph.base_url + "/",
        httpx_client=http,
        max_retries=max_retries,
        retry_delay=0,
    )


@pytest.fixture
async def client(graph: GraphTestServer, http: httpx.AsyncClient) -> GraphServiceClient:
    return make_client(graph, http)  # inside the test's event loop


def rooms(client: GraphServiceClient, **kwargs: Any) -> GraphRoomProvisioner:
    options: dict[str, Any] = {
        "files_folder_max_wait": 5.0,
        "files_folder_initial_delay": 0.01,
        "files_folder_max_delay": 0.05,
        "small_upload_limit": 256 * 1024,
        "chunk_size": CHUNK_UNIT,
        "upload_policy": FAST,
        "create_policy": FAST,
        "member_retry_delays": (0.01, 0.02),
    }
    options.update(kwargs)
    return GraphRoomProvisioner(client, **options)


# -- the adapters satisfy the ports -------------------------------------------------------------


def test_adapters_implement_the_ports(client: GraphServiceClient) -> None:
    installer: ChatInstaller = GraphChatInstaller(client, "app")
    provisioner: RoomProvisioner = rooms(client)
    mirror: RegisterLists = GraphListMirror(client, "site")
    archive: ArchiveStore = GraphArchiveStore(client, "drive")
    # mypy checks the annotated assignments; at run time, each port's methods exist on the
    # adapter as coroutines taking the same parameters.
    import inspect

    ports = [
        (installer, ChatInstaller),
        (provisioner, RoomProvisioner),
        (mirror, RegisterLists),
        (archive, ArchiveStore),
    ]
    for adapter, port in ports:
        methods = {n: f for n, f in vars(port).items() if inspect.isfunction(f) and not n.startswith("_")}
        assert methods, port
        for name, spec in methods.items():
            impl = getattr(type(adapter), name, None)
            assert inspect.iscoroutinefunction(impl), f"{type(adapter).__name__}.{name} is not a coroutine"
            assert list(inspect.signature(impl).parameters) == list(inspect.signature(spec).parameters), name


# -- authentication -----------------------------------------------------------------------------


async def test_every_graph_call_carries_the_bearer_token(graph: GraphTestServer, client: GraphServiceClient) -> None:
    user, app = graph.add_user(), graph.add_catalog_app()
    await GraphChatInstaller(client, app).ensure_personal_chat(user)
    graph_calls = [r for r in graph.requests if r.path.startswith("/v1.0/")]
    assert graph_calls and all(r.authorization == f"Bearer {graph.token}" for r in graph_calls)
    assert not any("//" in r.path for r in graph.requests)
    assert not graph.unhandled


async def test_a_wrong_token_is_a_permanent_error(graph: GraphTestServer, http: httpx.AsyncClient) -> None:
    user, app = graph.add_user(), graph.add_catalog_app()
    bad = make_client(graph, http, token="not-the-token")
    with pytest.raises(PermanentError) as caught:
        await GraphChatInstaller(bad, app).ensure_personal_chat(user)
    assert caught.value.status == 401
    assert caught.value.code == "InvalidAuthenticationToken"
    assert caught.value.why == "sign_in_failed"


class FakeMsalApp:
    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result
        self.calls: list[tuple[list[str], str | None]] = []

    def acquire_token_for_client(
        self, scopes: list[str], claims_challenge: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        self.calls.append((scopes, claims_challenge))
        return self.result


async def test_msal_credential_feeds_the_graph_client(graph: GraphTestServer, http: httpx.AsyncClient) -> None:
    fake = FakeMsalApp({"access_token": graph.token, "expires_in": 3599, "token_type": "Bearer"})
    credential = AsyncMsalClientCredential("tenant", "client", client_secret="s3cret", app_factory=lambda: fake)
    client = build_graph_client(credential, base_url=graph.base_url, httpx_client=http)
    user, app = graph.add_user(), graph.add_catalog_app()
    assert await GraphChatInstaller(client, app).ensure_personal_chat(user)
    # The Graph scope, not one derived from the test server's host name.
    assert fake.calls and all(scopes == ["https://graph.microsoft.com/.default"] for scopes, _ in fake.calls)


async def test_msal_errors_do_not_leak_the_secret() -> None:
    secret = "very-secret-value-123"
    fake = FakeMsalApp(
        {
            "error": "invalid_client",
            "error_description": f"AADSTS7000215: Invalid client secret provided ({secret}).\nTrace ID: x",
        }
    )
    credential = AsyncMsalClientCredential("tenant", "client", client_secret=secret, app_factory=lambda: fake)
    with pytest.raises(GraphAuthError) as caught:
        await credential.get_token("https://graph.microsoft.com/.default")
    assert "invalid_client" in str(caught.value)
    assert secret not in str(caught.value)
    assert secret not in repr(credential)


def test_credential_needs_a_secret_or_a_certificate() -> None:
    with pytest.raises(GraphAuthError):
        AsyncMsalClientCredential("tenant", "client")
    with pytest.raises(GraphAuthError):
        AsyncMsalClientCredential("tenant", "client", certificate_thumbprint="AB")


# -- app installation and personal chat -------------------------------------------------------


async def test_install_returns_the_personal_chat(graph: GraphTestServer, client: GraphServiceClient) -> None:
    user, app = graph.add_user(), graph.add_catalog_app()
    chat_id = await GraphChatInstaller(client, app).ensure_personal_chat(user)
    assert chat_id.startswith("19:") and chat_id.endswith("@unq.gbl.spaces")
    post = graph.requests_matching("POST", r"/teamwork/installedApps$")[0]
    assert post.json() == {
        "@odata.type": "#microsoft.graph.userScopeTeamsAppInstallation",
        "teamsApp@odata.bind": f"{graph.base_url}/appCatalogs/teamsApps/{app}",
    }
    listing = graph.requests_matching("GET", r"/teamwork/installedApps$")[0]
    assert listing.query == {"$expand": "teamsApp", "$filter": f"teamsApp/id eq '{app}'"}


async def test_catalog_id_from_the_manifest_id(graph: GraphTestServer, client: GraphServiceClient) -> None:
    app = graph.add_catalog_app(external_id="11111111-2222-4333-8444-555555555555")
    assert await resolve_catalog_app_id(client, "11111111-2222-4333-8444-555555555555") == app
    with pytest.raises(Unreachable) as caught:
        await resolve_catalog_app_id(client, "not-published")
    assert caught.value.why == "not_in_catalog"


async def test_no_permission_for_the_app_catalog_is_permanent(
    graph: GraphTestServer, client: GraphServiceClient
) -> None:
    graph.add_catalog_app(external_id="11111111-2222-4333-8444-555555555555")
    graph.revoke(CATALOG_PERMISSION)
    with pytest.raises(PermanentError) as caught:
        await resolve_catalog_app_id(client, "11111111-2222-4333-8444-555555555555")
    assert (caught.value.status, caught.value.why) == (403, "permission_missing")


async def test_no_permission_to_install_is_permanent_not_the_users_policy(
    graph: GraphTestServer, client: GraphServiceClient
) -> None:
    """Both are 403: the app's missing permission is for IT to fix (permanent), a user's
    app permission policy makes that one user unreachable."""
    app = graph.add_catalog_app()
    graph.revoke(INSTALL_PERMISSION)
    with pytest.raises(PermanentError) as caught:
        await GraphChatInstaller(client, app).ensure_personal_chat(graph.add_user())
    assert (caught.value.status, caught.value.why) == (403, "permission_missing")
    assert "Missing role permissions" in caught.value.reason  # for the log, not for users


async def test_already_installed_409_still_returns_the_chat(graph: GraphTestServer, client: GraphServiceClient) -> None:
    user, app = graph.add_user(), graph.add_catalog_app()
    installer = GraphChatInstaller(client, app)
    first = await installer.ensure_personal_chat(user)
    second = await installer.ensure_personal_chat(user)
    assert first == second
    assert [r.status for r in graph.requests_matching("POST", r"/installedApps$")] == [201, 409]


@pytest.mark.parametrize("kind", ["blocked", "unknown", "app-not-in-catalog"])
async def test_unreachable_users(graph: GraphTestServer, client: GraphServiceClient, kind: str) -> None:
    app = graph.add_catalog_app()
    user = {
        "blocked": graph.add_user(blocked=True),
        "unknown": "0f0f0f0f-0000-4000-8000-000000000000",
        "app-not-in-catalog": graph.add_user(),
    }[kind]
    installer = GraphChatInstaller(client, "not-in-catalog" if kind == "app-not-in-catalog" else app)
    with pytest.raises(Unreachable) as caught:
        await installer.ensure_personal_chat(user)
    assert caught.value.status == (403 if kind == "blocked" else 404)
    assert (
        caught.value.why
        == {
            "blocked": "not_allowed_by_policy",
            "unknown": "unknown_user",
            "app-not-in-catalog": "not_in_catalog",
        }[kind]
    )


async def test_throttled_install_waits_for_retry_after(graph: GraphTestServer, client: GraphServiceClient) -> None:
    user, app = graph.add_user(), graph.add_catalog_app()
    graph.fail_next("POST", r"/teamwork/installedApps$", 429, {"Retry-After": "1"})
    started = asyncio.get_running_loop().time()
    chat_id = await GraphChatInstaller(client, app).ensure_personal_chat(user)
    assert chat_id
    posts = graph.requests_matching("POST", r"/teamwork/installedApps$")
    assert [r.status for r in posts] == [429, 201]
    assert posts[1].time - posts[0].time >= 0.95  # kiota's retry handler honoured Retry-After
    assert asyncio.get_running_loop().time() - started >= 0.95


async def test_persistent_throttling_is_transient(graph: GraphTestServer, http: httpx.AsyncClient) -> None:
    user, app = graph.add_user(), graph.add_catalog_app()
    client = make_client(graph, http, max_retries=1)
    graph.fail_next("POST", r"/teamwork/installedApps$", 429, {"Retry-After": "1"}, times=10)
    with pytest.raises(TransientError) as caught:
        await GraphChatInstaller(client, app).ensure_personal_chat(user)
    assert caught.value.retry_after == 1
    assert len(graph.requests_matching("POST", r"/installedApps$")) == 2  # first try + 1 retry


async def test_service_unavailable_after_retries_is_transient(graph: GraphTestServer, http: httpx.AsyncClient) -> None:
    user, app = graph.add_user(), graph.add_catalog_app()
    client = make_client(graph, http, max_retries=1)
    graph.fail_next("GET", r"/chat$", 503, {"Retry-After": "1"}, times=5)
    with pytest.raises(TransientError):
        await GraphChatInstaller(client, app).ensure_personal_chat(user)


# -- rooms: uploads into a channel's folder (the steps are in test_room_provisioning.py) ---------


async def room_folder(graph: GraphTestServer, client: GraphServiceClient, name: str) -> RoomFolder:
    """A standard channel's files folder, for the upload tests."""
    team = graph.add_team()
    owner = graph.add_user()
    provisioner = rooms(client)
    channel = await provisioner.ensure_channel(team, name, "", owner, membership_type="standard")
    return await provisioner.files_folder(channel)


async def test_kiota_does_not_retry_octet_stream(graph: GraphTestServer, client: GraphServiceClient) -> None:
    folder = await room_folder(graph, client, "Uten retry")
    graph.fail_next("PUT", r":/content$", 503, {"Retry-After": "1"})
    with pytest.raises(TransientError):
        await rooms(client, upload_policy=RetryPolicy(attempts=1)).upload_file(folder, "x.txt", b"x")
    assert len(graph.requests_matching("PUT", r":/content$")) == 1
    put = graph.requests_matching("PUT", r":/content$")[0]
    assert put.headers["content-type"] == "application/octet-stream"


async def test_large_upload_in_chunks_without_authorization(graph: GraphTestServer, client: GraphServiceClient) -> None:
    folder = await room_folder(graph, client, "Stor fil")
    content = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes
    document = await rooms(client).upload_file(folder, "Konkurransegrunnlag.pdf", content)
    session = graph.requests_matching("POST", r":/createUploadSession$")
    assert len(session) == 1 and session[0].authorization == f"Bearer {graph.token}"
    assert session[0].json()["item"]["@microsoft.graph.conflictBehavior"] == "replace"
    chunks = graph.requests_matching("PUT", r"^/upload/")
    assert chunks and all(c.authorization is None for c in chunks)
    total = len(content)
    expected, start = [], 0
    while start < total:
        end = min(start + CHUNK_UNIT, total) - 1
        expected.append(f"bytes {start}-{end}/{total}")
        start = end + 1
    assert [c.headers["content-range"] for c in chunks] == expected
    assert [c.status for c in chunks] == [202] * (len(expected) - 1) + [201]
    item = graph.item_at(folder.drive_id, "Stor fil/Konkurransegrunnlag.pdf")
    assert item is not None and item.content == content and document.item_id == item.id


async def test_large_upload_resumes_after_a_failed_chunk(graph: GraphTestServer, client: GraphServiceClient) -> None:
    folder = await room_folder(graph, client, "Gjenoppta")
    content = b"a" * (3 * CHUNK_UNIT + 10)
    graph.fail_next("PUT", r"^/upload/", 503, {"Retry-After": "0"}, after=1)  # the second chunk
    await rooms(client).upload_file(folder, "stor.bin", content)
    upload_calls = graph.requests_matching("*", r"^/upload/")
    assert [(r.method, r.status) for r in upload_calls] == [
        ("PUT", 202),
        ("PUT", 503),
        ("GET", 200),
        ("PUT", 202),
        ("PUT", 202),
        ("PUT", 201),
    ]
    assert upload_calls[3].headers["content-range"] == f"bytes {CHUNK_UNIT}-{2 * CHUNK_UNIT - 1}/{len(content)}"
    item = graph.item_at(folder.drive_id, "Gjenoppta/stor.bin")
    assert item is not None and item.content == content


async def test_channel_create_for_unknown_team_is_permanent(graph: GraphTestServer, client: GraphServiceClient) -> None:
    with pytest.raises(IntegrationError) as caught:
        await rooms(client).ensure_channel("no-such-team", "X", "", graph.add_user(), membership_type="standard")
    assert caught.value.status == 404


async def test_duplicate_channel_answer_is_graphs(graph: GraphTestServer, http: httpx.AsyncClient) -> None:
    team = graph.add_team()
    url = f"{graph.base_url}/teams/{team}/channels"
    headers = {"Authorization": f"Bearer {graph.token}"}
    body = {"displayName": "Dobbel", "membershipType": "standard"}
    assert (await http.post(url, json=body, headers=headers)).status_code == 201
    again = await http.post(url, json={**body, "displayName": "DOBBEL"}, headers=headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "NameAlreadyExists"
    assert (await http.post(url, json=body)).status_code == 401
    private = await http.post(url, json={"displayName": "Privat", "membershipType": "private"}, headers=headers)
    assert private.status_code == 400  # a private channel needs its owner


# -- team creation ------------------------------------------------------------------------------


async def test_create_team_polls_the_operation(graph: GraphTestServer, client: GraphServiceClient) -> None:
    owner = graph.add_user()
    team_id = await create_team_and_wait(
        client,
        "Konkurranse 2025-14",
        "Samhandling",
        owner,
        poll_interval=0.01,
        max_poll_interval=0.02,
    )
    assert team_id in graph.teams and graph.teams[team_id].ready
    post = graph.requests_matching("POST", r"^/v1.0/teams$")[0]
    assert post.status == 202
    body = post.json()
    assert body["template@odata.bind"].endswith("/teamsTemplates('standard')")
    assert body["members"][0]["roles"] == ["owner"]
    assert body["members"][0]["user@odata.bind"].endswith(f"/users('{owner}')")
    polls = graph.requests_matching("GET", r"/operations/")
    assert len(polls) == graph.team_operation_polls + 1
    # The new team works for rooms straight away.
    channel = await rooms(client).ensure_channel(team_id, "Første", "", owner, membership_type="standard")
    assert channel.channel_id


async def test_team_creation_still_running_is_resumable(graph: GraphTestServer, client: GraphServiceClient) -> None:
    graph.team_operation_polls = 1000
    with pytest.raises(TeamCreationPending) as caught:
        await create_team_and_wait(
            client,
            "Treg team",
            "",
            graph.add_user(),
            poll_interval=0.01,
            max_poll_interval=0.02,
            max_wait=0.1,
        )
    pending = caught.value
    graph.operations[pending.operation_id].polls_left = 0
    assert (
        await wait_for_team_operation(client, pending.team_id, pending.operation_id, poll_interval=0.01)
        == pending.team_id
    )


async def test_team_post_is_not_repeated_after_a_gateway_timeout(
    graph: GraphTestServer, client: GraphServiceClient
) -> None:
    graph.fail_next("POST", r"^/v1.0/teams$", 504)
    with pytest.raises(TransientError):
        await create_team_and_wait(client, "Kanskje", "", graph.add_user(), poll_interval=0.01, policy=FAST)
    assert len(graph.requests_matching("POST", r"^/v1.0/teams$")) == 1  # a second team would be worse


async def test_team_post_throttled_is_tried_again(graph: GraphTestServer, client: GraphServiceClient) -> None:
    graph.fail_next("POST", r"^/v1.0/teams$", 429, {"Retry-After": "0"})
    team_id = await create_team_and_wait(client, "Struping", "", graph.add_user(), poll_interval=0.01, policy=FAST)
    assert [r.status for r in graph.requests_matching("POST", r"^/v1.0/teams$")] == [429, 202]
    assert graph.teams[team_id].ready


def test_operation_location_forms() -> None:
    assert parse_operation_location("/teams('t-1')/operations('op-1')") == ("t-1", "op-1")
    assert parse_operation_location("https://graph.microsoft.com/v1.0/teams/t-2/operations/op-2") == ("t-2", "op-2")
    assert parse_operation_location("/teams('t-3')") is None


# -- SharePoint list and archive ---------------------------------------------------------------


# The register lists (`GraphListMirror`) are tested in test_record_lists.py.


async def test_archive_upload_with_metadata(graph: GraphTestServer, client: GraphServiceClient) -> None:
    drive = graph.add_drive(columns={"Title", "Saksnummer", "Dokumenttype"})
    archive = GraphArchiveStore(client, drive, root_folder="Innkjøp", upload_policy=FAST)
    url = await archive.upload(
        "2025/Renhold",
        "Protokoll: åpning.pdf",
        b"%PDF-1.7",
        {"Saksnummer": "2025/123", "Dokumenttype": "Protokoll"},
    )
    item = graph.item_at(drive, "Innkjøp/2025/Renhold/Protokoll- åpning.pdf")
    assert item is not None and item.content == b"%PDF-1.7"
    assert item.fields == {"Saksnummer": "2025/123", "Dokumenttype": "Protokoll"}
    assert url.endswith("Protokoll-%20%C3%A5pning.pdf")
    put = graph.requests_matching("PUT", r"/root:/")[0]
    assert put.path.endswith("/root:/Innkjøp/2025/Renhold/Protokoll- åpning.pdf:/content")


async def test_archive_large_file_and_unknown_column(graph: GraphTestServer, client: GraphServiceClient) -> None:
    drive = graph.add_drive(columns={"Title", "Saksnummer"})
    archive = GraphArchiveStore(client, drive, small_upload_limit=CHUNK_UNIT, chunk_size=CHUNK_UNIT, upload_policy=FAST)
    await archive.upload("A", "stor.pdf", b"p" * (CHUNK_UNIT * 2), {"Saksnummer": "1"})
    assert graph.item_at(drive, "A/stor.pdf") is not None
    assert len(graph.requests_matching("PUT", r"^/upload/")) == 2
    with pytest.raises(IntegrationError) as caught:
        await archive.upload("A", "b.pdf", b"x", {"Ukjent": "1"})
    assert caught.value.status == 400


def test_client_must_be_built_inside_the_event_loop() -> None:
    with pytest.raises(RuntimeError):
        build_graph_client(StaticTokenCredential("t"))


async def test_close_graph_client(graph: GraphTestServer) -> None:
    client = build_graph_client(StaticTokenCredential(graph.token), base_url=graph.base_url)
    user, app = graph.add_user(), graph.add_catalog_app()
    assert await GraphChatInstaller(client, app).ensure_personal_chat(user)
    await close_graph_client(client)
    await close_graph_client(client)  # twice is fine


def test_drive_item_names_are_cleaned() -> None:
    assert drive_item_name('a:b*c?"d<e>f|g\\h/i') == "a-b-c--d-e-f-g-h-i"
    assert drive_item_name("  . ") == "Dokument"
