"""Local mode (no tenant): the ports implemented with files under the data directory.

- `LocalChatInstaller`: there is no tenant to install the app in, so a user without a stored
  conversation is unreachable (`Unreachable`, "not_installed").
- `LocalRoomProvisioner`: ``<data>/rooms/<K-ref>/`` (the competition's reference the channel name
  starts with) with the folders and documents, and ``room.json`` recording what Graph would hold.
- `LocalListMirror`: the register lists as CSV, ``<data>/sharepoint/<list>.csv`` (the restricted
  site's under ``sharepoint/Begrenset/``), one row per record.
- `LocalArchiveStore`: ``<data>/archive/<case ref>/<file>`` plus ``<file>.metadata.json`` (columns,
  retention label); the sidecars (``<file stem>.arkivmelding.xml``) are files beside them.

Names from users become single safe path segments (no ``..``, separators or control
characters), and every path is checked to stay under the data directory. Files are written
atomically (temporary file + rename) in a worker thread.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from procurement.errors import PermanentError, Unreachable
from procurement.ports import (
    LIST_FILES_LIMIT,
    ArchivedFile,
    ArchiveValue,
    ListedFile,
    MembershipType,
    MembersResult,
    RoomChannel,
    RoomFile,
    RoomFolder,
    RoomMember,
    RoomTab,
    channel_display_name,
)
from procurement.records.lists import Column, ListItemState, ListSpec

T = TypeVar("T")
LOCAL_DRIVE = "local-rooms"

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
# A competition channel is called "K-2026-0042 <title>": its room on disk is named by the reference.
_ROOM_REF = re.compile(r"^\s*(K-\d{4}-\d{4,})(?=\s|$)")


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
    """The room on disk: ``<data>/rooms/<K-ref>/`` holds the folders and documents, and
    ``room.json`` what Graph would hold (channel name, membership type, members with roles,
    folders, the document, the tab, and the steps done), so local mode shows the whole room.
    A channel name that does not start with a K-ref gets a folder of its own name.

    Idempotent like the Graph adapter: a repeated step finds what the first one made.
    """

    ROOM_FILE = "room.json"

    def __init__(self, data_dir: str | Path) -> None:
        self.root = Path(data_dir).resolve() / "rooms"
        self._lock = asyncio.Lock()

    # -- room.json ---------------------------------------------------------------------------

    def _room_dir(self, name: str) -> Path:
        found = _ROOM_REF.match(name or "")
        return _inside(self.root, found.group(1) if found else safe_segment(name, "rom"))

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
            data.setdefault("document", segment)
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
            data.setdefault("tab", tab["displayName"])
            self._step(data, "tab")
            return RoomTab(tab_id=tab["id"], display_name=tab["displayName"], web_url=file.web_url)

        return await self._update(channel.display_name, change)

    # -- listing and reading (the archive's "arkiver") ------------------------------------------

    async def list_files(self, folder: RoomFolder) -> tuple[ListedFile, ...]:
        base = self._folder_path(folder)

        def scan() -> tuple[ListedFile, ...]:
            found: list[ListedFile] = []
            if not base.is_dir():
                return ()
            entries = sorted(base.iterdir(), key=lambda p: p.name)
            # The files folder's own documents, then those of each folder directly under it.
            for sub, files in [(None, entries)] + [
                (e, sorted(e.iterdir(), key=lambda p: p.name)) for e in entries if e.is_dir()
            ]:
                for path in files:
                    if path.is_file() and path.name != self.ROOM_FILE and len(found) < LIST_FILES_LIMIT:
                        found.append(
                            ListedFile(
                                drive_id=LOCAL_DRIVE,
                                item_id=path.relative_to(self.root).as_posix(),
                                name=path.name,
                                folder=sub.name if sub is not None else "",
                                size=path.stat().st_size,
                                web_url=path.as_uri(),
                                modified=datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(),
                            )
                        )
            return tuple(found)

        return await asyncio.to_thread(scan)

    async def read_file(self, drive_id: str, item_id: str) -> bytes:
        path = _inside(self.root, *[safe_segment(p) for p in item_id.split("/") if p])
        if not path.is_file():
            raise PermanentError(f"room file {item_id!r} is gone", status=404)
        return await asyncio.to_thread(path.read_bytes)


class LocalListMirror:
    """`RegisterLists` on disk: one CSV file per list, ``<data>/sharepoint/<list title>.csv`` for the
    open site and ``<data>/sharepoint/Begrenset/<list title>.csv`` for the restricted one.

    One row per record, updated in place; the header is ``ID`` and the columns' Norwegian display
    names in the configured order (a column added to the configuration is added to the file; a
    column no longer configured is kept, as SharePoint keeps it). UTF-8 with a byte order mark and
    ``;`` between fields, as a Norwegian Excel opens it. Values as the list holds them: dates
    ``2027-01-31``, times in UTC, ``Ja``/``Nei``, choice labels."""

    RESTRICTED_FOLDER = "Begrenset"
    DELIMITER = ";"

    def __init__(self, data_dir: str | Path, site: str = "open") -> None:
        root = Path(data_dir).resolve() / "sharepoint"
        self.root = root / self.RESTRICTED_FOLDER if site == "restricted" else root
        self._lock = asyncio.Lock()

    def path(self, title: str) -> Path:
        return _inside(self.root, safe_segment(title, "Liste") + ".csv")

    # -- the file ----------------------------------------------------------------------------------

    def _load(self, title: str) -> tuple[list[str], list[dict[str, str]]]:
        path = self.path(title)
        if not path.exists():
            return [], []
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, delimiter=self.DELIMITER)
            rows = [{k: v or "" for k, v in row.items() if k is not None} for row in reader]
            return list(reader.fieldnames or []), rows

    def _save(self, title: str, header: list[str], rows: list[dict[str, str]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=header, delimiter=self.DELIMITER, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows({k: row.get(k, "") for k in header} for row in rows)
        _write_atomic(self.path(title), buffer.getvalue().encode("utf-8-sig"))

    @staticmethod
    def _header(spec: ListSpec, current: list[str]) -> list[str]:
        wanted = ["ID", *(c.display for c in spec.columns)]
        return wanted + [h for h in current if h not in wanted]

    @staticmethod
    def _text(column: Column, value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "Ja" if value else "Nei"
        if column.type == "date":
            return str(value)[:10]
        return str(value)

    @staticmethod
    def _state(spec: ListSpec, row: dict[str, str]) -> ListItemState:
        return ListItemState(row.get("ID", ""), {c.name: row.get(c.display, "") for c in spec.columns})

    async def _run(self, work: Callable[[], T]) -> T:
        async with self._lock:  # one writer of the files at a time
            return await asyncio.to_thread(work)

    # -- RegisterLists -------------------------------------------------------------------------------

    async def ensure_list(self, spec: ListSpec) -> None:
        def run() -> None:
            header, rows = self._load(spec.title)
            wanted = self._header(spec, header)
            if wanted != header:
                self._save(spec.title, wanted, rows)

        await self._run(run)

    async def get_item(self, spec: ListSpec, item_id: str) -> ListItemState | None:
        def run() -> ListItemState | None:
            _, rows = self._load(spec.title)
            return next((self._state(spec, r) for r in rows if r.get("ID") == item_id), None)

        return await self._run(run)

    async def find_item(self, spec: ListSpec, key: str) -> ListItemState | None:
        display = spec.key_column.display

        def run() -> ListItemState | None:
            _, rows = self._load(spec.title)
            return next((self._state(spec, r) for r in rows if r.get(display) == key), None)

        return await self._run(run)

    async def create_item(self, spec: ListSpec, fields: Mapping[str, object]) -> str:
        def run() -> str:
            header, rows = self._load(spec.title)
            header = self._header(spec, header)
            item_id = str(max((int(r["ID"]) for r in rows if r.get("ID", "").isdigit()), default=0) + 1)
            row = {"ID": item_id}
            row.update({c.display: self._text(c, fields.get(c.name)) for c in spec.columns})
            rows.append(row)
            self._save(spec.title, header, rows)
            return item_id

        return await self._run(run)

    async def update_item(self, spec: ListSpec, item_id: str, fields: Mapping[str, object]) -> bool:
        def run() -> bool:
            header, rows = self._load(spec.title)
            row = next((r for r in rows if r.get("ID") == item_id), None)
            if row is None:
                return False
            row.update({c.display: self._text(c, fields[c.name]) for c in spec.columns if c.name in fields})
            self._save(spec.title, self._header(spec, header), rows)
            return True

        return await self._run(run)

    async def all_items(self, spec: ListSpec) -> list[ListItemState]:
        def run() -> list[ListItemState]:
            return [self._state(spec, r) for r in self._load(spec.title)[1]]

        return await self._run(run)

    def read(self, title: str) -> list[dict[str, str]]:
        """The rows of a list's CSV by header (for tests and the local UI)."""
        return self._load(title)[1]


