"""The supplier CSV sent the Teams way: a file consent card in the personal chat, the bytes kept
on the server until the requester accepts, then uploaded to her OneDrive and shown as a file card.

Teams answers the consent card with a `fileConsent/invoke` carrying the card's accept or decline
context (only the export's id: the content never travels in a card) and, on accept, where to
upload. The bytes wait under `DATA_DIR/exports/pending/<id>.csv` with the owner's AAD id beside
them, so an answer from anyone else gets nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import httpx
from microsoft_agents.activity import Attachment

from procurement.errors import PermanentError, TransientError

CONSENT_TYPE = "application/vnd.microsoft.teams.card.file.consent"
INFO_TYPE = "application/vnd.microsoft.teams.card.file.info"
EXPORT_ID = re.compile(r"^[0-9a-f]{32}$")


def export_id(requester_aad_id: str, supplier: str, requested_at: str) -> str:
    """The same id for a retry of the same request: the pending file is written over, not doubled."""
    return hashlib.sha256(f"{requester_aad_id}|{supplier}|{requested_at}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class PendingExport:
    owner_aad_id: str
    name: str
    lang: str
    content: bytes


class PendingExports:
    """Exports waiting for the requester's answer, on disk so a restart does not lose them."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def _paths(self, export: str) -> tuple[Path, Path]:
        if not EXPORT_ID.match(export):
            raise ValueError("not an export id")
        return self.dir / f"{export}.csv", self.dir / f"{export}.json"

    def put(self, export: str, pending: PendingExport) -> None:
        data, meta = self._paths(export)
        self.dir.mkdir(parents=True, exist_ok=True)
        for path, raw in (
            (data, pending.content),
            (meta, json.dumps({"owner": pending.owner_aad_id, "name": pending.name, "lang": pending.lang}).encode()),
        ):
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(raw)
            tmp.replace(path)

    def get(self, export: str, aad_id: str) -> PendingExport | None:
        """The export when it is there and `aad_id` asked for it; otherwise None."""
        if not EXPORT_ID.match(export) or not aad_id:
            return None
        data, meta = self._paths(export)
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            if str(info.get("owner") or "").lower() != aad_id.lower():
                return None
            return PendingExport(aad_id, str(info.get("name") or ""), str(info.get("lang") or "nb"), data.read_bytes())
        except (OSError, ValueError):
            return None

    def drop(self, export: str) -> None:
        for path in self._paths(export):
            path.unlink(missing_ok=True)


def consent_attachment(name: str, description: str, size: int, export: str) -> Attachment:
    context = {"exportId": export}
    return Attachment(
        content_type=CONSENT_TYPE,
        name=name,
        content={"description": description, "sizeInBytes": size, "acceptContext": context, "declineContext": context},
    )


def file_info_attachment(name: str, content_url: str, unique_id: str, file_type: str) -> Attachment:
    return Attachment(
        content_type=INFO_TYPE,
        name=name,
        content_url=content_url,
        content={"uniqueId": unique_id, "fileType": file_type or "csv"},
    )


def upload_allowed(url: str, *, allow_http: bool) -> bool:
    """Teams gives an https URL in the tenant's OneDrive; plain http only for local tests."""
    return url.startswith("https://") or (allow_http and url.startswith("http://"))


async def upload(http: httpx.AsyncClient, url: str, content: bytes) -> None:
    """One PUT of the whole file to the upload session Teams opened (a repeat writes the same bytes)."""
    n = len(content)
    headers = {"Content-Range": f"bytes 0-{n - 1}/{n}", "Content-Length": str(n)}
    try:
        response = await http.put(url, content=content, headers=headers)
    except httpx.HTTPError as err:
        raise TransientError(f"file upload failed: {type(err).__name__}") from err
    if response.status_code in (429, 500, 502, 503, 504):
        raise TransientError(f"file upload answered {response.status_code}", status=response.status_code)
    if response.status_code >= 400:
        raise PermanentError(f"file upload answered {response.status_code}", status=response.status_code)
