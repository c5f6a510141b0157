"""The room job end to end with the real msgraph-sdk (kiota middleware, httpx) against the
Graph-shaped server: the bot runs over HTTP with the Connector stub, an approval queues the job,
the outbox provisions the room in Graph. Graph's behaviours on the way: 201 for the channel, a 429
with Retry-After, a 504 after the channel was in fact created, `filesFolder` 404 for the first
polls, 409 `nameAlreadyExists`; the request bodies as Graph wants them. A crash after each step
(before and after it is recorded) resumes to exactly one channel, six folders, one document and
one tab. The files folder that never appears fails the step within its bound, with a retry."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import docx
import httpx
import pytest
import sqlalchemy as sa

from bot.room_effects import RoomEffects
from integrations.graph_client import RetryPolicy
from integrations.teams_rooms import WORD_TAB_APP_ID, GraphRoomProvisioner
from procurement.competitions.effects import ProvisionRoom
from procurement.competitions.record import STEPS, Step
from procurement.ports import ROOM_FOLDERS
from procurement.store.tables import CompetitionRoom
from tests.graph_server import GraphTestServer
from tests.integration.bot_harness import INGRID, INTAKE, KARI, OLA, Bot, BotFactory, actions_of, texts_of
from tests.integration.test_competition_rooms import FAGGRUPPE, PER, approved, drain_all, last_intake_card

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=2.0)


class Crash(Exception):
    """The process dying at a chosen moment (anything the outbox does not know)."""


@pytest.fixture
async def graph() -> AsyncIterator[GraphTestServer]:
    async with GraphTestServer(files_folder_not_found_polls=2) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


def provisioner(graph: GraphTestServer, http: httpx.AsyncClient, **options: Any) -> GraphRoomProvisioner:
    from tests.integration.test_graph_adapters import make_client

    settings: dict[str, Any] = {
        "files_folder_max_wait": 2.0,
        "files_folder_initial_delay": 0.01,
        "files_folder_max_delay": 0.05,
        "create_policy": FAST,
        "upload_policy": FAST,
        "member_retry_delays": (0.01, 0.02),
    }
    settings.update(options)
    return GraphRoomProvisioner(make_client(graph, http), **settings)


async def graph_bot(
    start_bot: BotFactory, db_url: str, graph: GraphTestServer, http: httpx.AsyncClient, **options: Any
) -> tuple[Bot, RoomEffects, str]:
    """The bot whose room job talks to the Graph-shaped server, in the procurement team."""
    team = graph.add_team(display_name="Innkjøp – konkurranser")
    for aad, name, mail in (
        (INGRID, "Ingrid Innkjøper", "ingrid@kommune.no"),
        (KARI, "Kari Nordmann", "kari@kommune.no"),
        (PER, "Per Hansen", "per.hansen@kommune.example.no"),
    ):
        graph.add_user(aad, name, mail=mail)
    graph.add_team_member(team, INGRID)
    bot = await start_bot(db_url)
    for user in (KARI, OLA, INGRID):
        await bot.say("hei", user=user)
    owner = getattr(bot.runtime.outbox.handlers[ProvisionRoom], "__self__", None)
    assert isinstance(owner, RoomEffects)
    owner.rooms = provisioner(graph, http, **options)
    owner.team_id = team
    return bot, owner, team


def assert_one_room(graph: GraphTestServer, team: str, competition: str) -> None:
    channels = [c for c in graph.teams[team].channels.values() if c.display_name != "General"]
    assert [c.display_name for c in channels] == [f"{competition} Transport av hjelpemidler"]
    channel = channels[0]
    assert channel.membership_type == "private"
    assert {m.user_id: m.roles for m in channel.members.values()} == {INGRID: ["owner"], KARI: [], PER: []}
    drive_id = graph.channel_drive(team, channel)
    drive = graph.drives[drive_id]
    assert channel.folder_id is not None
    folders = drive.children(channel.folder_id)
    assert sorted(f.name for f in folders) == sorted(ROOM_FOLDERS) and all(f.is_folder for f in folders)
    first = graph.item_at(drive_id, f"{channel.display_name}/{ROOM_FOLDERS[0]}")
    assert first is not None
    files = drive.children(first.id)
    assert [f.name for f in files] == [f"Konkurransestrategi {competition} (utkast).docx"]
    assert all(not drive.children(f.id) for f in folders if f.id != first.id)
    tabs = list(channel.tabs.values())
    assert len(tabs) == 1 and tabs[0].app_id == WORD_TAB_APP_ID and tabs[0].display_name == "Konkurransestrategi"
    assert tabs[0].configuration["entityId"] == files[0].unique_id
    assert not graph.unhandled


async def test_the_room_in_graph_with_graphs_behaviours(
    start_bot: BotFactory, db_url: str, graph: GraphTestServer, http: httpx.AsyncClient
) -> None:
    bot, _, team = await graph_bot(start_bot, db_url, graph, http)
    # The channel POST is throttled once (Retry-After honoured), then answered 504 after Graph
    # made the channel: the job looks it up instead of posting again.
    graph.fail_next("POST", r"/teams/[^/]+/channels$", 429, {"Retry-After": "1"})
    graph.fail_next("POST", r"/teams/[^/]+/channels$", 504, commit=True)
    ref, competition = await approved(bot)
    await drain_all(bot)
    assert_one_room(graph, team, competition)

    posts = [r for r in graph.requests_matching("POST", r"/teams/[^/]+/channels$")]
    assert [r.status for r in posts] == [429, 504]
    assert posts[1].time - posts[0].time >= 0.9  # Retry-After: 1
    body = posts[-1].json()
    assert body["membershipType"] == "private" and body["displayName"] == f"{competition} Transport av hjelpemidler"
    [owner] = body["members"]
    assert owner["roles"] == ["owner"] and owner["user@odata.bind"].endswith(f"/users('{INGRID}')")
    assert owner["@odata.type"] == "#microsoft.graph.aadUserConversationMember"
    folder_posts = graph.requests_matching("POST", r"/children$")
    assert len(folder_posts) == 6
    assert all(r.json()["@microsoft.graph.conflictBehavior"] == "fail" for r in folder_posts)
    not_found = [r for r in graph.requests_matching("GET", r"/filesFolder$") if r.status == 404]
    assert len(not_found) == 2  # polled through SharePoint's provisioning
    [tab] = graph.requests_matching("POST", r"/tabs$")
    assert tab.json()["teamsApp@odata.bind"].endswith(f"/appCatalogs/teamsApps/{WORD_TAB_APP_ID}")

    # The strategy in Graph opens in Word and holds the report's values.
    channel = next(c for c in graph.teams[team].channels.values() if c.display_name != "General")
    drive_id = graph.channel_drive(team, channel)
    item = graph.item_at(
        drive_id, f"{channel.display_name}/{ROOM_FOLDERS[0]}/Konkurransestrategi {competition} (utkast).docx"
    )
    assert item is not None
    text = "\n".join(p.text for p in docx.Document(io.BytesIO(bytes(item.content))).paragraphs)
    assert competition in text and ref in text and "Transport av hjelpemidler" in text

    card = last_intake_card(bot)
    assert "Samhandlingsrommet er klart." in texts_of(card)
    # The channel's Teams link is a button on the approver's card.
    assert any(a.get("type") == "Action.OpenUrl" for a in actions_of(card))


@pytest.mark.parametrize("recorded", [False, True], ids=["before-record", "after-record"])
@pytest.mark.parametrize("step", STEPS)
async def test_a_crash_after_each_step_resumes_to_one_room(
    start_bot: BotFactory,
    new_database: Any,
    graph: GraphTestServer,
    http: httpx.AsyncClient,
    step: Step,
    recorded: bool,
) -> None:
    bot, effects, team = await graph_bot(start_bot, await new_database("sqlite"), graph, http)
    _, competition = await approved(bot)
    crashed: list[str] = []
    if recorded:

        async def crash_after(done: Step) -> None:
            if done == step and not crashed:
                crashed.append(done)
                raise Crash(done)

        effects.after_step = crash_after
    else:
        # Graph did the step, the process died before we recorded it.
        method = {
            "channel": "ensure_channel",
            "members": "ensure_members",
            "folders": "ensure_folders",
            "strategy": "upload_file",
            "tab": "ensure_tab",
            "welcome": None,
        }[step]
        target: Any = effects.rooms if method else effects.sender
        name = method or "send_to_user"
        original = getattr(target, name)

        async def crash(*args: Any, **kwargs: Any) -> Any:
            result = await original(*args, **kwargs)
            if not crashed:
                crashed.append(name)
                raise Crash(name)
            return result

        setattr(target, name, crash)
    with pytest.raises(Crash):
        await effects.provision(ProvisionRoom(competition, 1))
    assert crashed
    # The outbox runs the job again (a restart: the lease was given back, or it expires).
    await effects.provision(ProvisionRoom(competition, 1))
    [room] = await bot.rows(CompetitionRoom)
    assert room.status == "ready", room.steps
    assert_one_room(graph, team, competition)
    steps = [e.details["step"] for e in await bot.audit(competition) if e.action == "competition.room_step"]
    assert steps == list(STEPS)  # each step recorded once


async def test_a_files_folder_that_never_appears_fails_within_its_bound_and_is_retried(
    start_bot: BotFactory, db_url: str, graph: GraphTestServer, http: httpx.AsyncClient
) -> None:
    graph.files_folder_not_found_polls = 10_000
    bot, effects, team = await graph_bot(start_bot, db_url, graph, http, files_folder_max_wait=0.05)
    effects.files_folder_wait = timedelta(minutes=15)
    _, competition = await approved(bot)
    await drain_all(bot)  # the first try waits within the job's bound: rescheduled, not failed
    [room] = await bot.rows(CompetitionRoom)
    assert room.status == "pending" and room.steps["folders"] == "pending" and room.files_deadline is not None
    job = next(r for r in await bot.outbox() if r.kind == ProvisionRoom.kind)
    assert job.status == "pending" and "filesFolderNotReady" in (job.last_error or "")
    # Fifteen minutes later (the stored deadline passed), SharePoint still has no folder.
    assert room.files_deadline is not None
    async with bot.store.session() as session:
        past = room.files_deadline - timedelta(minutes=16)
        await session.execute(sa.update(CompetitionRoom).values(files_deadline=past))
        await session.commit()
    await effects.provision(ProvisionRoom(competition, 1))  # the outbox's next try, past the deadline
    [room] = await bot.rows(CompetitionRoom)
    assert (room.status, room.failed_step, room.failure) == ("failed", "folders", "files_folder_timeout")
    await drain_all(bot)
    card = last_intake_card(bot)
    assert "SharePoint har ikke gjort klar filområdet" in texts_of(card)
    [retry] = [a for a in actions_of(card) if a.get("verb") == "competition.room_retry"]

    for channel in graph.teams[team].channels.values():
        channel.misses_left = 0  # SharePoint caught up
    await bot.invoke(
        "competition.room_retry", retry["data"], user=INGRID, conversation=INTAKE, conversation_type="channel"
    )
    await drain_all(bot)
    [room] = await bot.rows(CompetitionRoom)
    assert room.status == "ready"
    assert_one_room(graph, team, competition)


async def test_a_double_tapped_approval_makes_one_channel(
    start_bot: BotFactory, db_url: str, graph: GraphTestServer, http: httpx.AsyncClient
) -> None:
    bot, _, team = await graph_bot(start_bot, db_url, graph, http)
    ref = await bot.submit_valid(faggruppe=FAGGRUPPE)
    await bot.drain()
    await asyncio.gather(*(bot.decide("needs_report.approve", ref) for _ in range(2)))
    await drain_all(bot)
    competition = (await bot.report(ref)).competition_ref
    assert competition
    assert_one_room(graph, team, competition)
