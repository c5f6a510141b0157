"""Proactive reach: install the bot for a user and find the personal chat with them.

Graph calls (application permission `TeamsAppInstallation.ReadWriteSelfForUser.All`):

1. ``POST /users/{id}/teamwork/installedApps`` with ``teamsApp@odata.bind`` → 201 (installed)
   or 409 (already installed; fine).
2. ``GET /users/{id}/teamwork/installedApps?$expand=teamsApp&$filter=teamsApp/id eq '{app}'``
   → the installation id.
3. ``GET /users/{id}/teamwork/installedApps/{installationId}/chat`` → the chat id.

Errors (`procurement.errors`):

- 404 → `Unreachable("unknown_user")`: no such user (or no Teams licence), or
  `Unreachable("not_in_catalog")` when Graph says the app is not in the catalog;
- 403 "Missing role permissions" (or ``Authorization_RequestDenied``) → `PermanentError`
  ("permission_missing"): the app lacks ``TeamsAppInstallation.ReadWriteSelfForUser.All``,
  which an administrator must grant; any other 403 → `Unreachable("not_allowed_by_policy")`
  (a Teams app permission policy keeps the app from this user);
- 401, or a refused token request → `PermanentError("sign_in_failed")`;
- 429/5xx are retried by kiota's retry handler (honouring `Retry-After`); still failing →
  `TransientError(retry_after=…)`.
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

from integrations.graph_client import odata_literal
from procurement.errors import PermanentError, TransientError, Unreachable

from .graph_client import (
    as_integration_error,
    describe,
    error_code,
    error_message,
    error_status,
    graph_url,
)

log = logging.getLogger(__name__)

# Graph's answers when the app itself lacks a permission (not this user's policy).
_MISSING_PERMISSION_CODES = frozenset({"Authorization_RequestDenied", "AccessDenied"})
_MISSING_PERMISSION_TEXT = "missing role permissions"


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
            raise Unreachable("empty user id", why="unknown_user")
        apps = self.client.users.by_user_id(user).teamwork.installed_apps
        await self._install(user, apps)
        installation_id = await self._find_installation(user, apps)
        if installation_id is None:
            # Installed a moment ago and not listed yet, or removed in between: try again later.
            raise TransientError(f"app installation for {user} not found yet", retry_after=5)
        try:
            chat = await apps.by_user_scope_teams_app_installation_id(installation_id).chat.get()
        except Exception as err:
            raise self._sorted(err, user, "get chat") from err
        if chat is None or not chat.id:
            raise TransientError(f"no chat for the app installation of {user} yet", retry_after=5)
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
            expand=["teamsApp"], filter=f"teamsApp/id eq '{odata_literal(self.teams_app_id)}'"
        )
        try:
            page = await apps.get(RequestConfiguration(query_parameters=query))
        except Exception as err:
            raise self._sorted(err, user, "list installed apps") from err
        for installation in page.value if page and page.value else []:
            app = installation.teams_app
            if installation.id and (app is None or app.id is None or app.id == self.teams_app_id):
                return installation.id
        return None

    def _sorted(self, err: Exception, user: str, what: str) -> Exception:
        status = error_status(err)
        detail = f"{what} for {user}: {describe(err)}"
        if status == 404:
            # The user, or (on the install) the app's catalog entry, is not there.
            if "catalog" in error_message(err).lower():
                return Unreachable(detail, why="not_in_catalog", status=404, code=error_code(err) or None)
            return Unreachable(detail, why="unknown_user", status=404, code=error_code(err) or None)
        if status == 403:
            if _missing_permission(err):
                # The app's own permission: every user would fail alike until IT grants it.
                return PermanentError(detail, status=403, code=error_code(err) or None, why="permission_missing")
            return Unreachable(detail, why="not_allowed_by_policy", status=403, code=error_code(err) or None)
        return as_integration_error(err, f"{what} for {user}")


def _missing_permission(err: Exception) -> bool:
    return error_code(err) in _MISSING_PERMISSION_CODES or _MISSING_PERMISSION_TEXT in error_message(err).lower()


async def resolve_catalog_app_id(client: GraphServiceClient, manifest_id: str) -> str:
    """The org app catalog id of the app whose manifest id (``externalId``) is `manifest_id`.

    ``GET /appCatalogs/teamsApps?$filter=externalId eq '{manifest id}'``; needs
    `AppCatalog.Read.All`. Call it once at start-up and give the result to `GraphChatInstaller`.
    """
    query = TeamsAppsRequestBuilder.TeamsAppsRequestBuilderGetQueryParameters(
        filter=f"externalId eq '{odata_literal(manifest_id)}'"
    )
    try:
        page = await client.app_catalogs.teams_apps.get(RequestConfiguration(query_parameters=query))
    except Exception as err:
        raise as_integration_error(err, f"find app {manifest_id} in the app catalog") from err
    for app in page.value if page and page.value else []:
        if app.id:
            return app.id
    raise Unreachable(f"app {manifest_id} is not in the organisation's app catalog", why="not_in_catalog")
