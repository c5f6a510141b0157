"""The local-mode adapters (files under the data directory) and the channel-name helper."""

from __future__ import annotations

import asyncio
import inspect
import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from integrations.local_adapters import (
    LocalArchiveStore,
    LocalChatInstaller,
    LocalListMirror,
    LocalRoomProvisioner,
    safe_segment,
)
from procurement.errors import PermanentError, Unreachable
from procurement.ports import (
    ROOM_FOLDERS,
    ArchiveStore,
    ChatInstaller,
    RoomMember,
    RoomProvisioner,
    RoomTab,
    competition_channel_name,
)
from procurement.records.lists import RegisterLists, load_list_config

OWNER = "00000000-0000-4000-8000-00000000000a"
KARI = "00000000-0000-4000-8000-00000000000b"


def from_uri(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


@pytest.mark.parametrize(
    "port, adapter",
    [
        (ChatInstaller, LocalChatInstaller),
        (RoomProvisioner, LocalRoomProvisioner),
        (RegisterLists, LocalListMirror),
        (ArchiveStore, LocalArchiveStore),
    ],
)
def test_local_adapters_implement_the_ports(port: type, adapter: type) -> None:
    """Every method of the port, async, with the port's parameters (mypy checks the types)."""
    methods = [name for name, value in vars(port).items() if inspect.isfunction(value) and not name.startswith("_")]
    assert methods
    for name in methods:
        ours = getattr(adapter, name, None)
        assert ours is not None and inspect.iscoroutinefunction(ours), (adapter.__name__, name)
        assert list(inspect.signature(ours).parameters) == list(inspect.signature(getattr(port, name)).parameters)


async def test_local_installer_always_unreachable() -> None:
    with pytest.raises(Unreachable) as caught:
        await LocalChatInstaller().ensure_personal_chat("00000000-0000-0000-0000-000000000001")
    assert caught.value.why == "not_installed"


async def provision_locally(rooms: LocalRoomProvisioner, title: str = "Renhold: skoler & barnehager") -> RoomTab:
    name = competition_channel_name("K-2026-0042", title)
    channel = await rooms.ensure_channel("team-1", name, "Renhold 2026", OWNER)
    result = await rooms.ensure_members(channel, [RoomMember(KARI), RoomMember(OWNER), RoomMember(KARI)])
    assert not result.failed
    root = await rooms.files_folder(channel)
    folders = await rooms.ensure_folders(root, ROOM_FOLDERS)
    document = await rooms.upload_file(folders[0], "Konkurransestrategi.docx", b"PK strategi")
    return await rooms.ensure_tab(channel, document, "Konkurransestrategi")


async def test_local_room_on_disk_with_room_json(tmp_path: Path) -> None:
    rooms = LocalRoomProvisioner(tmp_path)
    tab = await provision_locally(rooms)
    room = tmp_path / "rooms" / "K-2026-0042"  # the room's folder is named by its competition
    assert sorted(p.name for p in room.iterdir() if p.is_dir()) == list(ROOM_FOLDERS)
    assert (room / ROOM_FOLDERS[0] / "Konkurransestrategi.docx").read_bytes() == b"PK strategi"
    recorded = json.loads((room / "room.json").read_text(encoding="utf-8"))
    assert recorded["channelName"] == "K-2026-0042 Renhold skoler barnehager"
    assert recorded["membershipType"] == "private"
    assert recorded["members"] == [{"aadId": OWNER, "role": "owner"}, {"aadId": KARI, "role": "member"}]
    assert recorded["folders"] == list(ROOM_FOLDERS)
    assert recorded["documents"] == [f"{ROOM_FOLDERS[0]}/Konkurransestrategi.docx"]
    assert [t["displayName"] for t in recorded["tabs"]] == ["Konkurransestrategi"]
    assert recorded["steps"] == ["channel", "members", "folders", "document", "tab"]
    assert rooms.read_room("K-2026-0042 Renhold skoler barnehager") == recorded
    assert tab.web_url.startswith("file://")
    assert from_uri(tab.web_url) == (room / ROOM_FOLDERS[0] / "Konkurransestrategi.docx").resolve()


async def test_local_room_twice_is_the_same_room(tmp_path: Path) -> None:
    rooms = LocalRoomProvisioner(tmp_path)
    first = await provision_locally(rooms)
    document = tmp_path / "rooms" / "K-2026-0042" / ROOM_FOLDERS[0] / "Konkurransestrategi.docx"
    document.write_bytes(b"edited by the faggruppe")
    again = await provision_locally(rooms)
    assert again == first
    assert document.read_bytes() == b"edited by the faggruppe"  # kept, not overwritten
    recorded = rooms.read_room("K-2026-0042 Renhold skoler barnehager")
    assert len(recorded["tabs"]) == 1 and len(recorded["documents"]) == 1 and len(recorded["members"]) == 2
    assert len(list((tmp_path / "rooms").iterdir())) == 1
    with pytest.raises(PermanentError):  # the same room as a standard channel: refused like Graph does
        await rooms.ensure_channel("team-1", "K-2026-0042 Renhold skoler barnehager", "", OWNER, "standard")


async def test_local_room_keeps_norwegian_letters(tmp_path: Path) -> None:
    rooms = LocalRoomProvisioner(tmp_path)
    await provision_locally(rooms, "Blåbær og ærfugl til Østre skole")
    room = tmp_path / "rooms" / "K-2026-0042"
    assert (room / "03 Spørsmål og svar").is_dir()
    assert json.loads((room / "room.json").read_text(encoding="utf-8"))["channelName"].endswith("Østre skole")


async def test_local_room_names_cannot_escape_the_data_dir(tmp_path: Path) -> None:
    rooms = LocalRoomProvisioner(tmp_path / "data")
    channel = await rooms.ensure_channel("../../etc", "..", "", OWNER)
    root = await rooms.files_folder(channel)
    (folder,) = await rooms.ensure_folders(root, ["../../x"])
    await rooms.upload_file(folder, "../../evil.txt", b"x")
    base = (tmp_path / "data" / "rooms").resolve()
    assert base in from_uri(root.web_url).parents
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "x").exists()
    assert all(base in p.resolve().parents for p in base.rglob("*"))