class LocalArchiveStore:
    """The archive library on disk: ``<data>/archive/<case ref>/<file>`` with, for each file, its
    library columns and retention label in ``<file>.metadata.json`` (what SharePoint would hold).
    The archive workflow writes each document's ``arkivmelding`` sidecar next to its PDF."""

    METADATA_SUFFIX = ".metadata.json"

    def __init__(self, data_dir: str | Path) -> None:
        self.root = Path(data_dir).resolve() / "archive"

    def _path(self, folder: str, filename: str) -> Path:
        segments = [safe_segment(p) for p in folder.split("/") if p.strip()]
        return _inside(self.root, *segments, safe_segment(filename, "Dokument"))

    async def upload(self, folder: str, filename: str, content: bytes, metadata: dict[str, str]) -> str:
        return await asyncio.to_thread(self._upload, folder, filename, content, metadata)

    def _upload(self, folder: str, filename: str, content: bytes, metadata: dict[str, str]) -> str:
        path = self._path(folder, filename)
        _write_atomic(path, content)
        _write_atomic(path.with_name(path.name + self.METADATA_SUFFIX), _json_bytes(dict(metadata)))
        return path.as_uri()

    async def find(self, folder: str, filename: str) -> ArchivedFile | None:
        path = self._path(folder, filename)
        if not path.is_file():
            return None
        return ArchivedFile(path.relative_to(self.root).as_posix(), path.as_uri(), path.stat().st_size)

    async def put(self, folder: str, filename: str, content: bytes) -> ArchivedFile:
        path = self._path(folder, filename)
        await asyncio.to_thread(_write_atomic, path, content)
        return ArchivedFile(path.relative_to(self.root).as_posix(), path.as_uri(), len(content))

    async def describe(self, file: ArchivedFile, columns: dict[str, ArchiveValue], retention_label: str) -> None:
        path = _inside(self.root, *[safe_segment(p) for p in file.item_id.split("/") if p])
        if not path.is_file():
            raise PermanentError(f"archive file {file.item_id!r} is gone", status=404)
        data = {"columns": dict(columns), "retentionLabel": retention_label}
        await asyncio.to_thread(_write_atomic, path.with_name(path.name + self.METADATA_SUFFIX), _json_bytes(data))

    def read_metadata(self, folder: str, filename: str) -> dict[str, Any]:
        """What `describe` stored for a file (for tests and the local UI); empty when nothing."""
        path = self._path(folder, filename)
        meta = path.with_name(path.name + self.METADATA_SUFFIX)
        return dict(json.loads(meta.read_text(encoding="utf-8"))) if meta.is_file() else {}
