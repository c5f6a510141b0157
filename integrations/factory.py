"""Picks the real Graph adapters when the app has credentials, the local ones otherwise.

Production (an app id and a secret or certificate): one msgraph-sdk client with an MSAL
client-credential token, shared by the directory, the innkjøper group check and the app
installer. Local mode: the Playground's users as directory, no installs, no group.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from procurement.errors import Unreachable
from procurement.ports import ArchiveStore, ChatInstaller, Directory, GroupMembership, RoomProvisioner
from procurement.records.lists import RegisterLists, Site
from settings import Settings

if TYPE_CHECKING:  # msgraph takes ~0.3-1.3 s to import: loaded only when Graph is used
    from msgraph import GraphServiceClient

    from integrations.graph_auth import AsyncMsalClientCredential
    from procurement.deviations.ports import AttachmentStore

log = logging.getLogger(__name__)


class NoGraphInstaller:
    """Local mode has no tenant to install the app in: a user we have no chat with is unreachable."""

    async def ensure_personal_chat(self, user_aad_id: str) -> str:
        raise Unreachable("local mode: no Graph to install the app with", why="not_installed")


def graph_credential(settings: Settings) -> AsyncMsalClientCredential:
    """The app's own token for Graph (the same Entra app as the bot)."""
    from integrations.graph_auth import AsyncMsalClientCredential

    return AsyncMsalClientCredential(
        settings.tenant_id,
        settings.client_id,
        client_secret=settings.client_secret,  # a SecretStr: unwrapped only where msal needs it
        certificate_thumbprint=settings.certificate_thumbprint or None,
        certificate_key_file=settings.certificate_key_file or None,
    )


def build_graph(settings: Settings) -> GraphServiceClient | None:
    """A GraphServiceClient, or None in local mode. Call inside the running event loop."""
    if settings.local_mode:
        return None
    if not settings.tenant_id or (settings.client_secret is None and not settings.certificate_key_file):
        raise SystemExit(
            "Graph needs CONNECTIONS__SERVICE_CONNECTION__SETTINGS__TENANTID and a CLIENTSECRET "
            "(or CERTTHUMBPRINT and CERTKEYFILE)"
        )
    from integrations.graph_client import build_graph_client

    return build_graph_client(graph_credential(settings), settings.graph_base_url or None)


class CatalogChatInstaller:
    """`GraphChatInstaller` that finds the app's org-catalog id from its manifest id on first use,
    so start-up does not depend on Graph and a late publication is picked up."""

    def __init__(self, client: GraphServiceClient, manifest_id: str) -> None:
        self.client = client
        self.manifest_id = manifest_id
        self._installer: ChatInstaller | None = None
        self._lock = asyncio.Lock()

    async def _get(self) -> ChatInstaller:
        from integrations.teams_apps import GraphChatInstaller, resolve_catalog_app_id

        async with self._lock:
            if self._installer is None:
                catalog_id = await resolve_catalog_app_id(self.client, self.manifest_id)
                self._installer = GraphChatInstaller(self.client, catalog_id)
            return self._installer

    async def ensure_personal_chat(self, user_aad_id: str) -> str:
        # Not published to the org catalog: `Unreachable("not_in_catalog")` from the lookup.
        installer = await self._get()
        return await installer.ensure_personal_chat(user_aad_id)


def build_chat_installer(settings: Settings, graph: GraphServiceClient | None = None) -> ChatInstaller:
    if graph is None:
        return NoGraphInstaller()
    from manifest.build import DEFAULT_TEAMS_APP_ID

    # The manifest id the package was built with (manifest/build.py uses the same default).
    manifest_id = settings.teams_app_id or DEFAULT_TEAMS_APP_ID
    return CatalogChatInstaller(graph, manifest_id)


def build_directory(settings: Settings, graph: GraphServiceClient | None = None) -> Directory:
    from integrations.directory import GraphDirectory, LocalDirectory

    if graph is not None:
        return GraphDirectory(graph)
    return LocalDirectory(settings.playground_config)


def build_group_membership(graph: GraphServiceClient | None) -> GroupMembership | None:
    from integrations.directory import GraphGroupMembership

    return GraphGroupMembership(graph) if graph is not None else None


def build_register_lists(settings: Settings, graph: GraphServiceClient | None = None) -> dict[Site, RegisterLists]:
    """One `RegisterLists` per configured SharePoint site: CSV files in local mode (both sites, so
    the split is visible), Graph for each site id given otherwise (none given: no mirror)."""
    if graph is None:
        from integrations.local_adapters import LocalListMirror

        return {
            "open": LocalListMirror(settings.data_dir),
            "restricted": LocalListMirror(settings.data_dir, "restricted"),
        }
    from integrations.sharepoint_lists import GraphListMirror

    sites: dict[Site, RegisterLists] = {}
    if settings.sharepoint_site_id:
        sites["open"] = GraphListMirror(graph, settings.sharepoint_site_id)
    if settings.sharepoint_restricted_site_id:
        sites["restricted"] = GraphListMirror(graph, settings.sharepoint_restricted_site_id)
    return sites


def build_archive_store(settings: Settings, graph: GraphServiceClient | None = None) -> ArchiveStore | None:
    """The archive library: files under DATA_DIR/archive in local mode, the SharePoint library
    `ARCHIVE_DRIVE_ID` through Graph otherwise (none given: nothing is archived)."""
    if graph is None:
        from integrations.local_adapters import LocalArchiveStore

        return LocalArchiveStore(settings.data_dir)
    if not settings.archive_drive_id:
        return None
    from integrations.sharepoint import GraphArchiveStore

    return GraphArchiveStore(graph, settings.archive_drive_id, root_folder=settings.archive_root_folder)


# A new channel's files folder can answer 404 for minutes: one run of the room job waits this
# long at most (inside the outbox's lease), and the job's deadline bounds the whole wait (15 min).
ROOM_FILES_FOLDER_WAIT = 45.0


def build_room_provisioner(settings: Settings, graph: GraphServiceClient | None = None) -> RoomProvisioner:
    """Competition rooms through Graph, or on disk under DATA_DIR/rooms in local mode."""
    if graph is None:
        from integrations.local_adapters import LocalRoomProvisioner

        return LocalRoomProvisioner(settings.data_dir)
    from integrations.teams_rooms import GraphRoomProvisioner

    return GraphRoomProvisioner(graph, files_folder_max_wait=ROOM_FILES_FOLDER_WAIT)


def build_attachment_store(settings: Settings, graph: GraphServiceClient | None = None) -> AttachmentStore:
    """Deviation reports' photos, files and notices (issue 11): the SharePoint library
    `DEVIATION_ATTACHMENT_DRIVE_ID` through Graph, else DATA_DIR/attachments/<AV-ref>/."""
    from integrations.attachments import LocalAttachmentStore, SharePointAttachmentStore

    if graph is not None and settings.deviation_attachment_drive_id:
        return SharePointAttachmentStore(
            graph, settings.deviation_attachment_drive_id, root=settings.deviation_attachment_folder
        )
    if graph is not None:
        log.warning("DEVIATION_ATTACHMENT_DRIVE_ID is not set: deviation attachments are kept under DATA_DIR")
    return LocalAttachmentStore(settings.data_dir)
