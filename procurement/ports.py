"""Ports: what the domain needs from the outside world, implemented in `integrations/`.

Every adapter raises the errors of `procurement.errors` (`TransientError`, `PermanentError`,
`Unreachable`); callers such as the outbox and the reminder worker sort by them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class Person:
    aad_id: str
    name: str = ""
    email: str = ""


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


# -- collaboration rooms ---------------------------------------------------------------------

MembershipType = Literal["private", "standard"]
MemberRole = Literal["owner", "member"]
# Why a person could not be added to a room (the status card names them with the reason).
MemberFailure = Literal["unknown_user", "not_allowed", "failed"]

# The folders every competition room gets, in this order (issue 10).
ROOM_FOLDERS: tuple[str, ...] = (
    "01 Behov og konkurransestrategi",
    "02 Konkurransegrunnlag",
    "03 Spørsmål og svar",
    "04 Tilbud og evaluering",
    "05 Kontrakt",
    "06 Referater",
)


@dataclass(frozen=True)
class RoomChannel:
    """A competition's channel. Flat strings only, so a workflow can store each step's result
    (``dataclasses.asdict``) and hand it to the next step after a restart (``RoomChannel(**d)``)."""

    team_id: str
    channel_id: str
    display_name: str
    membership_type: str
    web_url: str


@dataclass(frozen=True)
class RoomMember:
    aad_id: str
    role: MemberRole = "member"


@dataclass(frozen=True)
class MemberProblem:
    aad_id: str
    why: MemberFailure


@dataclass(frozen=True)
class MembersResult:
    """`added` now, `present` before (or added by a run that crashed before recording it), and
    `failed`: the people the status card must name, because nobody is dropped silently."""

    added: tuple[str, ...] = ()
    present: tuple[str, ...] = ()
    failed: tuple[MemberProblem, ...] = ()


@dataclass(frozen=True)
class RoomFolder:
    """A folder in the room's document library; `item_id` addresses it in drive `drive_id`.
    The channel's files folder itself is one (its `name` is the channel's folder name)."""

    drive_id: str
    item_id: str
    name: str
    web_url: str


@dataclass(frozen=True)
class RoomFile:
    """A document in a room folder. `source_doc_id` is SharePoint's sourcedoc GUID (the Word
    tab's entityId); `folder_web_url` + `name` is the tab's contentUrl."""

    drive_id: str
    item_id: str
    name: str
    web_url: str
    folder_web_url: str
    source_doc_id: str


@dataclass(frozen=True)
class ListedFile:
    """A document found in a room folder (`RoomProvisioner.list_files`): where it is, its size
    and when it was last changed, for the archive picker."""

    drive_id: str
    item_id: str
    name: str
    folder: str  # the room folder it sits in ("06 Referater"), "" for the files folder itself
    size: int
    web_url: str
    modified: str = ""  # ISO time of the last change, as the drive reports it


LIST_FILES_LIMIT = 200


@dataclass(frozen=True)
class RoomTab:
    tab_id: str
    display_name: str
    web_url: str


class RoomProvisioner(Protocol):
    """A competition's collaboration room, one idempotent step at a time.

    Every step looks up before it creates, so a run repeated after a crash, a restart or a retry
    finds what an earlier run made and never makes a second channel, folder, file or tab. Each
    step raises `TransientError` (try the step again later, after `retry_after` when given) or
    `PermanentError` (a person must act: a missing permission, a bad request).
    """

    async def ensure_channel(
        self,
        team_id: str,
        name: str,
        description: str,
        owner_aad_id: str,
        membership_type: MembershipType = "private",
    ) -> RoomChannel:
        """The channel called `name` in the team, created when missing. A private channel is
        created with `owner_aad_id` as its owner; a standard channel's membership is the team's.
        `name` goes through `channel_display_name` (a no-op for a valid one); a channel of that
        name with the other membership type is a `PermanentError`, never reused."""
        ...

    async def ensure_members(self, channel: RoomChannel, members: Sequence[RoomMember]) -> MembersResult:
        """Everyone in `members` in the room with their role: added to a private channel, or to the
        team for a standard channel. Someone already there counts as done; someone who can't be
        added is reported in `failed` (never raised), the others are still added."""
        ...

    async def files_folder(self, channel: RoomChannel) -> RoomFolder:
        """The channel's files folder, waiting (bounded) while SharePoint provisions it; a
        `TransientError` when it is still not there."""
        ...

    async def ensure_folders(self, parent: RoomFolder, names: Sequence[str]) -> tuple[RoomFolder, ...]:
        """The folders `names` directly under `parent`, in the given order, created when missing."""
        ...

    async def upload_file(self, folder: RoomFolder, name: str, content: bytes, replace: bool = False) -> RoomFile:
        """The document `name` in `folder`. An existing one is kept as it is (people may have
        edited it) unless `replace`; never a second copy."""
        ...

    async def ensure_tab(self, channel: RoomChannel, file: RoomFile, display_name: str) -> RoomTab:
        """A Word tab called `display_name` in the channel opening `file`, added when missing."""
        ...

    async def list_files(self, folder: RoomFolder) -> tuple[ListedFile, ...]:
        """The documents in `folder` and in the folders directly under it (the room's
        `01 …`–`06 …`), for "arkiver" to offer; bounded (`LIST_FILES_LIMIT`)."""
        ...

    async def read_file(self, drive_id: str, item_id: str) -> bytes:
        """A listed document's bytes (to archive a copy); `PermanentError` (404) when it is gone."""
        ...


