"""Composition root: settings → store → adapters → bot → aiohttp app. `python app.py` serves."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from microsoft_agents.activity import load_configuration_from_env
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.aiohttp import CloudAdapter

from bot.access import RoleResolver
from bot.agent import ProcurementAgent, send_friendly_error
from bot.archive_effects import ArchiveEffects
from bot.conversations import People
from bot.delivery_effects import DeliveryEffects
from bot.deviation_effects import DeviationEffects
from bot.effects import Effects, ReminderCardSource
from bot.proactive import ProactiveSender
from bot.reminder_worker import ReminderWorker
from bot.room_effects import RoomEffects
from bot.routes import build_router
from bot.server import build_web_app
from bot.storage import SqlStorage
from dialogs.services import Services
from integrations.factory import (
    build_attachment_store,
    build_chat_installer,
    build_directory,
    build_graph,
    build_group_membership,
    build_room_provisioner,
)
from procurement.competitions.service import Competitions
from procurement.contracts.service import Contracts
from procurement.delivery.effects import AlertDeadLetter
from procurement.delivery.service import Delivery
from procurement.deviations.service import Deviations
from procurement.errors import IntegrationError
from procurement.needs.rules import load_rules
from procurement.needs.service import NeedsReports
from procurement.ports import ChatInstaller, Directory, GroupMembership, RoomProvisioner
from procurement.records.mirror import RecordMirror
from procurement.reminders.service import Reminders
from procurement.store.database import Store
from procurement.store.outbox import OutboxWorker
from settings import Settings, async_database_url, load_settings

log = logging.getLogger("innkjop")

if TYPE_CHECKING:
    from msgraph import GraphServiceClient


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Everything `build_app` made, for tests and for shutdown."""

    settings: Settings
    store: Store
    services: Services
    agent: ProcurementAgent
    adapter: CloudAdapter
    connection_manager: MsalConnectionManager
    sender: ProactiveSender
    outbox: OutboxWorker
    reminder_worker: ReminderWorker
    graph: GraphServiceClient | None = None  # None in local mode
    records: RecordMirror | None = None  # the SharePoint registers (issue 12)
    background: list[asyncio.Task[Any]] = field(default_factory=list)

    async def close(self) -> None:
        from integrations.graph_client import close_graph_client

        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        if self.graph is not None:
            await close_graph_client(self.graph)
        await self.store.close()


