"""Ports: what the domain needs from the outside world, implemented in `integrations/`.

Errors every adapter raises (and callers such as the outbox sort):

- `UnreachableUser`: the person can't be reached (app blocked, user unknown); retrying won't help.
- `TransientIntegrationError`: a passing failure (429, 5xx after the adapter's own retries,
  a network error, a channel's files folder that is still being provisioned); try again later,
  after `retry_after` seconds when known.
- `IntegrationError`: anything else that retrying won't fix (permission missing, bad request).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol


class IntegrationError(Exception):
    """A failure of an outside system that retrying will not fix (401/403/400 and the like)."""

    def __init__(self, reason: str = "", status: int | None = None, code: str | None = None) -> None:
        super().__init__(reason or "integration failure")
        self.reason = reason
        self.status = status
        self.code = code


class UnreachableUser(Exception):
    """The person can't be reached (app blocked or removed, user unknown); retrying won't help."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason or "unreachable")
        self.reason = reason


class TransientIntegrationError(Exception):
    """A passing failure (429, 5xx after retries); try again later."""

    def __init__(self, reason: str = "", retry_after: float | None = None) -> None:
        super().__init__(reason or "transient failure")
        self.reason = reason
        self.retry_after = retry_after


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


class ChatInstaller(Protocol):
    async def ensure_personal_chat(self, user_aad_id: str) -> str:
        """The id of the bot's personal chat with the user, installing the app for them if needed.

        Raises `UnreachableUser` (blocked, unknown user, app not allowed) or
        `TransientIntegrationError` (throttled or unavailable after retries).
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
