"""Competition rooms through the bot over HTTP (Connector stub), in local mode: an approval queues
the room in the same transaction; the outbox job does channel → members → folders → strategy →
tab → welcome on disk (DATA_DIR/rooms/<K-ref>/), updating the approver's card in place; "rom K-…"
for innkjøpere and members only; a failed step and its retry; a double-tapped approval; the
evaluation when the contract is signed. The Graph-backed runs are in
test_competition_rooms_graph.py."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import docx
import pytest
import sqlalchemy as sa

from bot.room_effects import RoomEffects
from procurement.competitions.effects import ProvisionRoom
from procurement.errors import PermanentError
from procurement.ports import ROOM_FOLDERS, RoomChannel, RoomFile, RoomTab
from procurement.store.tables import (
    Competition,
    CompetitionEvaluation,
    CompetitionRoom,
    CompetitionRoomMember,
    OutboxItem,
)
from tests.connector_stub import adaptive_cards
from tests.integration.bot_harness import (
    INGRID,
    INGRID_CHAT,
    INTAKE,
    KARI,
    KARI_CHAT,
    OLA,
    Bot,
    actions_of,
    inputs_of,
    texts_of,
    year,
)

# A Playground user (resolved through the local directory by e-mail) and a name nobody answers to.
PER_EMAIL = "per.hansen@kommune.example.no"
PER = "00000000-0000-4000-8000-0000000000a3"
FAGGRUPPE = f"{PER_EMAIL}, Ukjent Fagperson"


def room_effects(bot: Bot) -> RoomEffects:
    handler = bot.runtime.outbox.handlers[ProvisionRoom]
    owner = getattr(handler, "__self__", None)
    assert isinstance(owner, RoomEffects)
    return owner


def rooms_dir(bot: Bot) -> Path:
    return Path(bot.runtime.settings.data_dir).resolve() / "rooms"


async def approved(bot: Bot, *, note: str = "", **overrides: Any) -> tuple[str, str]:
    """A report submitted, posted to intake and approved by Ingrid: (BM-ref, K-ref)."""
    ref = await bot.submit_valid(faggruppe=FAGGRUPPE, **overrides)
    await bot.drain()  # the intake card
    card = await bot.decide("needs_report.approve", ref, note=note)
    assert "Oppretter samhandlingsrom" in texts_of(card), texts_of(card)
    competition = (await bot.report(ref)).competition_ref
    assert competition
    return ref, competition


async def drain_all(bot: Bot, rounds: int = 10, settle: float = 10.0) -> None:
    """Run the outbox until nothing is due, then until the cards a throttled channel made wait
    (Retry-After) are out too; a room job waiting for SharePoint is left to its schedule."""
    for _ in range(rounds):
        if await bot.drain() == 0:
            break
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settle
    while loop.time() < deadline:
        waiting = [r for r in await bot.outbox() if r.status == "pending" and r.kind != ProvisionRoom.kind]
        if not waiting:
            return
        await asyncio.sleep(0.2)
        await bot.drain()


def last_intake_card(bot: Bot) -> dict[str, Any]:
    updates = [u for u in bot.stub.updates if u.conversation_id == INTAKE]
    assert updates, "the approver's card was never updated"
    return adaptive_cards(updates[-1].activity)[0]


async def test_an_approval_makes_the_room_and_the_card_follows_each_step(bot: Bot) -> None:
    ref, competition = await approved(bot)
    assert competition == f"K-{year()}-0001"
    # Queued in the approval's transaction: one room, one job.
    [room] = await bot.rows(CompetitionRoom)
    assert room.ref == competition and room.status == "pending" and room.owner_aad_id == INGRID
    jobs = [r for r in await bot.outbox() if r.kind == ProvisionRoom.kind]
    assert [j.payload for j in jobs] == [{"ref": competition, "attempt": 1}]

    kari_before = len(bot.stub.cards(KARI_CHAT))
    await drain_all(bot)

    # The room on disk, as Graph would hold it.
    root = rooms_dir(bot) / competition
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(ROOM_FOLDERS)
    recorded = json.loads((root / "room.json").read_text(encoding="utf-8"))
    assert recorded["channelName"] == f"{competition} Transport av hjelpemidler"
    assert recorded["membershipType"] == "private"
    roles = {m["aadId"]: m["role"] for m in recorded["members"]}
    assert roles == {INGRID: "owner", KARI: "member", PER: "member"}
    assert recorded["folders"] == list(ROOM_FOLDERS)
    name = f"Konkurransestrategi {competition} (utkast).docx"
    assert recorded["document"] == name and recorded["tab"] == "Konkurransestrategi"
    assert recorded["steps"] == ["channel", "members", "folders", "document", "tab"]

    # The strategy opens in Word and holds the report's values.
    document = docx.Document(io.BytesIO((root / ROOM_FOLDERS[0] / name).read_bytes()))
    text = "\n".join(p.text for p in document.paragraphs) + "\n".join(
        cell.text for table in document.tables for row in table.rows for cell in row.cells
    )
    assert competition in text and ref in text
    assert "Transport av hjelpemidler" in text and "1 300 000" in text
    assert "Dagens utgifter til transport, tre år." in text  # the value's basis
    assert "Per Hansen" in text and "Ukjent Fagperson" in text  # the faggruppe

    # The approver's card: the report, then the room, every step done; the unresolved name listed.
    card = last_intake_card(bot)
    shown = texts_of(card)
    assert "Godkjent av Ingrid Innkjøper" in shown and "Samhandlingsrommet er klart." in shown
    for step in ("Kanal ✓", "Medlemmer ✓", "Mapper ✓", "Strategi ✓", "Fane ✓", "Velkomst ✓"):
        assert step in shown, step
    assert "Ukjent Fagperson: finnes ikke i katalogen" in shown
    assert "competition.room_retry" not in json.dumps(card)
    updates = [u for u in bot.stub.updates if u.conversation_id == INTAKE]
    assert len(updates) >= 3  # the in-turn edit, then step by step

    # The welcome: no channel for rooms configured, so in each member's personal chat.
    [welcome] = bot.stub.cards(KARI_CHAT)[kari_before:][-1:]
    welcome_text = texts_of(welcome)
    assert f"Velkommen til samhandlingsrommet for {competition}" in welcome_text
    assert "Behovsvurdering" in welcome_text and "Kontraktsoppfølging" in welcome_text
    assert "Per Hansen" in welcome_text
    deviation = [a for a in actions_of(welcome) if a.get("verb") == "deviation.open"]
    assert deviation and deviation[0]["data"]["competition"] == competition
    assert any(f"samhandlingsrommet for {competition}" in texts_of(c) for c in bot.stub.cards(INGRID_CHAT))

    # Audited per step, with the names the records workflow listens for.
    actions = [(e.action, e.details) for e in await bot.audit(competition)]
    steps = [d["step"] for a, d in actions if a == "competition.room_step"]
    assert steps == ["channel", "members", "folders", "strategy", "tab", "welcome"]
    assert ("competition.strategy_drafted", {"document": name}) in actions
    assert [a for a, _ in actions].count("competition.room_ready") == 1

    # Other workflows read the room.
    services = bot.runtime.services
    assert await services.competitions.members(competition) == {INGRID, KARI, PER}
    info = await services.competitions.room(competition)
    assert info is not None and info.channel_id == f"local:{competition}" and info.item_id == competition

    # Nothing is left to do, and a second run of the same job makes nothing.
    assert await bot.drain() == 0
    await room_effects(bot).provision(ProvisionRoom(competition, 1))
    assert json.loads((root / "room.json").read_text(encoding="utf-8"))["tabs"] == recorded["tabs"]
    assert len([e for e in await bot.audit(competition) if e.action == "competition.room_step"]) == 6


async def test_room_status_for_innkjopere_and_members_only(bot: Bot) -> None:
    _, competition = await approved(bot)
    await drain_all(bot)
    [mine] = await bot.say(f"rom {competition}", user=KARI)
    assert f"Samhandlingsrom {competition}" in texts_of(mine) and "Samhandlingsrommet er klart." in texts_of(mine)
    assert "competition.room_retry" not in json.dumps(mine)
    [theirs] = await bot.say(f"room {competition.lower()}", user=INGRID)
    assert "Fane ✓" in texts_of(theirs)
    # Ola is neither: he learns nothing, exactly as for a reference that does not exist.
    [refused] = await bot.say(f"rom {competition}", user=OLA)
    [missing] = await bot.say(f"rom K-{year()}-9999", user=OLA)
    assert texts_of(refused) == texts_of(missing)
    assert competition not in texts_of(refused) and "Transport" not in texts_of(refused)
    card = await bot.invoke("competition.room_status", {"ref": competition}, user=OLA)
    assert "Jeg finner ikke noe med den referansen" in texts_of(card)
    # Hostile input is a polite not-found, never a crash.
    card = await bot.invoke("competition.room_status", {"ref": {"$gt": ""}}, user=INGRID)
    assert "Jeg finner ikke noe med den referansen" in texts_of(card)


class FailingTab:
    """The local provisioner whose tab step is refused (a missing permission) `times` times."""

    def __init__(self, inner: Any, times: int = 1) -> None:
        self.inner = inner
        self.times = times

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def ensure_tab(self, channel: RoomChannel, file: RoomFile, display_name: str) -> RoomTab:
        if self.times > 0:
            self.times -= 1
            raise PermanentError("403 Forbidden", status=403, code="Forbidden")
        tab: RoomTab = await self.inner.ensure_tab(channel, file, display_name)
        return tab


async def test_a_failed_step_shows_why_and_an_innkjoper_retries_it(bot: Bot) -> None:
    effects = room_effects(bot)
    effects.rooms = FailingTab(effects.rooms)
    _, competition = await approved(bot)
    await drain_all(bot)
    [room] = await bot.rows(CompetitionRoom)
    assert (room.status, room.failed_step, room.failure) == ("failed", "tab", "permission_missing")
    card = last_intake_card(bot)
    shown = texts_of(card)
    assert "steget «Fane» feilet" in shown and "mangler en tillatelse" in shown
    assert "Forbidden" not in shown and "403" not in shown  # plain Norwegian, no error text
    assert "Kanal ✓" in shown and "Fane ✗" in shown and "Velkomst …" in shown
    [retry] = [a for a in actions_of(card) if a.get("verb") == "competition.room_retry"]

    # Kari is a member: she sees the status, not a retry button; she can't retry either.
    [status] = await bot.say(f"rom {competition}", user=KARI)
    assert "Fane ✗" in texts_of(status) and "competition.room_retry" not in json.dumps(status)
    refused = await bot.invoke("competition.room_retry", retry["data"], user=KARI)
    assert "bare medlemmer av Innkjøpsseksjonen" in texts_of(refused)

    # Ingrid retries from the card (twice: a double press is one retry).
    first = await bot.invoke(
        "competition.room_retry", retry["data"], user=INGRID, conversation=INTAKE, conversation_type="channel"
    )
    second = await bot.invoke(
        "competition.room_retry", retry["data"], user=INGRID, conversation=INTAKE, conversation_type="channel"
    )
    assert "Prøver på nytt" in texts_of(first) and "Ingenting å prøve på nytt" in texts_of(second)
    jobs = [r.payload for r in await bot.outbox() if r.kind == ProvisionRoom.kind]
    assert jobs == [{"ref": competition, "attempt": 1}, {"ref": competition, "attempt": 2}]
    await drain_all(bot)
    [room] = await bot.rows(CompetitionRoom)
    assert room.status == "ready" and room.attempt == 2
    recorded = json.loads((rooms_dir(bot) / competition / "room.json").read_text(encoding="utf-8"))
    assert len(recorded["tabs"]) == 1 and len(recorded["documents"]) == 1
    steps = [e.details["step"] for e in await bot.audit(competition) if e.action == "competition.room_step"]
    assert steps == ["channel", "members", "folders", "strategy", "tab", "welcome"]  # nothing done twice
    assert "Samhandlingsrommet er klart." in texts_of(last_intake_card(bot))
    # The old attempt's job, run again, finds nothing to do.
    await effects.provision(ProvisionRoom(competition, 1))


async def test_a_double_tapped_approval_makes_one_competition_and_one_room(bot: Bot) -> None:
    ref = await bot.submit_valid(faggruppe=FAGGRUPPE)
    await bot.drain()
    cards = await asyncio.gather(*(bot.decide("needs_report.approve", ref) for _ in range(3)))
    assert sum("Oppretter samhandlingsrom" in texts_of(c) for c in cards) >= 1
    assert len(await bot.rows(Competition)) == 1
    assert len(await bot.rows(CompetitionRoom)) == 1
    assert len([r for r in await bot.outbox() if r.kind == ProvisionRoom.kind]) == 1
    await drain_all(bot)
    assert [p.name for p in rooms_dir(bot).iterdir()] == [f"K-{year()}-0001"]


async def test_representatives_join_when_the_approver_asks(start_bot: Any, db_url: str) -> None:
    siri = "00000000-0000-4000-8000-0000000000a4"
    bot = await start_bot(db_url, ROOMS_REPRESENTATIVES="siri.johansen@kommune.example.no")
    for user in (KARI, OLA, INGRID):
        await bot.say("hei", user=user)
    await approved(bot, note="Inviter verneombud og tillitsvalgte.")
    await drain_all(bot)
    members = {m.aad_id: m.source for m in await bot.rows(CompetitionRoomMember) if m.aad_id}
    assert members.get(siri) == "representative"


async def test_the_welcome_goes_to_the_configured_channel_in_local_mode(start_bot: Any, db_url: str) -> None:
    rooms_channel = "19:rooms-general@thread.tacv2"
    bot = await start_bot(db_url, ROOMS_CHANNEL_ID=rooms_channel)
    for user in (KARI, OLA, INGRID):
        await bot.say("hei", user=user)
    kari_before = len(bot.stub.cards(KARI_CHAT))
    _, competition = await approved(bot)
    await drain_all(bot)
    [welcome] = bot.stub.cards(rooms_channel)
    assert f"Velkommen til samhandlingsrommet for {competition}" in texts_of(welcome)
    # Kari got the approval notice, not a second welcome.
    assert not any("Velkommen til samhandlingsrommet" in texts_of(c) for c in bot.stub.cards(KARI_CHAT)[kari_before:])
    # A restart of the job after the post (before the step was recorded) does not post again.
    async with bot.store.session() as session:
        await session.execute(
            sa.update(CompetitionRoom).values(
                steps={
                    "channel": "done",
                    "members": "done",
                    "folders": "done",
                    "strategy": "done",
                    "tab": "done",
                    "welcome": "pending",
                },
                status="pending",
            )
        )
        await session.commit()
    await room_effects(bot).provision(ProvisionRoom(competition, 1))
    assert len(bot.stub.cards(rooms_channel)) == 1


async def test_the_signed_contract_brings_the_evaluation(bot: Bot) -> None:
    _, competition = await approved(bot)
    await drain_all(bot)
    [form] = await bot.say(f"kontrakt signert {competition}", user=INGRID)
    values = {key: spec.get("value", "") for key, spec in inputs_of(form).items()}
    end = datetime.strptime(values["end_date"], "%d.%m.%Y").date()
    values.update(
        external_ref="KAV-2026-0042",
        supplier_name="Transport & Co AS",
        supplier_org_no="974 760 673",
        manager="ingrid@kommune.no",
        option_notice=(end - timedelta(days=90)).strftime("%d.%m.%Y"),
    )
    [save] = [a for a in form["actions"] if a.get("verb") == "contracts.save"]
    kari_before = len(bot.stub.cards(KARI_CHAT))
    await bot.invoke("contracts.save", {**values, **save["data"]}, user=INGRID)
    await drain_all(bot)
    [evaluation] = [c for c in bot.stub.cards(KARI_CHAT)[kari_before:] if "Evaluering av" in texts_of(c)]
    assert f"Evaluering av {competition}" in texts_of(evaluation)
    assert set(inputs_of(evaluation)) == {"went_well", "to_change", "need_described", "supplier_feedback"}

    # Validated on the server: the same card comes back with her text and a message at the field.
    bad = await bot.invoke(
        "competition.evaluate", {"ref": competition, "went_well": "Godt samarbeid", "need_described": "kanskje"}
    )
    assert inputs_of(bad)["went_well"]["value"] == "Godt samarbeid"
    assert "Velg om behovet var godt beskrevet." in texts_of(bad)
    assert "Evalueringen er ikke sendt" in texts_of(bad)
    assert await bot.rows(CompetitionEvaluation) == []
    # Ola is not in the room: not found.
    other = await bot.invoke("competition.evaluate", {"ref": competition, "went_well": "x"}, user=OLA)
    assert "Jeg finner ikke noe med den referansen" in texts_of(other)

    answers = {
        "ref": competition,
        "went_well": "Godt samarbeid med faggruppen",
        "to_change": "Start markedsdialogen tidligere",
        "need_described": "partly",
        "supplier_feedback": "yes",
    }
    done = await bot.invoke("competition.evaluate", answers, user=KARI)
    assert "Takk! Svaret ditt er lagret." in texts_of(done)
    again = await bot.invoke("competition.evaluate", answers, user=KARI)
    assert "allerede lagret" in texts_of(again)
    await bot.invoke("competition.evaluate", {**answers, "went_well": "Tydelig ansvar"}, user=INGRID)
    assert len(await bot.rows(CompetitionEvaluation)) == 2
    entries = [e.action for e in await bot.audit(competition)]
    assert entries.count("competition.evaluation_answered") == 2
    assert "competition.evaluation_summarised" not in entries  # Per has not answered

    # Ingrid sends the summary now: posted in the intake channel, once.
    [summary] = await bot.say(f"evaluering {competition}", user=INGRID)
    assert "2 av 3 i rommet har svart." in texts_of(summary)
    [send] = [a for a in actions_of(summary) if a.get("verb") == "competition.evaluation_summarise"]
    intake_before = len(bot.stub.cards(INTAKE))
    await bot.invoke("competition.evaluation_summarise", send["data"], user=INGRID)
    await bot.invoke("competition.evaluation_summarise", send["data"], user=INGRID)
    await drain_all(bot)
    posted = bot.stub.cards(INTAKE)[intake_before:]
    assert len(posted) == 1
    shown = texts_of(posted[0])
    assert "Kari Nordmann: Godt samarbeid med faggruppen" in shown
    assert "Ingrid Innkjøper: Start markedsdialogen tidligere" in shown
    assert "delvis 2" in shown
    assert [e.action for e in await bot.audit(competition)].count("competition.evaluation_summarised") == 1
    refused = await bot.say(f"evaluering {competition}", user=KARI)
    assert "Godt samarbeid" not in texts_of(refused[0])


@pytest.mark.parametrize("bad_ref", ["", "K-1", "BM-2026-0001", "K-2026-0001; DROP TABLE", "x" * 5000])
async def test_hostile_refs_are_not_found(bot: Bot, bad_ref: str) -> None:
    for verb in ("competition.room_retry", "competition.evaluate", "competition.evaluation_summary"):
        card = await bot.invoke(verb, {"ref": bad_ref, "token": uuid.uuid4().hex}, user=INGRID)
        assert "Jeg finner ikke noe med den referansen" in texts_of(card), (verb, texts_of(card))
    assert [r for r in await bot.rows(OutboxItem) if r.kind.startswith("competition.")] == []