async def build_runtime(
    settings: Settings,
    *,
    graph: GraphServiceClient | Literal["from_settings"] | None = "from_settings",
    directory: Directory | None = None,
    group_membership: GroupMembership | None = None,
    installer: ChatInstaller | None = None,
    clock: Callable[[], datetime] | None = None,
    rooms: RoomProvisioner | None = None,
) -> Runtime:
    """Build everything from settings. Every outside collaborator can be passed in (tests
    give the Graph-shaped server's client, fakes at the edges, a fixed clock); what is not
    given is built from the settings (Graph in production, local adapters in local mode)."""
    store = Store(settings.effective_database_url)
    await store.migrate()
    sdk_config = load_configuration_from_env(settings.sdk_connection_env())
    connection_manager = MsalConnectionManager(**sdk_config)
    adapter = CloudAdapter(connection_manager=connection_manager)
    adapter.on_turn_error = send_friendly_error  # never the SDK's default (it shows exception text)
    people = People(store)
    if graph == "from_settings":
        graph = build_graph(settings)
    directory = directory or build_directory(settings, graph)
    now = clock or _utcnow
    contracts = Contracts(store, now, working_hours=settings.reminder_working_hours, directory=directory)
    services = Services(
        store=store,
        people=people,
        needs=NeedsReports(store, load_rules()),
        contracts=contracts,
        reminders=Reminders(store, contracts, working_hours=settings.reminder_working_hours),
        directory=directory,
        default_language=settings.default_language,
        people_picker=not settings.local_mode,
        procurement_user_ids=tuple(sorted(settings.procurement_user_ids)),
        clock=now,
        delivery=Delivery(store, now),
        competition_rooms=Competitions(store, clock=now),
        deviation_reports=Deviations(store, now, follow_up_channel_id=settings.followup_channel_id),
        attachment_downloader=build_attachment_downloader(settings, connection_manager),
    )
    roles = RoleResolver(
        settings.procurement_user_ids, settings.procurement_group_id, group_membership or build_group_membership(graph)
    )
    sender = ProactiveSender(
        adapter,
        people,
        app_id=settings.client_id,
        local_mode=settings.local_mode,
        installer=installer or build_chat_installer(settings, graph),
    )
    effects = Effects(services, sender, intake_channel_id=settings.intake_channel_id)
    room_effects = build_room_effects(settings, services, sender, rooms or build_room_provisioner(settings, graph))
    records = build_record_mirror(settings, store, graph)
    archive_effects = build_archive(settings, store, graph, services, sender)
    delivery_effects = DeliveryEffects(services, sender, followup_channel_id=settings.followup_channel_id)
    deviation_effects = DeviationEffects(
        services,
        sender,
        follow_up_channel_id=settings.followup_channel_id,
        attachment_store=build_attachment_store(settings, graph),
        export_dir=settings.data_dir / "exports",
        teams_files=not settings.local_mode,
    )
    outbox = OutboxWorker(
        store,
        {
            **effects.handlers(),
            **records.handlers(),
            **archive_effects.handlers(),
            **delivery_effects.handlers(),
            **room_effects.handlers(),
            **deviation_effects.handlers(),
        },
        # Dead letters (issue 12): after the configured attempts, alerted once in the follow-up channel.
        max_attempts=settings.outbox_max_attempts,
        base_backoff=settings.outbox_base_backoff_seconds,
        max_backoff=settings.outbox_max_backoff_seconds,
        dead_letter_alert=AlertDeadLetter,
    )
    agent = ProcurementAgent(
        services=services,
        router=build_router(),
        roles=roles,
        storage=SqlStorage(store),
        connection_manager=connection_manager,
        tenant_filter=settings.tenant_filter,
        bot_app_id=settings.client_id,
        on_turn_done=outbox.wakeup.set,
    )
    reminder_worker = ReminderWorker(
        services.reminders, sender, ReminderCardSource(services), followup_channel_id=settings.followup_channel_id
    )
    return Runtime(
        settings=settings,
        store=store,
        services=services,
        agent=agent,
        adapter=adapter,
        connection_manager=connection_manager,
        sender=sender,
        outbox=outbox,
        reminder_worker=reminder_worker,
        graph=graph,
        records=records,
    )


def build_attachment_downloader(settings: Settings, connection_manager: MsalConnectionManager) -> Any:
    """Photos and files sent in a chat (issue 11): a file's pre-authenticated downloadUrl as it is,
    an inline image with the bot's token; local mode fetches from the Connector stub over http."""
    from integrations.attachments import TeamsAttachmentDownloader, bot_token_source

    token = None if settings.local_mode else bot_token_source(connection_manager)
    return TeamsAttachmentDownloader(token, allow_http=settings.local_mode)


def build_room_effects(
    settings: Settings, services: Services, sender: ProactiveSender, rooms: RoomProvisioner
) -> RoomEffects:
    """Competition rooms (issue 10): the provisioning job and its cards (docs/competition-rooms.md)."""
    return RoomEffects(
        services,
        sender,
        rooms,
        team_id=settings.effective_rooms_team_id,
        membership_type=settings.rooms_membership_type,
        welcome_channel_id=settings.rooms_channel_id,
        bot_in_private_channels=settings.rooms_bot_in_private_channels,
        representatives=settings.rooms_representatives,
        intake_channel_id=settings.intake_channel_id,
        clock=services.clock,
    )


def build_archive(
    settings: Settings, store: Store, graph: GraphServiceClient | None, services: Services, sender: ProactiveSender
) -> ArchiveEffects:
    """The archive (issue 12): documents archived from audit entries and by "arkiver", into the
    SharePoint archive library (`ARCHIVE_DRIVE_ID`) or DATA_DIR/archive in local mode. Without a
    library the hook is not registered and "arkiver" says the archive is not set up."""
    from integrations.factory import build_archive_store
    from procurement.records.archive import archive_hook
    from procurement.records.archive_metadata import ArchiveConfig
    from procurement.records.archive_service import Archive

    store_adapter = build_archive_store(settings, graph)
    if graph is None:
        from integrations.local_adapters import LocalRoomProvisioner

        provisioner: Any = LocalRoomProvisioner(settings.data_dir)
    else:
        from integrations.teams_rooms import GraphRoomProvisioner

        provisioner = GraphRoomProvisioner(graph)
    config = ArchiveConfig(
        retention_label=settings.archive_retention_label,
        system=settings.archive_system,
        administrative_unit=settings.archive_unit,
    )
    competitions = getattr(services, "competitions", None)  # the competition rooms (issue 10)
    archive = Archive(
        store,
        store_adapter if store_adapter is not None else _NoArchive(),
        config,
        needs=services.needs,
        competitions=competitions,
        deviations=getattr(services, "deviations", None),  # the deviation reports (issue 11)
        rooms=competitions,
        provisioner=provisioner,
        max_bytes=settings.archive_max_mb * 1024 * 1024,
    )
    if store_adapter is not None:
        store.audit_hooks.append(archive_hook)
        services.archive = archive
    else:
        log.warning("ARCHIVE_DRIVE_ID is not set: documents are not archived")
    return ArchiveEffects(archive, sender)


