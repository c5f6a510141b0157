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
from procurement.errors import Unreachable
from procurement.ports import (
    ArchiveStore,
    ChatInstaller,
    ListMirror,
    RoomProvisioner,
    channel_display_name,
)


def from_uri(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


@pytest.mark.parametrize(
    "port, adapter",
    [
        (ChatInstaller, LocalChatInstaller),
        (RoomProvisioner, LocalRoomProvisioner),
        (ListMirror, LocalListMirror),
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


async def test_local_room_folders_and_files(tmp_path: Path) -> None:
    rooms = LocalRoomProvisioner(tmp_path)
    info = await rooms.create_room(
        "team-1",
        "Konkurranse renhold",
        "Renhold 2025",
        ["Tilbud", "Evaluering/Notater"],
        [("Prosjektplan.txt", b"plan")],
    )
    room = tmp_path / "rooms" / "team-1" / "Konkurranse renhold"
    assert (room / "Tilbud").is_dir() and (room / "Evaluering" / "Notater").is_dir()
    assert (room / "Prosjektplan.txt").read_bytes() == b"plan"
    assert json.loads((room / ".channel.json").read_text(encoding="utf-8"))["description"] == "Renhold 2025"
    assert info.web_url.startswith("file://") and from_uri(info.web_url) == room.resolve()
    assert info.channel_id == "local:team-1/Konkurranse renhold"
    assert info.folder_id == "team-1/Konkurranse renhold"

    again = await rooms.create_room("team-1", "Konkurranse renhold", "", ["Tilbud"], [("Prosjektplan.txt", b"v2")])
    assert again == info
    assert (room / "Prosjektplan.txt").read_bytes() == b"v2"


async def test_local_room_names_cannot_escape_the_data_dir(tmp_path: Path) -> None:
    rooms = LocalRoomProvisioner(tmp_path / "data")
    info = await rooms.create_room("../../etc", "..", "", ["../../x", "/abs"], [("../../evil.txt", b"x")])
    root = (tmp_path / "data" / "rooms").resolve()
    room = from_uri(info.web_url)
    assert root in room.parents
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "x").exists()
    assert all(root in p.resolve().parents for p in root.rglob("*"))


async def test_local_list_upsert(tmp_path: Path) -> None:
    mirror = LocalListMirror(tmp_path)
    first = await mirror.upsert_item("Kontrakter", "K-1", {"Leverandor": "A", "Verdi": 100})
    second = await mirror.upsert_item("Kontrakter", "K-2", {"Leverandor": "B"})
    again = await mirror.upsert_item("Kontrakter", "K-1", {"Verdi": 200})
    assert first == again == "1" and second == "2"
    stored = json.loads((tmp_path / "lists" / "Kontrakter.json").read_text(encoding="utf-8"))
    items = {i["key"]: i for i in stored["items"]}
    assert items["K-1"]["fields"] == {"Leverandor": "A", "Verdi": 200}
    assert mirror.read("Kontrakter") == stored["items"]


async def test_local_list_concurrent_upserts_keep_every_item(tmp_path: Path) -> None:
    mirror = LocalListMirror(tmp_path)
    ids = await asyncio.gather(*(mirror.upsert_item("L", f"k{i}", {"n": i}) for i in range(20)))
    assert sorted(ids, key=int) == [str(i) for i in range(1, 21)]
    assert len(mirror.read("L")) == 20


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Konkurranse: renhold/vask #2", "Konkurranse renhold vask 2"),
        ("  ..._Ny avtale_...  ", "Ny avtale"),
        ("~#%&*{}+/\\:<>?|'\",", "Konkurranse"),
        ("", "Konkurranse"),
        ("Anskaffelse av " + "x" * 60, "Anskaffelse av " + "x" * 35),
        ("Linje\nskift\ttab", "Linje skift tab"),
        ("Kjøp av «møbler» – 2025", "Kjøp av «møbler» – 2025"),
    ],
)
def test_channel_display_name(text: str, expected: str) -> None:
    assert channel_display_name(text) == expected


def test_channel_display_name_rules_hold_for_awkward_input() -> None:
    forbidden = set("~#%&*{}+/\\:<>?|'\",")
    for text in ["a" * 49 + " .x", "." * 80, "x" * 49 + "_y", "Rom " * 20, "  _a_  "]:
        name = channel_display_name(text)
        assert 0 < len(name) <= 50
        assert not forbidden & set(name)
        assert name[0] not in " ._" and name[-1] not in " ._"