class ListMirror(Protocol):
    async def upsert_item(self, list_name: str, key: str, fields: dict[str, object]) -> str:
        """Create or update the list item whose key column equals `key`; returns the item id."""
        ...


@dataclass(frozen=True)
class ArchivedFile:
    """A file in the archive library: its id there, its address and its size."""

    item_id: str
    url: str
    size: int


ArchiveValue = str | bool | None


class ArchiveStore(Protocol):
    async def upload(self, folder: str, filename: str, content: bytes, metadata: dict[str, str]) -> str:
        """Store a document in the archive library under `folder` with metadata; returns its url."""
        ...

    async def find(self, folder: str, filename: str) -> ArchivedFile | None:
        """The file `filename` in `folder` when it is there already (looked up before any upload)."""
        ...

    async def put(self, folder: str, filename: str, content: bytes) -> ArchivedFile:
        """Upload (or replace) the file; large files through an upload session."""
        ...

    async def describe(self, file: ArchivedFile, columns: dict[str, ArchiveValue], retention_label: str) -> None:
        """Set the library's metadata columns and the retention label on the file (idempotent)."""
        ...


class Directory(Protocol):
    async def resolve(self, email_or_id: str) -> Person | None: ...


# -- channel names ------------------------------------------------------------------------

CHANNEL_NAME_MAX = 50
CHANNEL_NAME_FALLBACK = "Konkurranse"
# Teams refuses these in channel names (and "," in practice, though the docs leave it out).
_CHANNEL_FORBIDDEN = re.compile(r"[~#%&*{}+/\\:<>?|'\",]")
_CHANNEL_TRIM = " ._"


def _utf16_length(text: str) -> int:
    # Teams counts in UTF-16 code units (an emoji outside the BMP counts twice).
    return len(text.encode("utf-16-le")) // 2


def _joins_previous(text: str, i: int) -> bool:
    """Whether text[i] belongs to the grapheme of text[i - 1] (a cut before it would split one).

    Close enough to UAX #29 for names: combining marks, joiners, variation selectors, emoji
    modifiers and tags, and the second regional indicator of a flag.
    """
    ch, before = text[i], text[i - 1]
    code = ord(ch)
    if unicodedata.category(ch) in ("Mn", "Mc", "Me") or ch == "\u200d" or before == "\u200d":
        return True
    if 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF or 0xE0020 <= code <= 0xE007F:
        return True
    if 0x1F3FB <= code <= 0x1F3FF:
        return True
    if 0x1F1E6 <= code <= 0x1F1FF:
        run = 0
        j = i - 1
        while j >= 0 and 0x1F1E6 <= ord(text[j]) <= 0x1F1FF:
            run += 1
            j -= 1
        return run % 2 == 1
    return False


def _cut(text: str, limit: int) -> str:
    """At most `limit` UTF-16 units of `text`, at a word end when one fits, else at a grapheme end."""
    if _utf16_length(text) <= limit:
        return text
    end = 0
    used = 0
    while end < len(text) and used + _utf16_length(text[end]) <= limit:
        used += _utf16_length(text[end])
        end += 1
    while 0 < end < len(text) and _joins_previous(text, end):
        end -= 1  # never half a grapheme ("å" as a + ring, a flag, a family emoji)
    if end < len(text) and text[end] != " ":
        space = text.rfind(" ", 0, end)
        if space > 0:
            end = space  # never half a word, when there is a whole one to keep
    return text[:end]


def channel_display_name(text: str) -> str:
    """A Teams channel name made from free text.

    NFC-normalised, none of ``~ # % & * { } + / \\ : < > ? | ' " ,`` and no control characters
    (each becomes a space), spaces collapsed, no leading or trailing dots, underscores or spaces,
    at most 50 characters cut at a word end (a single longer word at a grapheme end); never
    empty (falls back to "Konkurranse").
    """
    cleaned = unicodedata.normalize("NFC", text or "")
    cleaned = _CHANNEL_FORBIDDEN.sub(" ", cleaned)
    cleaned = "".join(ch if ch.isprintable() or ch == "\u200d" else " " for ch in cleaned)
    cleaned = re.sub(r"\s+", " ", cleaned).strip(_CHANNEL_TRIM)
    cleaned = _cut(cleaned, CHANNEL_NAME_MAX).strip(_CHANNEL_TRIM)
    return cleaned or CHANNEL_NAME_FALLBACK


def competition_channel_name(reference: str, title: str) -> str:
    """``K-2026-0042 <title>`` as a channel name: the reference is always whole, the title is cut."""
    ref = channel_display_name(reference)
    rest = channel_display_name(f"{ref} {title}") if title and title.strip() else ref
    return rest if rest.startswith(ref) else ref