class _NoArchive:
    """No archive library configured: nothing is queued for it, so nothing reaches this."""

    async def _refuse(self, *args: Any) -> Any:
        from procurement.errors import PermanentError

        raise PermanentError("no archive library configured (ARCHIVE_DRIVE_ID)")

    upload = find = put = describe = _refuse


def build_record_mirror(settings: Settings, store: Store, graph: GraphServiceClient | None) -> RecordMirror:
    """The SharePoint registers' mirror, subscribed to the store's audit entries when a site is
    configured (always in local mode: CSV files under DATA_DIR/sharepoint)."""
    from integrations.factory import build_register_lists
    from procurement.records.lists import load_list_config

    sites = build_register_lists(settings, graph) if settings.sharepoint_mirror else {}
    mirror = RecordMirror(store, load_list_config(settings.sharepoint_lists_file or None), sites)
    if mirror.enabled:
        store.audit_hooks.append(mirror.audit_hook)
        if "restricted" not in mirror.sites:
            log.warning("SHAREPOINT_RESTRICTED_SITE_ID is not set: restricted list columns are written nowhere")
    elif settings.sharepoint_mirror and not settings.local_mode:
        log.warning("SHAREPOINT_SITE_ID is not set: the registers are not mirrored to SharePoint")
    return mirror


# Tests and tools reach the runtime behind a running app by this key.
RUNTIME = web.AppKey("runtime", Runtime)


async def build_app(settings: Settings | None = None) -> web.Application:
    settings = settings or load_settings()
    runtime = await build_runtime(settings)
    app = build_web_app(
        agent=runtime.agent,
        adapter=runtime.adapter,
        agent_configuration=runtime.connection_manager.get_default_connection_configuration(),
        store=runtime.store,
        local_mode=settings.local_mode,
    )
    app[RUNTIME] = runtime

    async def on_startup(_app: web.Application) -> None:
        if settings.run_workers:
            runtime.background.append(
                asyncio.create_task(runtime.outbox.run_forever(settings.worker_poll_seconds), name="outbox")
            )
            runtime.background.append(
                asyncio.create_task(
                    runtime.reminder_worker.run_forever(settings.reminder_poll_seconds), name="reminders"
                )
            )

    app.on_startup.append(on_startup)

    async def on_shutdown(_app: web.Application) -> None:
        await runtime.close()

    app.on_shutdown.append(on_shutdown)
    return app


@asynccontextmanager
async def open_contract_register(database_url: str) -> AsyncIterator[Contracts]:
    """For the import command: a migrated store and the contract register on it."""
    settings = load_settings()
    store = Store(async_database_url(database_url) if database_url else settings.effective_database_url)
    graph = None
    try:
        await store.migrate()
        graph = build_graph(settings)  # managers' e-mails are looked up in Entra ID
        yield Contracts(
            store, working_hours=settings.reminder_working_hours, directory=build_directory(settings, graph)
        )
    finally:
        if graph is not None:
            from integrations.graph_client import close_graph_client

            await close_graph_client(graph)
        await store.close()


def import_contracts(argv: list[str] | None = None) -> int:
    """`innkjop-import-contracts FILE`: import a contract administration tool's export."""
    from procurement.contracts import import_cli as contract_import_cli

    return contract_import_cli.main(argv, open_store=open_contract_register)


