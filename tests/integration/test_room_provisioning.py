"""Provisioning a competition room step by step against the Graph-shaped server (real msgraph-sdk,
kiota middleware, httpx; only Graph is faked): look up before create, never twice, resumable."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from msgraph import GraphServiceClient

from integrations.graph_client import RetryPolicy
from integrations.teams_rooms import WORD_TAB_APP_ID, GraphRoomProvisioner
from procurement.errors import PermanentError, TransientError
from procurement.ports import (
    ROOM_FOLDERS,
    MemberProblem,
    RoomChannel,
    RoomFile,
    RoomFolder,
    RoomMember,
    RoomProvisioner,
    RoomTab,
    competition_channel_name,
)
from tests.graph_server import DROP, GraphTestServer
from tests.integration.test_graph_adapters import FAST, make_client, rooms

NAME = competition_channel_name("K-2026-0042", "Kjøp av blåbær og ærfugl til Åsen skole")
DOCUMENT = "Konkurransestrategi K-2026-0042 – blåbær.docx"
TAB = "Konkurransestrategi"
DOCX = b"PK\x03\x04 a docx, as far as the server cares"


@dataclass
class People:
    owner: str
    kari: str
    ola: str
    unknown: str


@dataclass
class Room:
    channel: RoomChannel
    problems: tuple[MemberProblem, ...]
    root: RoomFolder
    folders: tuple[RoomFolder, ...]
    document: RoomFile
    tab: RoomTab


@pytest.fixture
async def graph() -> AsyncIterator[GraphTestServer]:
    async with GraphTestServer(files_folder_not_found_polls=2) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


@pytest.fixture
async def client(graph: GraphTestServer, http: httpx.AsyncClient) -> GraphServiceClient:
    return make_client(graph, http)


@pytest.fixture
def team(graph: GraphTestServer) -> str:
    return graph.add_team(display_name="Innkjøp – konkurranser")


@pytest.fixture
def people(graph: GraphTestServer, team: str) -> People:
    owner = graph.add_user(display_name="Ingrid Innkjøper", mail="ingrid@kommune.no")
    graph.add_team_member(team, owner)
    return People(
        owner=owner,
        kari=graph.add_user(display_name="Kari Ærlig", mail="kari@kommune.no"),
        ola=graph.add_user(display_name="Ola Østby", mail="ola@kommune.no"),
        unknown="00000000-0000-4000-8000-00000000dead",
    )


def faggruppe(people: People) -> list[RoomMember]:
    return [RoomMember(people.kari), RoomMember(people.ola), RoomMember(people.unknown)]


async def provision(provisioner: RoomProvisioner, team: str, people: People, *, upto: int = 6) -> Room | None:
    """The six steps in order; `upto` stops after that many (a crash right after a step)."""
    channel = await provisioner.ensure_channel(team, NAME, "Konkurranse K-2026-0042", people.owner)
    if upto == 1:
        return None
    members = await provisioner.ensure_members(channel, faggruppe(people))
    if upto == 2:
        return None
    root = await provisioner.files_folder(channel)
    if upto == 3:
        return None
    folders = await provisioner.ensure_folders(root, ROOM_FOLDERS)
    if upto == 4:
        return None
    document = await provisioner.upload_file(folders[0], DOCUMENT, DOCX)
    if upto == 5:
        return None
    tab = await provisioner.ensure_tab(channel, document, TAB)
    return Room(channel, members.failed, root, folders, document, tab)


def assert_one_room(graph: GraphTestServer, team: str, people: People) -> None:
    """Exactly one channel, its members, six folders, one document and one tab."""
    channels = [c for c in graph.teams[team].channels.values() if c.display_name != "General"]
    assert [c.display_name for c in channels] == [NAME]
    channel = channels[0]
    assert channel.membership_type == "private"
    members = {m.user_id: m.roles for m in channel.members.values()}
    assert members == {people.owner: ["owner"], people.kari: [], people.ola: []}
    drive_id = graph.channel_drive(team, channel)
    assert drive_id != graph.teams[team].drive_id  # a private channel has its own site
    drive = graph.drives[drive_id]
    assert channel.folder_id is not None
    folders = drive.children(channel.folder_id)
    assert sorted(f.name for f in folders) == sorted(ROOM_FOLDERS) and all(f.is_folder for f in folders)
    first = graph.item_at(drive_id, f"{NAME}/{ROOM_FOLDERS[0]}")
    assert first is not None
    files = drive.children(first.id)
    assert [f.name for f in files] == [DOCUMENT] and files[0].content == DOCX
    assert all(not drive.children(f.id) for f in folders if f.id != first.id)
    tabs = list(channel.tabs.values())
    assert len(tabs) == 1 and tabs[0].display_name == TAB and tabs[0].app_id == WORD_TAB_APP_ID
    assert tabs[0].configuration["entityId"] == files[0].unique_id
    folder_url = f"{drive.web_url}/{quote(drive.path_of(first))}"
    assert tabs[0].configuration["contentUrl"] == f"{folder_url}/{quote(DOCUMENT)}"
    assert not graph.unhandled


# -- the whole room -------------------------------------------------------------------------------


async def test_adapter_implements_the_port(client: GraphServiceClient) -> None:
    provisioner: RoomProvisioner = rooms(client)
    assert isinstance(provisioner, GraphRoomProvisioner)


async def test_full_provisioning_twice_makes_one_room(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    first = await provision(rooms(client), team, people)
    assert first is not None
    assert_one_room(graph, team, people)
    assert first.problems == (MemberProblem(people.unknown, "unknown_user"),)
    assert first.channel.display_name == NAME and first.channel.membership_type == "private"
    assert first.channel.web_url.startswith("https://teams.microsoft.com/l/channel/")
    assert [f.name for f in first.folders] == list(ROOM_FOLDERS)
    assert first.document.name == DOCUMENT and first.document.source_doc_id
    assert "sourcedoc=%7B" + first.document.source_doc_id in first.document.web_url
    assert first.tab.web_url.startswith("https://teams.microsoft.com/l/entity/")

    # What Graph was asked, as its documentation wants it.
    create = graph.requests_matching("POST", r"/channels$")[0].json()
    assert create["membershipType"] == "private" and create["displayName"] == NAME
    assert create["members"] == [
        {
            "@odata.type": "#microsoft.graph.aadUserConversationMember",
            "roles": ["owner"],
            "user@odata.bind": f"{graph.base_url}/users('{people.owner}')",
        }
    ]
    folder_posts = [r.json() for r in graph.requests_matching("POST", r"/children$")]
    assert [b["name"] for b in folder_posts] == list(ROOM_FOLDERS)
    assert all(b["@microsoft.graph.conflictBehavior"] == "fail" and b["folder"] == {} for b in folder_posts)
    tab_post = graph.requests_matching("POST", r"/tabs$")[0].json()
    assert tab_post["teamsApp@odata.bind"] == f"{graph.base_url}/appCatalogs/teamsApps/{WORD_TAB_APP_ID}"
    assert tab_post["displayName"] == TAB
    member_posts = [r.json() for r in graph.requests_matching("POST", r"/channels/[^/]+/members$")]
    assert all(b["@odata.type"] == "#microsoft.graph.aadUserConversationMember" for b in member_posts)

    # The second run looks everything up and creates nothing (only the unknown person is tried again).
    seen = len(graph.requests)
    second = await provision(rooms(client), team, people)
    assert second is not None
    assert second.channel == first.channel and second.folders == first.folders
    assert second.document == first.document and second.tab == first.tab
    again = graph.requests[seen:]
    writes = [r for r in again if r.method != "GET"]
    assert again and all(r.status == 404 and people.unknown in r.body.decode() for r in writes), writes
    assert_one_room(graph, team, people)


@pytest.mark.parametrize("crash_after", [1, 2, 3, 4, 5])
async def test_crash_after_each_step_then_resume(
    graph: GraphTestServer,
    http: httpx.AsyncClient,
    client: GraphServiceClient,
    team: str,
    people: People,
    crash_after: int,
) -> None:
    """The process dies after a step did its work but before anyone recorded it; a new process
    (a new client) runs the job from the start and ends with one of everything."""
    assert await provision(rooms(client), team, people, upto=crash_after) is None
    resumed = await provision(rooms(make_client(graph, http)), team, people)
    assert resumed is not None
    assert_one_room(graph, team, people)
    assert len(graph.requests_matching("POST", r"/channels$")) == 1
    assert len(graph.requests_matching("POST", r"/tabs$")) == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", r"/channels$"),
        ("POST", r"/channels/[^/]+/members$"),
        ("POST", r"/children$"),
        ("PUT", r":/content$"),
        ("POST", r"/tabs$"),
    ],
)
async def test_connection_dropped_after_graph_did_the_work(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People, method: str, path: str
) -> None:
    """Graph did it but the answer never arrived: the step (or its retry) finds it, nothing twice."""
    graph.fail_next(method, path, DROP, commit=True)
    try:
        await provision(rooms(client), team, people)
    except TransientError:
        await provision(rooms(client), team, people)  # the outbox's next attempt
    assert_one_room(graph, team, people)
    assert [r.status for r in graph.requests_matching(method, path)].count(0) == 1


async def test_504_after_the_channel_was_created_is_resolved_by_looking_it_up(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    graph.fail_next("POST", r"/channels$", 504, commit=True)
    channel = await rooms(client).ensure_channel(team, NAME, "", people.owner)
    assert [r.status for r in graph.requests_matching("POST", r"/channels$")] == [504]  # not posted again
    found = graph.team_channel(team, NAME)
    assert found is not None and channel.channel_id == found.id
    assert len(graph.teams[team].channels) == 2  # General and ours


async def test_name_already_exists_is_looked_up(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    first = await rooms(client).ensure_channel(team, NAME, "", people.owner)
    # Another instance created it between our look-up and our POST: Graph answers 409.
    graph.fail_next("GET", r"/channels$", 200, body={"value": []}, times=2)
    again = await rooms(client).ensure_channel(team, NAME, "", people.owner)
    assert again == first
    assert [r.status for r in graph.requests_matching("POST", r"/channels$")] == [201, 409]


async def test_a_standard_channel_by_configuration(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    provisioner = rooms(client)
    channel = await provisioner.ensure_channel(team, NAME, "", people.owner, membership_type="standard")
    body = graph.requests_matching("POST", r"/channels$")[0].json()
    assert body["membershipType"] == "standard" and "members" not in body
    result = await provisioner.ensure_members(channel, [RoomMember(people.owner), *faggruppe(people)])
    # A standard channel's members are the team's: added to the team, never to the channel.
    assert result.present == (people.owner,) and result.added == (people.kari, people.ola)
    assert result.failed == (MemberProblem(people.unknown, "unknown_user"),)
    assert not graph.requests_matching("POST", r"/channels/[^/]+/members$")
    assert {m.user_id for m in graph.teams[team].members.values()} == {people.owner, people.kari, people.ola}
    root = await provisioner.files_folder(channel)
    assert root.drive_id == graph.teams[team].drive_id  # the team's own library


async def test_an_existing_channel_of_the_other_kind_is_refused(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    await rooms(client).ensure_channel(team, NAME, "", people.owner, membership_type="standard")
    with pytest.raises(PermanentError) as caught:
        await rooms(client).ensure_channel(team, NAME, "", people.owner)
    assert "standard" in str(caught.value)


async def test_the_owner_joins_the_team_first(graph: GraphTestServer, client: GraphServiceClient, team: str) -> None:
    newcomer = graph.add_user(display_name="Nina Ny")
    channel = await rooms(client).ensure_channel(team, NAME, "", newcomer)
    assert channel.membership_type == "private"
    assert newcomer in {m.user_id for m in graph.teams[team].members.values()}
    ours = graph.team_channel(team, NAME)
    assert ours is not None and [m.roles for m in ours.members.values()] == [["owner"]]


# -- members --------------------------------------------------------------------------------------


async def test_members_already_there_count_as_done_and_failures_are_reported(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    provisioner = rooms(client)
    channel = await provisioner.ensure_channel(team, NAME, "", people.owner)
    blocked = graph.add_user(display_name="Bjørn Blokkert", blocked=True)
    first = await provisioner.ensure_members(
        channel, [RoomMember(people.kari), RoomMember(people.kari), RoomMember(blocked), RoomMember(people.owner)]
    )
    assert first.added == (people.kari,) and first.present == (people.owner,)
    assert first.failed == (MemberProblem(blocked, "unknown_user"),)
    # A 409 for someone our listing missed (added by a run that crashed) is "already there".
    graph.fail_next("GET", r"/channels/[^/]+/members$", 200, body={"value": []})
    second = await provisioner.ensure_members(channel, [RoomMember(people.kari), RoomMember(people.ola)])
    assert second.added == (people.kari, people.ola) and not second.failed
    statuses = [r.status for r in graph.requests_matching("POST", r"/channels/[^/]+/members$")]
    assert statuses == [201, 409, 201]  # the blocked person never got past the team (404)
    ours = graph.team_channel(team, NAME)
    assert ours is not None and len(ours.members) == 3


async def test_a_member_the_channel_does_not_see_in_the_team_yet_is_retried(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    provisioner = rooms(client, member_retry_delays=(0.05, 0.05))
    channel = await provisioner.ensure_channel(team, NAME, "", people.owner)
    not_yet = {"error": {"code": "BadRequest", "message": "User is not found in the team."}}
    graph.fail_next("POST", r"/channels/[^/]+/members$", 400, body=not_yet)
    result = await provisioner.ensure_members(channel, [RoomMember(people.kari)])
    assert result.added == (people.kari,) and not result.failed
    assert [r.status for r in graph.requests_matching("POST", r"/channels/[^/]+/members$")] == [400, 201]
    # Never there: reported, not raised.
    graph.fail_next("POST", r"/channels/[^/]+/members$", 400, body=not_yet, times=3)
    later = await provisioner.ensure_members(channel, [RoomMember(people.ola)])
    assert later.failed == (MemberProblem(people.ola, "failed"),)


async def test_a_missing_permission_fails_the_step(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    provisioner = rooms(client)
    channel = await provisioner.ensure_channel(team, NAME, "", people.owner)
    graph.add_team_member(team, people.kari)
    graph.fail_next("POST", r"/channels/[^/]+/members$", 403)
    with pytest.raises(PermanentError) as caught:
        await provisioner.ensure_members(channel, [RoomMember(people.kari)])
    assert caught.value.why == "permission_missing"


# -- the files folder -----------------------------------------------------------------------------


async def test_files_folder_404_for_a_while_then_found(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    graph.files_folder_not_found_polls = 5
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    provisioner = rooms(client, sleep=sleep, files_folder_initial_delay=0.5, files_folder_max_delay=4.0)
    channel = await provisioner.ensure_channel(team, NAME, "", people.owner)
    root = await provisioner.files_folder(channel)
    assert [r.status for r in graph.requests_matching("GET", r"/filesFolder$")] == [404] * 5 + [200]
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0]  # backoff, capped
    assert root.name == NAME and root.web_url.endswith(quote(NAME))


async def test_files_folder_that_never_appears_fails_within_the_bound(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    graph.files_folder_not_found_polls = 10_000
    provisioner = rooms(client, files_folder_max_wait=0.3, files_folder_initial_delay=0.05, files_folder_max_delay=0.1)
    channel = await provisioner.ensure_channel(team, NAME, "", people.owner)
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        await provisioner.files_folder(channel)
    assert time.monotonic() - started < 2.0
    assert caught.value.code == "filesFolderNotReady" and caught.value.retry_after
    assert 2 <= len(graph.requests_matching("GET", r"/filesFolder$")) < 20


def test_files_folder_waits_about_fifteen_minutes_by_default() -> None:
    import inspect

    default = inspect.signature(GraphRoomProvisioner).parameters["files_folder_max_wait"].default
    assert default == 15 * 60


# -- throttling -----------------------------------------------------------------------------------


async def test_429_on_the_channel_post_waits_for_retry_after(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    graph.fail_next("POST", r"/channels$", 429, {"Retry-After": "1"})
    await rooms(client, create_policy=FAST).ensure_channel(team, NAME, "", people.owner)
    posts = graph.requests_matching("POST", r"/channels$")
    assert [r.status for r in posts] == [429, 201]
    assert posts[1].time - posts[0].time >= 0.95


async def test_429_and_503_elsewhere_honour_retry_after(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    graph.fail_next("GET", r"/filesFolder$", 429, {"Retry-After": "1"})
    graph.fail_next("POST", r"/tabs$", 503, {"Retry-After": "1"})
    room = await provision(rooms(client, create_policy=FAST), team, people)
    assert room is not None
    folder_gets = graph.requests_matching("GET", r"/filesFolder$")
    assert folder_gets[0].status == 429 and folder_gets[1].time - folder_gets[0].time >= 0.95  # kiota
    tabs = graph.requests_matching("POST", r"/tabs$")
    assert [r.status for r in tabs] == [503, 201] and tabs[1].time - tabs[0].time >= 0.95  # ours
    assert_one_room(graph, team, people)


async def test_throttled_for_too_long_is_transient(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    graph.fail_next("POST", r"/channels$", 429, {"Retry-After": "0"}, times=10)
    with pytest.raises(TransientError) as caught:
        await rooms(client, create_policy=RetryPolicy(attempts=2, base_delay=0.01)).ensure_channel(
            team, NAME, "", people.owner
        )
    assert caught.value.status == 429
    assert graph.team_channel(team, NAME) is None


# -- folders, the document, the tab ---------------------------------------------------------------


async def test_folders_that_exist_are_kept_and_a_409_means_there(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    provisioner = rooms(client)
    channel = await provisioner.ensure_channel(team, NAME, "", people.owner)
    root = await provisioner.files_folder(channel)
    made = await provisioner.ensure_folders(root, ROOM_FOLDERS[:2])
    # Someone makes folder 03 between our listing and our POST: 409 nameAlreadyExists.
    graph.fail_next("GET", r"/children$", 200, body={"value": []})
    again = await provisioner.ensure_folders(root, ROOM_FOLDERS)
    assert again[:2] == made and [f.name for f in again] == list(ROOM_FOLDERS)
    statuses = [r.status for r in graph.requests_matching("POST", r"/children$")]
    assert statuses == [201, 201, 409, 409, 201, 201, 201, 201]


async def test_an_existing_document_is_kept_unless_replaced(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    provisioner = rooms(client)
    channel = await provisioner.ensure_channel(team, NAME, "", people.owner)
    (folder,) = await provisioner.ensure_folders(await provisioner.files_folder(channel), ROOM_FOLDERS[:1])
    first = await provisioner.upload_file(folder, DOCUMENT, b"utkast 1")
    kept = await provisioner.upload_file(folder, DOCUMENT, b"utkast 2")
    assert kept == first and len(graph.requests_matching("PUT", r":/content$")) == 1
    replaced = await provisioner.upload_file(folder, DOCUMENT, b"utkast 3", replace=True)
    assert replaced.item_id == first.item_id and replaced.source_doc_id == first.source_doc_id
    drive = graph.drives[folder.drive_id]
    assert [i.content for i in drive.children(folder.item_id)] == [b"utkast 3"]


async def test_upload_retries_a_503_itself(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    graph.fail_next("PUT", r":/content$", 503, {"Retry-After": "1"})
    room = await provision(rooms(client), team, people)
    assert room is not None
    puts = graph.requests_matching("PUT", r":/content$")
    assert [r.status for r in puts] == [503, 201] and puts[1].time - puts[0].time >= 0.95
    assert_one_room(graph, team, people)


async def test_a_tab_of_the_same_name_is_reused(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    room = await provision(rooms(client), team, people)
    assert room is not None
    again = await rooms(client).ensure_tab(room.channel, room.document, "konkurransestrategi")
    assert again == room.tab and len(graph.requests_matching("POST", r"/tabs$")) == 1
    assert graph.requests_matching("GET", r"/tabs$")[-1].query["$expand"] == "teamsApp"


async def test_norwegian_letters_survive_every_name(
    graph: GraphTestServer, client: GraphServiceClient, team: str, people: People
) -> None:
    room = await provision(rooms(client), team, people)
    assert room is not None
    assert room.channel.display_name == NAME == "K-2026-0042 Kjøp av blåbær og ærfugl til Åsen"  # cut at a word
    assert graph.team_channel(team, NAME) is not None
    assert room.folders[2].name == "03 Spørsmål og svar"
    assert room.document.name == DOCUMENT
    put = graph.requests_matching("PUT", r":/content$")[0]
    assert put.path.endswith(f":/{DOCUMENT}:/content")  # decoded by the server: sent percent-encoded
    tab = next(iter(next(c for c in graph.teams[team].channels.values() if c.display_name == NAME).tabs.values()))
    assert "Konkurransestrategi%20K-2026-0042%20%E2%80%93%20bl%C3%A5b%C3%A6r.docx" in tab.configuration["contentUrl"]
    lookups: list[Any] = graph.requests_matching("GET", r"/channels$")
    assert lookups[0].query["$filter"] == f"displayName eq '{NAME}'"
