"""Proactive reach: install the bot for a user and find the personal chat with them.

Graph calls (application permission `TeamsAppInstallation.ReadWriteSelfForUser.All`):

1. ``POST /users/{id}/teamwork/installedApps`` with ``teamsApp@odata.bind`` → 201 (installed)
   or 409 (already installed; fine).
2. ``GET /users/{id}/teamwork/installedApps?$expand=teamsApp&$filter=teamsApp/id eq '{app}'``
   → the installation id.
3. ``GET /users/{id}/teamwork/installedApps/{installationId}/chat`` → the chat id.

403/404 (user unknown, app blocked by policy, no Teams licence) → `UnreachableUser`.
429/5xx are retried by kiota's retry handler (honouring `Retry-After`); still failing →
`TransientIntegrationError(retry_after=…)`.
"""

from __future__ import annotations

import logging

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.app_catalogs.teams_apps.teams_apps_request_builder import (
    TeamsAppsRequestBuilder,
)
from msgraph.generated.models.user_scope_teams_app_installation import UserScopeTeamsAppInstallation
from msgraph.generated.users.item.teamwork.installed_apps.installed_apps_request_builder import (
    InstalledAppsRequestBuilder,
)

from procurement.ports import IntegrationError, TransientIntegrationError, UnreachableUser

from .graph_client import as_integration_error, describe, error_status, graph_url

log = logging.getLogger(__name__)

UNREACHABLE_STATUSES = frozenset({403, 404})


def _odata_literal(value: str) -> str:
    return value.replace("'", "''")


class GraphChatInstaller:
    """`ChatInstaller` over Graph. `teams_app_id` is the app's id in the org app catalog
    (``appCatalogs/teamsApps/{id}``), not the manifest id, unless the app was published with
    the manifest id as external id (then look it up once and pass the catalog id)."""

    def __init__(self, client: GraphServiceClient, teams_app_id: str) -> None:
        if not teams_app_id:
            raise ValueError("teams_app_id is required")
        self.client = client
        self.teams_app_id = teams_app_id

    async def ensure_personal_chat(self, user_aad_id: str) -> str:
        user = user_aad_id.strip()
        if not user:
            raise UnreachableUser("tom bruker-id")
        apps = self.client.users.by_user_id(user).teamwork.installed_apps
        await self._install(user, apps)
        installation_id = await self._find_installation(user, apps)
        if installation_id is None:
            # Installed a moment ago and not listed yet, or removed in between: try again later.
            raise TransientIntegrationError(f"app installation for {user} not found yet", retry_after=5)
        try:
            chat = await apps.by_user_scope_teams_app_installation_id(installation_id).chat.get()
        except Exception as err:
            raise self._sorted(err, user, "get chat") from err
        if chat is None or not chat.id:
            raise TransientIntegrationError(f"no chat for the app installation of {user} yet", retry_after=5)
        return chat.id

    async def _install(self, user: str, apps: InstalledAppsRequestBuilder) -> None:
        body = UserScopeTeamsAppInstallation(
            additional_data={
                "teamsApp@odata.bind": graph_url(self.client, f"/appCatalogs/teamsApps/{self.teams_app_id}"),
            },
        )
        try:
            await apps.post(body)
            log.info("installed the app for user %s", user)
        except Exception as err:
            if error_status(err) == 409:
                return  # already installed
            raise self._sorted(err, user, "install app") from err

    async def _find_installation(self, user: str, apps: InstalledAppsRequestBuilder) -> str | None:
        query = InstalledAppsRequestBuilder.InstalledAppsRequestBuilderGetQueryParameters(
            expand=["teamsApp"], filter=f"teamsApp/id eq '{_odata_literal(self.teams_app_id)}'"
        )
        try:
            page = await apps.get(RequestConfiguration(query_parameters=query))
        except Exception as err:
            raise self._sorted(err, user, "list installed apps") from err
        for installation in (page.value if page and page.value else []):
            app = installation.teams_app
            if installation.id and (app is None or app.id is None or app.id == self.teams_app_id):
                return installation.id
        return None

    def _sorted(self, err: Exception, user: str, what: str) -> Exception:
        if error_status(err) in UNREACHABLE_STATUSES:
            # 403 is also what a missing TeamsAppInstallation permission looks like: log it so a
            # misconfigured app does not pass silently as "every user is unreachable".
            log.warning("%s for %s refused: %s", what, user, describe(err))
            return UnreachableUser(f"{what} for {user}: {describe(err)}")
        return as_integration_error(err, f"{what} for {user}")


async def resolve_catalog_app_id(client: GraphServiceClient, manifest_id: str) -> str:
    """The org app catalog id of the app whose manifest id (``externalId``) is `manifest_id`.

    ``GET /appCatalogs/teamsApps?$filter=externalId eq '{manifest id}'``; needs
    `AppCatalog.Read.All`. Call it once at start-up and give the result to `GraphChatInstaller`.
    """
    query = TeamsAppsRequestBuilder.TeamsAppsRequestBuilderGetQueryParameters(
        filter=f"externalId eq '{_odata_literal(manifest_id)}'"
    )
    try:
        page = await client.app_catalogs.teams_apps.get(RequestConfiguration(query_parameters=query))
    except Exception as err:
        raise as_integration_error(err, f"find app {manifest_id} in the app catalog") from err
    for app in (page.value if page and page.value else []):
        if app.id:
            return app.id
    raise IntegrationError(f"app {manifest_id} is not in the organisation's app catalog", status=404)
