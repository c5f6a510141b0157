"""Local mode (no tenant): the ports implemented with files under the data directory.

- `LocalChatInstaller`: there is no tenant to install the app in, so a user without a stored
  conversation is unreachable (`Unreachable`, "not_installed").
- `LocalRoomProvisioner`: ``<data>/rooms/<channel name>/`` with the folders and documents, and
  ``room.json`` recording what Graph would hold.
- `LocalListMirror`: ``<data>/lists/<list>.json``, items upserted by key.
- `LocalArchiveStore`: ``<data>/archive/<folder>/<file>`` plus ``<file>.metadata.json``.

Names from users become single safe path segments (no ``..``, separators or control
characters), and every path is checked to stay under the data directory. Files are written
atomically (temporary file + rename) in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from procurement.errors import PermanentError, Unreachable
from procurement.ports import (
    MembershipType,
    MembersResult,
    RoomChannel,
    RoomFile,
    RoomFolder,
    RoomMember,
    RoomTab,
    channel_display_name,
)

T = TypeVar("T")
LOCAL_DRIVE = "local-rooms"

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')


def safe_segment(text: str, fallback: str = "_") -> str:
    """One path segment from free text: no separators, no ``..``, no control characters."""
    cleaned = _UNSAFE.sub("-", str(text or "")).strip().strip(".").strip()
    return cleaned[:120] or fallback


def _inside(root: Path, *segments: str) -> Path:
    path = root.joinpath(*segments).resolve()
    if path != root and root not in path.parents:
        raise PermanentError(f"path escapes the data directory: {path}")
    return path


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str).encode("utf-8")


class LocalChatInstaller:
    """Without Graph the app can't be installed for anyone: always `Unreachable`."""

    async def ensure_personal_chat(self, user_aad_id: str) -> str:
        raise Unreachable("local mode: no Graph to install the app with", why="not_installed")


