"""The SharePoint registers: every record change reaches its list item through the outbox, with the
real msgraph-sdk against the Graph-shaped server (lists and typed columns created, items created
and updated, a lost id found by reference, injected 429, 503, slow answers and dropped
connections), on SQLite and PostgreSQL; the re-sync and its report; the local CSV twin; the
command. The chaos test is in `test_record_lists_chaos.py`."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from msgraph import GraphServiceClient

import app as app_module
from integrations import sharepoint_lists
from integrations.graph_auth import StaticTokenCredential
from integrations.graph_client import build_graph_client
from integrations.local_adapters import LocalListMirror
from integrations.sharepoint_lists import GraphListMirror
from procurement.access import SYSTEM, Actor, Role
from procurement.errors import PermanentError, TransientError
from procurement.needs.rules import load_rules
from procurement.needs.service import NeedsReports
from procurement.records.lists import SITES, ListConfig, RegisterLists, Site, load_list_config
from procurement.records.mirror import MirrorRecord, RecordMirror
from procurement.store.database import Store
from procurement.store.outbox import OutboxWorker
from procurement.store.tables import Contract, ListItem, OutboxItem
from tests.graph_server import DROP, PASS, GraphTestServer, SpList
from tests.integration.bot_harness import today, valid_inputs

CONFIG = load_list_config()
KARI = Actor(aad_id="aad-kari", name="Kari Nordmann", activity_id="a:1")
INGRID = Actor(aad_id="aad-ingrid", name="Ingrid Innkjøper", roles=frozenset({Role.PROCUREMENT}), activity_id="a:2")


@pytest.fixture
async def graph() -> AsyncIterator[GraphTestServer]:
    async with GraphTestServer() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=1.0) as client:
        yield client


@pytest.fixture
async def client(graph: GraphTestServer, http: httpx.AsyncClient) -> GraphServiceClient:
    return build_graph_client(
        StaticTokenCredential(graph.token), base_url=graph.base_url, httpx_client=http, retry_delay=0
    )


class Sites:
    def __init__(self, graph: GraphTestServer) -> None:
        self.graph = graph
        self.ids: dict[Site, str] = {site: graph.add_site() for site in SITES}

    def splist(self, site: Site, title: str) -> SpList:
        lists = self.graph.sites[self.ids[site]]
        return next(sp for sp in lists.values() if sp.display_name == title)

    def items(self, site: Site, title: str) -> list[dict[str, Any]]:
        return list(self.splist(site, title).items.values())

    def by_ref(self, site: Site, title: str) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for item in self.items(site, title):
            found.setdefault(item["InnkjopRef"], []).append(item)
        return found


@pytest.fixture
def sites(graph: GraphTestServer) -> Sites:
    return Sites(graph)


def graph_mirror(
    store: Store, client: GraphServiceClient, sites: Sites, config: ListConfig = CONFIG, **kwargs: Any
) -> RecordMirror:
    lists: dict[Site, RegisterLists] = {site: GraphListMirror(client, sites.ids[site]) for site in SITES}
    options: dict[str, Any] = {"busy_retry": 0.05, "settle": 0.2}
    options.update(kwargs)
    mirror = RecordMirror(store, config, lists, **options)
    store.audit_hooks.append(mirror.audit_hook)
    return mirror


async def save_contract(
    store: Store, ref: str, *, title: str = "Renhold", value: int = 1_000_000, **extra: Any
) -> None:
    """A contract created or changed as the register does it: the row and its audit entry."""
    async with store.unit_of_work(SYSTEM) as uow:
        row = await uow.session.scalar(sa.select(Contract).where(Contract.external_ref == ref))
        outcome = "updated"
        if row is None:
            outcome = "created"
            row = Contract(
                external_ref=ref,
                supplier_name="Renhold AS",
                title=title,
                category="services",
                start_date=date(2026, 1, 1),
                end_date=date(2028, 12, 31),
            )
            uow.session.add(row)
        row.title = title
        row.value_nok = value
        for key, v in extra.items():
            setattr(row, key, v)
        uow.audit(f"contract.{outcome}", "contract", ref, {})


async def drain(store: Store, mirror: RecordMirror, rounds: int = 200) -> list[OutboxItem]:
    worker = OutboxWorker(store, mirror.handlers(), base_backoff=0.01, max_backoff=0.05)
    for _ in range(rounds):
        await worker.run_once()
        async with store.session() as session:
            rows = list(await session.scalars(sa.select(OutboxItem).where(OutboxItem.kind == MirrorRecord.kind)))
        if all(r.status != "pending" for r in rows):
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError("outbox not drained")


# -- lists and columns --------------------------------------------------------------------------


async def test_lists_are_created_with_typed_norwegian_columns(
    store: Store, client: GraphServiceClient, sites: Sites, graph: GraphTestServer
) -> None:
    mirror = graph_mirror(store, client, sites)
    await mirror.sync()
    for site in SITES:
        titles = {sp.display_name for sp in graph.sites[sites.ids[site]].values()}
        assert titles == {"Behovsmeldinger", "Konkurranser", "Kontrakter", "Avvik"}
    created = graph.requests_matching("POST", r"/sites/[^/]+/lists$")
    assert len(created) == 8
    body = next(r.json() for r in created if r.json()["displayName"] == "Kontrakter")
    assert body["list"] == {"template": "genericList"}
    columns = {c["name"]: c for c in body["columns"]}
    assert columns["InnkjopRef"]["indexed"] is True and columns["InnkjopRef"]["displayName"] == "Referanse"
    assert columns["Leverandor"]["displayName"] == "Leverandør" and columns["Leverandor"]["text"]["maxLength"] == 255
    assert columns["Sluttdato"]["dateTime"]["format"] == "dateOnly"
    assert columns["Endret"]["dateTime"]["format"] == "dateTime"
    assert columns["Kategori"]["choice"]["choices"] == ["Varer", "Tjenester", "Bygg og anlegg"]
    assert "Title" not in columns  # SharePoint's own column
    open_columns = set(sites.splist("open", "Kontrakter").columns or {})
    restricted_columns = set(sites.splist("restricted", "Kontrakter").columns or {})
    assert "Kontraktsverdi" in restricted_columns and "Kontraktsverdi" not in open_columns
    assert "InterneNotater" in restricted_columns and "InterneNotater" not in open_columns
    assert "Beskrivelse" not in set(sites.splist("open", "Avvik").columns or {})


async def test_missing_columns_are_added_and_an_unindexed_key_is_indexed(
    store: Store, client: GraphServiceClient, sites: Sites, graph: GraphTestServer
) -> None:
    # A list someone made by hand: the reference column without its index, two columns missing.
    list_id = graph.add_list(sites.ids["open"], "Kontrakter")
    sp = graph.sites[sites.ids["open"]][list_id]
    sp.columns = {
        "Title": {"id": "t", "name": "Title", "displayName": "Title", "indexed": False, "text": {}},
        "InnkjopRef": {"id": "r", "name": "InnkjopRef", "displayName": "Ref", "indexed": False, "text": {}},
    }
    lists = GraphListMirror(client, sites.ids["open"])
    spec = CONFIG.lists["contract"].for_site("open")
    await lists.ensure_list(spec)
    assert set(sp.columns) == {c.name for c in spec.columns}
    assert "InnkjopRef" in sp.indexed
    assert not graph.requests_matching("POST", r"/lists$")  # found, not made again
    posted = [r.json()["name"] for r in graph.requests_matching("POST", r"/columns$")]
    assert sorted(posted) == sorted(c.name for c in spec.columns if c.name not in ("Title", "InnkjopRef"))
    await lists.ensure_list(spec)  # nothing more to do
    assert len(graph.requests_matching("POST", r"/columns$")) == len(posted)


async def test_no_permission_on_the_site_is_permanent(
    store: Store, client: GraphServiceClient, sites: Sites, graph: GraphTestServer
) -> None:
    mirror = graph_mirror(store, client, sites)
    graph.fail_next("GET", r"/lists/Kontrakter$", 403, times=1)
    with pytest.raises(PermanentError) as caught:
        await mirror.mirror("contract", "KAV-1")
    assert caught.value.status == 403


# -- changes through the outbox -----------------------------------------------------------------


async def test_every_change_reaches_its_item_on_both_sites(
    store: Store, client: GraphServiceClient, sites: Sites
) -> None:
    mirror = graph_mirror(store, client, sites)
    await save_contract(store, "KAV-2026-1", title="Renhold skoler", value=1_200_000, internal_notes="Forhandlet pris")
    await save_contract(store, "KAV-2026-1", title="Renhold skoler og barnehager", value=1_300_000)
    await save_contract(store, "KAV-2026-2", title="Snøbrøyting")
    rows = await drain(store, mirror)
    assert {r.status for r in rows} == {"done"} and len(rows) == 3  # one effect per change
    for site in SITES:
        items = sites.by_ref(site, "Kontrakter")
        assert {ref: len(found) for ref, found in items.items()} == {"KAV-2026-1": 1, "KAV-2026-2": 1}
        first = items["KAV-2026-1"][0]
        assert first["Title"] == "Renhold skoler og barnehager"
        assert first["Leverandor"] == "Renhold AS" and first["Kategori"] == "Tjenester"
        assert first["Sluttdato"] == "2028-12-31T00:00:00Z"
        if site == "restricted":
            assert first["Kontraktsverdi"] == 1_300_000 and first["InterneNotater"] == "Forhandlet pris"
        else:
            assert "Kontraktsverdi" not in first and "InterneNotater" not in first
    async with store.session() as session:
        kept = list(await session.scalars(sa.select(ListItem)))
    assert len(kept) == 4 and all(k.item_id and k.lease_owner is None for k in kept)


async def test_the_needs_report_workflow_is_mirrored_without_knowing(
    store: Store, client: GraphServiceClient, sites: Sites
) -> None:
    mirror = graph_mirror(store, client, sites)
    needs = NeedsReports(store, load_rules())
    submitted = await needs.submit(KARI, "token-1", valid_inputs(), today())
    assert submitted.report is not None
    ref = submitted.report.ref
    await drain(store, mirror)
    [item] = sites.items("open", "Behovsmeldinger")
    assert item["InnkjopRef"] == ref and item["InnkjopStatus"] == "Venter på behandling"
    assert item["Tjenesteomrade"] == "Helse og mestring" and item["Innmelder"] == "Kari Nordmann"
    assert "EstimertVerdi" not in item
    await needs.decide(INGRID, ref, "approve", "Godkjent, prioritert", today())
    await drain(store, mirror)
    [item] = sites.items("open", "Behovsmeldinger")
    assert item["InnkjopStatus"] == "Godkjent" and item["VurdertAv"] == "Ingrid Innkjøper"
    [restricted] = sites.items("restricted", "Behovsmeldinger")
    assert restricted["EstimertVerdi"] == 1_300_000 and restricted["Vurderingsnotat"] == "Godkjent, prioritert"
    [competition] = sites.items("open", "Konkurranser")
    assert competition["BehovsmeldingRef"] == ref and competition["InnkjopStatus"] == "Planlagt"
    assert competition["InnkjopRef"] == item["KonkurranseRef"]


async def test_a_lost_item_id_is_found_by_reference(
    store: Store, client: GraphServiceClient, sites: Sites, graph: GraphTestServer
) -> None:
    mirror = graph_mirror(store, client, sites)
    await save_contract(store, "KAV-9", title="A")
    await drain(store, mirror)
    async with store.session() as session:  # as after a crash between the create and storing its id
        await session.execute(sa.update(ListItem).values(item_id=None, fingerprint=""))
    await save_contract(store, "KAV-9", title="B")
    await drain(store, mirror)
    for site in SITES:
        [item] = sites.items(site, "Kontrakter")
        assert item["Title"] == "B"
    searches = graph.requests_matching("GET", r"/items$")
    assert searches and all(r.query["$filter"] == "fields/InnkjopRef eq 'KAV-9'" for r in searches)
    assert len(graph.requests_matching("POST", r"/items$")) == 2  # one per site, ever


async def test_an_item_deleted_in_sharepoint_is_made_again(
    store: Store, client: GraphServiceClient, sites: Sites
) -> None:
    mirror = graph_mirror(store, client, sites)
    await save_contract(store, "KAV-3", title="A")
    await drain(store, mirror)
    sites.splist("open", "Kontrakter").items.clear()
    await save_contract(store, "KAV-3", title="B")
    await drain(store, mirror)
    [item] = sites.items("open", "Kontrakter")
    assert item["Title"] == "B"


async def test_a_create_answered_with_503_after_it_was_made_is_not_repeated(
    store: Store, client: GraphServiceClient, sites: Sites, graph: GraphTestServer
) -> None:
    """SharePoint made the item, but the answer was a 503 (or never came): kiota would retry a 503,
    and a retry makes a second item, so the create goes out once and the next attempt finds it."""
    mirror = graph_mirror(store, client, sites)
    graph.fail_next("POST", r"/items$", 503, commit=True, times=1)
    graph.fail_next("POST", r"/items$", DROP, commit=True, times=1)
    await save_contract(store, "KAV-5", title="A")
    rows = await drain(store, mirror)
    assert [r.status for r in rows] == ["done"]
    for site in SITES:
        assert {ref: len(v) for ref, v in sites.by_ref(site, "Kontrakter").items()} == {"KAV-5": 1}
    assert len(graph.requests_matching("POST", r"/items$")) == 2


async def test_throttling_and_outages_are_waited_out(
    store: Store, client: GraphServiceClient, sites: Sites, graph: GraphTestServer
) -> None:
    mirror = graph_mirror(store, client, sites)
    await save_contract(store, "KAV-6", title="A")
    await drain(store, mirror)
    # An update throttled (kiota waits the Retry-After), then 503s past kiota's retries, then a
    # dropped connection and an answer slower than the client's timeout: every one is retried.
    graph.fail_next("PATCH", r"/fields$", 429, {"Retry-After": "0.2"}, times=1)
    graph.fail_next("PATCH", r"/fields$", 503, times=4)
    graph.fail_next("PATCH", r"/fields$", DROP, times=1)
    graph.fail_next("PATCH", r"/fields$", PASS, delay=1.5, times=1)
    await save_contract(store, "KAV-6", title="B")
    rows = await drain(store, mirror)
    assert {r.status for r in rows} == {"done"}
    for site in SITES:
        [item] = sites.items(site, "Kontrakter")
        assert item["Title"] == "B"
    statuses = [r.status for r in graph.requests_matching("PATCH", r"/fields$")]
    assert 429 in statuses and 503 in statuses
    waited = [r for r in graph.requests_matching("PATCH", r"/fields$")]
    throttled = next(i for i, r in enumerate(waited) if r.status == 429)
    assert waited[throttled + 1].time - waited[throttled].time >= 0.2  # Retry-After honoured


async def test_persistent_throttling_is_transient_with_retry_after(
    store: Store, client: GraphServiceClient, sites: Sites, graph: GraphTestServer
) -> None:
    mirror = graph_mirror(store, client, sites)
    await mirror.sync()
    await save_contract(store, "KAV-7")
    graph.fail_next("GET", r"/items$", 429, {"Retry-After": "0.01"}, times=10)
    with pytest.raises(TransientError) as caught:
        await mirror.mirror("contract", "KAV-7")
    assert caught.value.retry_after == pytest.approx(0.01)
    async with store.session() as session:
        row = await session.scalar(sa.select(ListItem).where(ListItem.ref == "KAV-7"))
    assert row is not None and row.lease_owner is None  # the lease is free again


async def test_two_workers_on_one_record_take_turns(store: Store, client: GraphServiceClient, sites: Sites) -> None:
    mirror = graph_mirror(store, client, sites, busy_retry=0.05)
    await save_contract(store, "KAV-8", title="A")
    results = await asyncio.gather(
        *(mirror.mirror_site("open", "contract", "KAV-8") for _ in range(5)), return_exceptions=True
    )
    busy = [r for r in results if isinstance(r, TransientError)]
    assert "created" in results and len(busy) >= 1
    assert {ref: len(v) for ref, v in sites.by_ref("open", "Kontrakter").items()} == {"KAV-8": 1}


# -- re-sync ------------------------------------------------------------------------------------


async def test_sync_writes_what_differs_and_reports_it(
    store: Store, client: GraphServiceClient, sites: Sites, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = graph_mirror(store, client, sites)
    for i in range(1, 6):
        await save_contract(store, f"KAV-{i}", title=f"Avtale {i}")
    await drain(store, mirror)
    # An outage: changes whose effects never ran, an item edited by hand, one deleted, one foreign.
    async with store.session() as session:
        await session.execute(sa.delete(OutboxItem))
        await session.execute(sa.update(Contract).where(Contract.external_ref == "KAV-2").values(title="Ny tittel"))
    await save_contract(store, "KAV-6", title="Avtale 6")
    async with store.session() as session:
        await session.execute(sa.delete(OutboxItem))
    open_list = sites.splist("open", "Kontrakter")
    by_ref = {item["InnkjopRef"]: item_id for item_id, item in open_list.items.items()}
    open_list.items[by_ref["KAV-3"]]["Leverandor"] = "Endret for hånd"
    del open_list.items[by_ref["KAV-4"]]
    open_list.items["999"] = {"InnkjopRef": "KAV-FREMMED", "Title": "x", "_created": "", "_modified": "", "_version": 1}

    report = await mirror.sync(["contract"])
    [opened, restricted] = report.lists
    assert (opened.site, sorted(opened.created), sorted(opened.updated), opened.unchanged) == (
        "open",
        ["KAV-4", "KAV-6"],
        ["KAV-2", "KAV-3"],
        2,
    )
    assert opened.unknown == ["KAV-FREMMED"]
    assert (sorted(restricted.created), sorted(restricted.updated), restricted.unchanged) == (["KAV-6"], ["KAV-2"], 4)
    assert sites.by_ref("open", "Kontrakter")["KAV-3"][0]["Leverandor"] == "Renhold AS"
    lines = report.lines()
    assert lines[0].startswith("Kontrakter (åpent område): 2 opprettet, 2 oppdatert, 2 uendret — ")
    assert lines[-1].startswith("Totalt: 3 opprettet, 3 oppdatert, 6 uendret")
    again = await mirror.sync(["contract"])
    assert again.totals() == (0, 0, 12)


async def test_sync_reads_long_lists_page_by_page(
    store: Store, client: GraphServiceClient, sites: Sites, graph: GraphTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sharepoint_lists, "PAGE_SIZE", 50)
    mirror = graph_mirror(store, client, sites)
    async with store.unit_of_work(SYSTEM) as uow:
        for i in range(120):
            uow.session.add(
                Contract(
                    external_ref=f"KAV-{i:04d}",
                    supplier_name="A",
                    title=f"T{i}",
                    category="goods",
                    start_date=date(2026, 1, 1),
                    end_date=date(2027, 1, 1),
                )
            )
    store.audit_hooks.clear()
    first = await mirror.sync(["contract"])
    assert first.totals() == (240, 0, 0)
    again = await mirror.sync(["contract"])
    assert again.totals() == (0, 0, 240)
    pages = [r for r in graph.requests_matching("GET", r"/items$") if "$top" in r.query]
    assert len(pages) == 2 * (1 + 3)  # two sites: the empty list, then 120 items in pages of 50
    assert all(r.query["$top"] == "50" for r in pages)


# -- local mode ---------------------------------------------------------------------------------


async def test_local_mode_writes_one_csv_row_per_record_in_place(store: Store, tmp_path: Path) -> None:
    lists: dict[Site, RegisterLists] = {site: LocalListMirror(tmp_path, site) for site in SITES}
    mirror = RecordMirror(store, CONFIG, lists, busy_retry=0.05)
    store.audit_hooks.append(mirror.audit_hook)
    await save_contract(store, "KAV-1", title="Renhold", value=1_300_000, internal_notes="Intern; merknad")
    await save_contract(store, "KAV-2", title="Brøyting")
    await save_contract(store, "KAV-1", title="Renhold, skoler", value=1_400_000)
    await drain(store, mirror)
    path = tmp_path / "sharepoint" / "Kontrakter.csv"
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads the Norwegian letters
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert [r["Referanse"] for r in rows] == ["KAV-1", "KAV-2"]
    assert rows[0]["Tittel"] == "Renhold, skoler" and rows[0]["Leverandør"] == "Renhold AS"
    assert rows[0]["Kategori"] == "Tjenester" and rows[0]["Sluttdato"] == "2028-12-31"
    assert "Kontraktsverdi (NOK eks. mva.)" not in rows[0]
    restricted = LocalListMirror(tmp_path, "restricted").read("Kontrakter")
    assert restricted[0]["Kontraktsverdi (NOK eks. mva.)"] == "1400000"
    assert restricted[0]["Interne notater"] == "Intern; merknad"
    assert (await mirror.sync(["contract"])).totals() == (0, 0, 4)


async def test_the_sync_command_prints_what_differed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'innkjop.db'}"
    monkeypatch.setenv("LOCAL_MODE", "true")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", url)
    store = Store(url)
    try:
        await store.migrate()
        await save_contract(store, "KAV-1", title="Renhold")  # no hook: as if the worker never ran
    finally:
        await store.close()
    code = await asyncio.to_thread(app_module.sync_sharepoint, ["contract"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Kontrakter (åpent område): 1 opprettet, 0 oppdatert, 0 uendret — KAV-1" in out
    assert "Totalt: 2 opprettet, 0 oppdatert, 0 uendret" in out
    assert (tmp_path / "sharepoint" / "Kontrakter.csv").exists()
    code = await asyncio.to_thread(app_module.sync_sharepoint, ["contract"])
    assert code == 0 and "Totalt: 0 opprettet, 0 oppdatert, 2 uendret" in capsys.readouterr().out
    assert await asyncio.to_thread(app_module.sync_sharepoint, ["kontrakter"]) == 2
    assert "ukjent liste" in capsys.readouterr().err


async def test_the_runtime_mirrors_in_local_mode(make_settings: Any, tmp_path: Path, db_url: str) -> None:
    runtime = await app_module.build_runtime(make_settings(DATABASE_URL=db_url, SHAREPOINT_MIRROR="true"), graph=None)
    try:
        assert runtime.records is not None and runtime.records.enabled
        assert runtime.records.audit_hook in runtime.store.audit_hooks
        await save_contract(runtime.store, "KAV-1", title="Renhold")
        while await runtime.outbox.run_once():
            pass
        assert LocalListMirror(tmp_path).read("Kontrakter")[0]["Tittel"] == "Renhold"
    finally:
        await runtime.close()


async def test_without_a_site_nothing_is_mirrored(
    make_settings: Any, graph: GraphTestServer, client: GraphServiceClient
) -> None:
    settings = make_settings(SHAREPOINT_MIRROR="true")
    runtime = await app_module.build_runtime(settings, graph=client)
    try:
        assert runtime.records is not None and not runtime.records.enabled
        assert runtime.store.audit_hooks == []
    finally:
        runtime.graph = None  # the test's client, closed by its fixture
        await runtime.close()