def send_reminders_now(argv: list[str] | None = None) -> int:
    """`python app.py send-reminders-now` (`./dev reminders`): reminders due today or earlier go
    out in the running bot's next round, working hours ignored. Local mode only."""
    from procurement.reminders.due_now import release_due_reminders
    from procurement.shared.dates import format_date

    if argv:
        print("bruk (usage): python app.py send-reminders-now", file=sys.stderr)
        return 2
    settings = load_settings()
    if not settings.local_mode:
        print(
            "send-reminders-now er bare for lokal modus (LOCAL_MODE=true); i drift sendes påminnelser "
            "i arbeidstiden (local mode only: in production reminders go out in working hours).",
            file=sys.stderr,
        )
        return 2

    async def run() -> Any:
        store = Store(settings.effective_database_url)
        try:
            await store.migrate()
            return await release_due_reminders(store, datetime.now(UTC))
        finally:
            await store.close()

    due = asyncio.run(run())
    if due.ready:
        nb, en = ("påminnelse", "reminder") if due.ready == 1 else ("påminnelser", "reminders")
        print(
            f"{due.ready} {nb} sendes nå av boten som kjører (./dev run), innen "
            f"{settings.reminder_poll_seconds:g} s ({due.ready} {en} go out now from the running bot)."
        )
    else:
        print("Ingen påminnelser med forfall i dag eller tidligere venter på sending (no due reminder is waiting).")
    if due.next_due is not None:
        print(f"Neste påminnelse forfaller {format_date(due.next_due)} (next reminder due).")
    return 0


def sync_sharepoint(argv: list[str] | None = None) -> int:
    """`innkjop-sync-sharepoint` (`python app.py sync-sharepoint [LIST…]`): compare every record with
    its SharePoint list item, write what differs, and print what did. LIST: needs_report,
    competition, contract or deviation (default: all)."""
    from procurement.records.lists import ListConfigError

    args = list(sys.argv[1:] if argv is None else argv)
    if any(a.startswith("-") for a in args):
        print("bruk (usage): innkjop-sync-sharepoint [needs_report|competition|contract|deviation …]", file=sys.stderr)
        return 2
    settings = load_settings()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    async def run() -> int:
        store = Store(settings.effective_database_url)
        graph = None
        try:
            await store.migrate()
            graph = build_graph(settings)
            mirror = build_record_mirror(settings, store, graph)
            unknown = [a for a in args if a not in mirror.config.lists]
            if unknown:
                print(f"ukjent liste (unknown list): {', '.join(unknown)}", file=sys.stderr)
                return 2
            if not mirror.enabled:
                print("Ingen SharePoint-område er satt opp (SHAREPOINT_SITE_ID): ingenting å synkronisere.")
                return 2
            report = await mirror.sync(args or None)
            for line in report.lines():
                print(line)
            return 0
        finally:
            if graph is not None:
                from integrations.graph_client import close_graph_client

                await close_graph_client(graph)
            await store.close()

    try:
        return asyncio.run(run())
    except ListConfigError as err:
        print(f"listeoppsettet kan ikke brukes (list configuration): {err}", file=sys.stderr)
        return 2
    except IntegrationError as err:
        # The reason names the list and Graph's status, never a secret; a person must look.
        print(
            f"SharePoint svarte ikke som ventet, prøv igjen senere (SharePoint failed): {err.summary()}",
            file=sys.stderr,
        )
        return 1


def announce(settings: Settings) -> None:
    """The start-up log line: the mode, the address and the database (password masked)."""
    where = f"http://{settings.host}:{settings.port}/api/messages"
    if settings.local_mode:
        log.warning(
            "LOCAL MODE (LOCAL_MODE=true): anonymous requests accepted from loopback only; "
            "Graph replaced by local adapters under %s/; database %s; serving %s",
            settings.data_dir,
            settings.database_url_for_log,
            where,
        )
    else:
        log.info(
            "serving %s for app %s (JWT validation on); database %s",
            where,
            settings.client_id,
            settings.database_url_for_log,
        )


def main() -> None:
    if sys.argv[1:2] == ["import-contracts"]:
        raise SystemExit(import_contracts(sys.argv[2:]))
    if sys.argv[1:2] == ["send-reminders-now"]:
        raise SystemExit(send_reminders_now(sys.argv[2:]))
    if sys.argv[1:2] == ["sync-sharepoint"]:
        raise SystemExit(sync_sharepoint(sys.argv[2:]))
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The SDK warns on every turn without an app id; local mode has none by design.
    logging.getLogger("microsoft_agents.hosting.core.connector.client.user_token_client").setLevel(logging.ERROR)
    announce(settings)
    web.run_app(build_app(settings), host=settings.host, port=settings.port, print=None)


if __name__ == "__main__":
    main()
