"""Ports: what the domain needs from the outside world, implemented in `integrations/`.

Every adapter raises the errors of `procurement.errors` (`TransientError`, `PermanentError`,
`Unreachable`); callers such as the outbox and the reminder worker sort by them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Person:
    aad_id: str
    name: str = ""
    email: str = ""


@dataclass(frozen=True)
class RoomInfo:
    """Where a competition's collaboration room lives.

    `web_url` is the channel's link (Teams) or a `file://` url (local mode); `drive_id` and
    `folder_id` address the channel's files folder (document library folder).
    """

    channel_id: str
    web_url: str
    drive_id: str
    folder_id: str


class GroupMembership(Protocol):
    async def is_member(self, user_aad_id: str, group_id: str) -> bool:
        """Whether the user is a member of the Entra group (transitively)."""
        ...


class ChatInstaller(Protocol):
    async def ensure_personal_chat(self, user_aad_id: str) -> str:
        """The id of the bot's personal chat with the user, installing the app for them if needed.

        Raises `Unreachable` (blocked, unknown user, app not allowed by policy),
        `TransientError` (throttled or unavailable after retries) or `PermanentError`
        (the app lacks a permission, its secret is refused).
        """
        ...


class RoomProvisioner(Protocol):
    async def create_room(
        self,
        team_id: str,
        name: str,
        description: str,
        folders: list[str],
        files: list[tuple[str, bytes]],
    ) -> RoomInfo:
        """Create (or reuse, by name) a standard channel with the given folders and files.

        Idempotent: a second call with the same name reuses the channel, keeps existing
        folders and replaces the files. `name` goes through `channel_display_name` first
        (a no-op for a valid name); folder paths may be nested (``"Evaluering/Notater"``).
        """
        ...


class ListMirror(Protocol):
    async def upsert_item(self, list_name: str, key: str, fields: dict[str, object]) -> str:
        """Create or update the list item whose key column equals `key`; returns the item id."""
        ...


class ArchiveStore(Protocol):
    async def upload(self, folder: str, filename: str, content: bytes, metadata: dict[str, str]) -> str:
        """Store a document in the archive library under `folder` with metadata; returns its url."""
        ...


class Directory(Protocol):
    async def resolve(self, email_or_id: str) -> Person | None: ...


# -- channel names ------------------------------------------------------------------------

CHANNEL_NAME_MAX = 50
CHANNEL_NAME_FALLBACK = "Konkurranse"
_CHANNEL_FORBIDDEN = re.compile(r"[~#%&*{}+/\\:<>?|'\",]")
_CHANNEL_TRIM = " ._\t"


def channel_display_name(text: str) -> str:
    """A Teams channel name made from free text.

    At most 50 characters, none of ``~ # % & * { } + / \\ : < > ? | ' " ,``, no control
    characters, no leading or trailing dots, underscores or spaces; never empty
    (falls back to "Konkurranse").
    """
    cleaned = _CHANNEL_FORBIDDEN.sub(" ", text or "")
    cleaned = "".join(ch if ch.isprintable() else " " for ch in cleaned)
    cleaned = re.sub(r"\s+", " ", cleaned).strip(_CHANNEL_TRIM)
    cleaned = cleaned[:CHANNEL_NAME_MAX].strip(_CHANNEL_TRIM)
    return cleaned or CHANNEL_NAME_FALLBACK
