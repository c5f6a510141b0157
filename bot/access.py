"""Who may do what: the innkjøper role, resolved from the activity's sender on the server.

The role is a configured list of AAD object ids (`PROCUREMENT_USER_IDS`, what local mode
uses for the Playground's users) and/or membership of an Entra group
(`PROCUREMENT_GROUP_ID`), checked through Graph and cached briefly.
"""

from __future__ import annotations

import logging
import time

from procurement.ports import GroupMembership

log = logging.getLogger(__name__)


class RoleResolver:
    def __init__(
        self,
        user_ids: frozenset[str] = frozenset(),
        group_id: str = "",
        groups: GroupMembership | None = None,
        cache_seconds: float = 300.0,
    ) -> None:
        self.user_ids = frozenset(u.lower() for u in user_ids)
        self.group_id = group_id
        self.groups = groups
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, bool]] = {}

    async def is_procurement(self, aad_id: str) -> bool:
        if not aad_id:
            return False
        aad_id = aad_id.lower()
        if aad_id in self.user_ids:
            return True
        if not (self.group_id and self.groups):
            return False
        hit = self._cache.get(aad_id)
        now = time.monotonic()
        if hit and now - hit[0] < self.cache_seconds:
            return hit[1]
        try:
            member = await self.groups.is_member(aad_id, self.group_id)
        except Exception:
            # Fail closed: without an answer from Graph nobody gets the role.
            log.exception("group membership check failed for %s", aad_id)
            return False
        self._cache[aad_id] = (now, member)
        return member