class LocalRoomProvisioner:
    """The room on disk: ``<data>/rooms/<channel name>/`` holds the folders and documents, and
    ``room.json`` what Graph would hold (channel name, membership type, members with roles,
    folders, documents, tabs, and the steps done), so local mode shows the whole room.

    Idempotent like the Graph adapter: a repeated step finds what the first one made.
    """

    ROOM_FILE = "room.json"

    def __init__(self, data_dir: str | Path) -> None:
        self.root = Path(data_dir).resolve() / "rooms"
        self._lock = asyncio.Lock()

    # -- room.json ---------------------------------------------------------------------------

    def _room_dir(self, segment: str) -> Path:
        return _inside(self.root, safe_segment(segment, "rom"))

    def read_room(self, channel: RoomChannel | str) -> dict[str, Any]:
        """What room.json holds for a channel (or a channel name); empty when there is none."""
        name = channel.display_name if isinstance(channel, RoomChannel) else channel
        path = self._room_dir(name) / self.ROOM_FILE
        return dict(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else {}

    async def _update(self, name: str, change: Callable[[dict[str, Any], Path], T]) -> T:
        def run() -> T:
            room = self._room_dir(name)
            room.mkdir(parents=True, exist_ok=True)
            path = room / self.ROOM_FILE
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
            result = change(data, room)
            _write_atomic(path, _json_bytes(data))
            return result

        async with self._lock:  # one writer of room.json at a time
            return await asyncio.to_thread(run)

    @staticmethod
    def _step(data: dict[str, Any], step: str) -> None:
        steps = data.setdefault("steps", [])
        if step not in steps:
            steps.append(step)

    # -- the steps ---------------------------------------------------------------------------

    async def ensure_channel(
        self,
        team_id: str,
        name: str,
        description: str,
        owner_aad_id: str,
        membership_type: MembershipType = "private",
    ) -> RoomChannel:
        name = channel_display_name(name)

        def change(data: dict[str, Any], room: Path) -> RoomChannel:
            if not data:
                data.update(
                    {
                        "channelName": name,
                        "teamId": team_id,
                        "description": description,
                        "membershipType": membership_type,
                        "members": [{"aadId": owner_aad_id.lower(), "role": "owner"}]
                        if membership_type == "private"
                        else [],
                        "folders": [],
                        "documents": [],
                        "tabs": [],
                        "createdDateTime": datetime.now(UTC).isoformat(),
                    }
                )
            elif data.get("membershipType") != membership_type:
                raise PermanentError(f"room {name!r} exists as {data.get('membershipType')}, not {membership_type}")
            self._step(data, "channel")
            return RoomChannel(
                team_id=team_id,
                channel_id=f"local:{room.name}",
                display_name=name,
                membership_type=membership_type,
                web_url=room.as_uri(),
            )

        return await self._update(name, change)

    async def ensure_members(self, channel: RoomChannel, members: Sequence[RoomMember]) -> MembersResult:
        def change(data: dict[str, Any], room: Path) -> MembersResult:
            known = {m["aadId"]: m for m in data.setdefault("members", [])}
            added: list[str] = []
            present: list[str] = []
            for member in members:
                key = member.aad_id.strip().lower()
                if not key or key in added or key in present:
                    continue
                if key in known:
                    if member.role == "owner":
                        known[key]["role"] = "owner"
                    present.append(key)
                else:
                    known[key] = {"aadId": key, "role": member.role}
                    data["members"].append(known[key])
                    added.append(key)
            self._step(data, "members")
            return MembersResult(tuple(added), tuple(present), ())

        return await self._update(channel.display_name, change)

    async def files_folder(self, channel: RoomChannel) -> RoomFolder:
        room = self._room_dir(channel.display_name)
        if not room.is_dir():
            raise PermanentError(f"room {channel.display_name!r} does not exist")
        return RoomFolder(drive_id=LOCAL_DRIVE, item_id=room.name, name=channel.display_name, web_url=room.as_uri())

    def _folder_path(self, folder: RoomFolder) -> Path:
        return _inside(self.root, *[safe_segment(p) for p in folder.item_id.split("/") if p])

    async def ensure_folders(self, parent: RoomFolder, names: Sequence[str]) -> tuple[RoomFolder, ...]:
        base = self._folder_path(parent)
        room_name = parent.item_id.split("/")[0]

        def change(data: dict[str, Any], room: Path) -> tuple[RoomFolder, ...]:
            result = []
            for raw in names:
                segment = safe_segment(raw, "Mappe")
                path = _inside(base, segment)
                if path.exists() and not path.is_dir():
                    raise PermanentError(f"{segment!r} exists as a file, not a folder")
                path.mkdir(parents=True, exist_ok=True)
                relative = path.relative_to(self.root).as_posix()
                if relative.count("/") == 1 and segment not in data.setdefault("folders", []):
                    data["folders"].append(segment)
                result.append(RoomFolder(LOCAL_DRIVE, relative, segment, path.as_uri()))
            self._step(data, "folders")
            return tuple(result)

        return await self._update(room_name, change)

    async def upload_file(self, folder: RoomFolder, name: str, content: bytes, replace: bool = False) -> RoomFile:
        directory = self._folder_path(folder)
        room_name = folder.item_id.split("/")[0]

        def change(data: dict[str, Any], room: Path) -> RoomFile:
            segment = safe_segment(name, "Dokument")
            path = _inside(directory, segment)
            if path.is_dir():
                raise PermanentError(f"{segment!r} exists as a folder, not a file")
            if replace or not path.exists():
                _write_atomic(path, content)
            relative = path.relative_to(self.root).as_posix()
            document = path.relative_to(room).as_posix()
            if document not in data.setdefault("documents", []):
                data["documents"].append(document)
            self._step(data, "document")
            return RoomFile(
                drive_id=LOCAL_DRIVE,
                item_id=relative,
                name=segment,
                web_url=path.as_uri(),
                folder_web_url=folder.web_url,
                source_doc_id=str(uuid.uuid5(uuid.NAMESPACE_URL, path.as_uri())).upper(),
            )

        return await self._update(room_name, change)

    async def ensure_tab(self, channel: RoomChannel, file: RoomFile, display_name: str) -> RoomTab:
        def change(data: dict[str, Any], room: Path) -> RoomTab:
            tabs = data.setdefault("tabs", [])
            tab = next((t for t in tabs if t["displayName"].casefold() == display_name.casefold()), None)
            if tab is None:
                tab = {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{channel.channel_id}/{display_name}")),
                    "displayName": display_name,
                    "app": "word",
                    "document": file.item_id.split("/", 1)[-1],
                    "entityId": file.source_doc_id,
                }
                tabs.append(tab)
            self._step(data, "tab")
            return RoomTab(tab_id=tab["id"], display_name=tab["displayName"], web_url=file.web_url)

        return await self._update(channel.display_name, change)


class LocalListMirror:
    def __init__(self, data_dir: str | Path) -> None:
        self.root = Path(data_dir).resolve() / "lists"
        self._lock = asyncio.Lock()

    async def upsert_item(self, list_name: str, key: str, fields: dict[str, object]) -> str:
        async with self._lock:
            return await asyncio.to_thread(self._upsert, list_name, key, fields)

    def _upsert(self, list_name: str, key: str, fields: dict[str, object]) -> str:
        path = _inside(self.root, safe_segment(list_name, "list") + ".json")
        data: dict[str, Any] = {"next_id": 1, "items": []}
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
        now = datetime.now(UTC).isoformat()
        values = json.loads(_json_bytes(fields))  # plain JSON values (dates as text)
        for item in data["items"]:
            if item["key"] == key:
                item["fields"].update(values)
                item["modified"] = now
                break
        else:
            item = {
                "id": str(data["next_id"]),
                "key": key,
                "fields": values,
                "created": now,
                "modified": now,
            }
            data["next_id"] += 1
            data["items"].append(item)
        _write_atomic(path, _json_bytes(data))
        return str(item["id"])

    def read(self, list_name: str) -> list[dict[str, Any]]:
        """The stored items of a list (for tests and the local UI)."""
        path = _inside(self.root, safe_segment(list_name, "list") + ".json")
        if not path.exists():
            return []
        return list(json.loads(path.read_text(encoding="utf-8"))["items"])


class LocalArchiveStore:
    def __init__(self, data_dir: str | Path) -> None:
        self.root = Path(data_dir).resolve() / "archive"

    async def upload(self, folder: str, filename: str, content: bytes, metadata: dict[str, str]) -> str:
        return await asyncio.to_thread(self._upload, folder, filename, content, metadata)

    def _upload(self, folder: str, filename: str, content: bytes, metadata: dict[str, str]) -> str:
        segments = [safe_segment(p) for p in folder.split("/") if p.strip()]
        path = _inside(self.root, *segments, safe_segment(filename, "Dokument"))
        _write_atomic(path, content)
        _write_atomic(path.with_name(path.name + ".metadata.json"), _json_bytes(dict(metadata)))
        return path.as_uri()
