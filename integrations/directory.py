"""Finding a person (AAD object id and name) from an e-mail address.

With a tenant: Graph `GET /users/{upn-or-mail}`. In local mode: the mock users of the
Agents Playground configuration (`.m365agentsplayground.yml`), so contracts imported
with those e-mails reach the Playground's users.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from procurement.ports import Person

log = logging.getLogger(__name__)


class LocalDirectory:
    def __init__(self, playground_config: Path) -> None:
        self.people: dict[str, Person] = {}
        if playground_config.exists():
            self.people = _read_playground_users(playground_config.read_text(encoding="utf-8"))

    async def resolve(self, email_or_id: str) -> Person | None:
        return self.people.get(email_or_id.strip().lower())


def _read_playground_users(text: str) -> dict[str, Person]:
    """A small reader for the Playground's YAML user entries (no YAML dependency needed)."""
    people: dict[str, Person] = {}
    entry: dict[str, str] = {}

    def flush() -> None:
        aad = entry.get("aadObjectId", "").lower()
        if aad:
            person = Person(aad_id=aad, name=entry.get("name", ""), email=entry.get("email", "").lower())
            for key in (entry.get("email", ""), entry.get("userPrincipleName", ""), aad):
                if key:
                    people[key.lower()] = person

    for line in text.splitlines():
        match = re.match(r"^\s*(-\s+)?(\w+):\s*(.*?)\s*$", line)
        if not match:
            continue
        dash, key, value = match.groups()
        if dash or key in ("currentUser", "users", "team", "personalChat", "groupChat", "bot"):
            flush()
            entry = {}
        if value:
            entry[key] = value.strip("'\"")
    flush()
    return people


class GraphDirectory:
    """`GET /users/{id | userPrincipalName}` (User.Read.All)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def resolve(self, email_or_id: str) -> Person | None:
        from integrations.graph_client import as_integration_error, error_status

        key = email_or_id.strip()
        if not key:
            return None
        try:
            user = await self.client.users.by_user_id(key).get()
        except Exception as err:
            if error_status(err) in (400, 404):  # no such person (or not a valid id/UPN)
                log.info("directory: no user %s", key)
                return None
            # Throttled, Graph down, no permission: not the same as "unknown person".
            raise as_integration_error(err, f"look up user {key}") from err
        if user is None or not user.id:
            return None
        return Person(
            aad_id=str(user.id).lower(),
            name=user.display_name or "",
            email=(user.mail or "").lower(),
        )


class GraphGroupMembership:
    """Is the user in the Entra group? `POST /users/{id}/checkMemberGroups` (transitive)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def is_member(self, user_aad_id: str, group_id: str) -> bool:
        from msgraph.generated.users.item.check_member_groups.check_member_groups_post_request_body import (
            CheckMemberGroupsPostRequestBody,
        )

        from integrations.graph_client import as_integration_error

        body = CheckMemberGroupsPostRequestBody(group_ids=[group_id])
        try:
            result = await self.client.users.by_user_id(user_aad_id).check_member_groups.post(body)
        except Exception as err:
            raise as_integration_error(err, f"check group membership of {user_aad_id}") from err
        found = result.value if result is not None and result.value else []
        return group_id.lower() in {str(g).lower() for g in found}