async def test_local_list_csv_follows_the_column_config(tmp_path: Path) -> None:
    """Norwegian headers in the configured order, rows updated in place, a column added later
    appended, a column no longer configured kept (the CSV flow itself: test_record_lists.py)."""
    spec = load_list_config().lists["contract"].for_site("open")
    mirror = LocalListMirror(tmp_path)
    await mirror.ensure_list(spec)
    first = await mirror.create_item(
        spec, {"InnkjopRef": "K-1", "Title": "Renhold; skoler", "Startdato": "2026-01-01T00:00:00Z"}
    )
    second = await mirror.create_item(spec, {"InnkjopRef": "K-2", "Title": "Brøyting"})
    assert await mirror.update_item(spec, first, {"Title": "Renhold, skoler og barnehager"})
    assert not await mirror.update_item(spec, "99", {"Title": "x"})
    rows = mirror.read("Kontrakter")
    assert [r["ID"] for r in rows] == [first, second] == ["1", "2"]
    assert rows[0]["Tittel"] == "Renhold, skoler og barnehager" and rows[0]["Startdato"] == "2026-01-01"
    header = (tmp_path / "sharepoint" / "Kontrakter.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert header.split(";") == ["ID", *(c.display for c in spec.columns)]
    found = await mirror.find_item(spec, "K-2")
    assert found is not None and found.item_id == "2" and found.fields["Title"] == "Brøyting"
    wider = load_list_config().lists["contract"].for_site("restricted")
    await LocalListMirror(tmp_path).ensure_list(wider)  # the same file, more columns
    header = (tmp_path / "sharepoint" / "Kontrakter.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert header.split(";")[-1] == "Interne notater"
    await mirror.ensure_list(spec)  # the narrower set again: nothing removed
    assert "Interne notater" in mirror.read("Kontrakter")[0]


async def test_local_list_concurrent_creates_keep_every_item(tmp_path: Path) -> None:
    spec = load_list_config().lists["contract"].for_site("open")
    mirror = LocalListMirror(tmp_path)
    ids = await asyncio.gather(*(mirror.create_item(spec, {"InnkjopRef": f"k{i}"}) for i in range(20)))
    assert sorted(ids, key=int) == [str(i) for i in range(1, 21)]
    assert len(await mirror.all_items(spec)) == 20


async def test_local_archive_with_metadata(tmp_path: Path) -> None:
    archive = LocalArchiveStore(tmp_path)
    url = await archive.upload("2025/Renhold", "Protokoll.pdf", b"%PDF", {"Saksnummer": "2025/123"})
    path = tmp_path / "archive" / "2025" / "Renhold" / "Protokoll.pdf"
    assert path.read_bytes() == b"%PDF"
    assert from_uri(url) == path.resolve()
    meta = json.loads((path.parent / "Protokoll.pdf.metadata.json").read_text(encoding="utf-8"))
    assert meta == {"Saksnummer": "2025/123"}


def test_safe_segment() -> None:
    assert safe_segment("..") == "_"
    assert safe_segment("a/b\\c:d") == "a-b-c-d"
    assert safe_segment("  Konkurranse  ") == "Konkurranse"
