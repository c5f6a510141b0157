"""What the deviation workflow needs from the outside: fetching the files a Teams message
carries, and a place to keep a report's photos and files (implemented in
`integrations/attachments.py`).

Both raise the errors of `procurement.errors`; a download that fails is not an error but a
`ReceivedFile` without data and with the HTTP status (the user is told what to do instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from procurement.deviations.model import OfferedFile, ReceivedFile


@dataclass(frozen=True)
class IncomingFile:
    """A file in a Teams message: a file download info (`downloadUrl`, pre-authenticated) or
    an inline image (`contentUrl`, which needs the bot's token)."""

    offered: OfferedFile
    url: str
    with_bot_token: bool


class AttachmentDownloader(Protocol):
    async def download(self, files: Sequence[IncomingFile]) -> list[ReceivedFile]:
        """Each file's bytes, in order; a refused or failed download gives its status (0 for a
        network error) and no data. Never reads more than the attachment limit plus one byte."""
        ...


class AttachmentStore(Protocol):
    async def store(self, ref: str, name: str, content: bytes, content_type: str) -> str:
        """Keep `content` as `name` in the report's folder `ref`; returns where (a path or a
        URL). Storing the same name again replaces it (a retried effect stores once)."""
        ...
