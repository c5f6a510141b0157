"""Local mode (no tenant): the ports implemented with files under the data directory.

- `LocalChatInstaller`: there is no tenant to install the app in, so a user without a stored
  conversation is unreachable (`Unreachable`, "not_installed").
- `LocalRoomProvisioner`: ``<data>/rooms/<team>/<channel>/`` with the folders and files.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from procurement.errors import PermanentError, Unreachable
from procurement.ports import RoomInfo, channel_display_name

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
    def __init__(self, data_dir: str | Path) -> None:
        self.root = Path(data_dir).resolve() / "rooms"

    async def create_room(
        self,
        team_id: str,
        name: str,
        description: str,
        folders: list[str],
        files: list[tuple[str, bytes]],
    ) -> RoomInfo:
        return await asyncio.to_thread(self._create, team_id, name, description, folders, files)

    def _create(
        self,
        team_id: str,
        name: str,
        description: str,
        folders: list[str],
        files: list[tuple[str, bytes]],
    ) -> RoomInfo:
        team, channel = safe_segment(team_id, "team"), safe_segment(channel_display_name(name))
        room = _inside(self.root, team, channel)
        room.mkdir(parents=True, exist_ok=True)
        info_file = room / ".channel.json"
        if not info_file.exists():
            _write_atomic(
                info_file,
                _json_bytes(
                    {
                        "displayName": name,
                        "description": description,
                        "teamId": team_id,
                        "createdDateTime": datetime.now(UTC).isoformat(),
                    }
                ),
            )
        for folder in folders:
            _inside(room, *self._segments(folder)).mkdir(parents=True, exist_ok=True)
        for file_name, content in files:
            segments = self._segments(file_name) or ["Dokument"]
            _write_atomic(_inside(room, *segments), content)
        relative = f"{team}/{channel}"
        return RoomInfo(
            channel_id=f"local:{relative}",
            web_url=room.as_uri(),
            drive_id="local-rooms",
            folder_id=relative,
        )

    @staticmethod
    def _segments(path: str) -> list[str]:
        return [safe_segment(p) for p in path.split("/") if p.strip()]


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
