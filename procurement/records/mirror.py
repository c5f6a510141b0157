"""Every register record mirrored to its SharePoint list, through the outbox.

    audit entry (needs_report, competition, contract, deviation)
        └─ audit hook → MirrorRecord(entity, ref, change_id)   (same transaction as the change)
              └─ outbox → RecordMirror.perform → per site: lease → read record → upsert item

The hook learns of every change without the workflows knowing (`Store.audit_hooks`). Each
change gets its own effect (`change_id`), so none is swallowed by an earlier one's key; the
handler always writes the record's *current* values, so order and repeats do not matter.

Never a duplicate item:

- the item id is kept (`list_items`), so an update never searches;
- the `list_items` row is the record's write lease: one worker writes a record's item at a
  time (two changes of one record handled at once would race: both find nothing and both
  create, or the older values land last). A busy record is a `TransientError` with a short
  `retry_after` (the outbox does not count it as a failed attempt);
- a lost id (a crash between the create and storing its id) is found again by the record's
  reference, on the indexed key column, before anything is created; the create itself is never
  retried inside the adapter, because a retry after a lost answer makes a second item;
- the lease outlasts the Graph calls of one write (the work is cut off before the lease ends),
  so a lease is only taken over from a worker that is gone; after a failed or cancelled write
  (whose request may still land) the record waits `settle` seconds before the next writer.

`sync` re-reads every list and writes what differs (after an outage, or when someone edited a
list by hand); `innkjop-sync-sharepoint` prints its report.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import ClassVar, Literal

import sqlalchemy as sa

from procurement.errors import TransientError
from procurement.records.lists import (
    SITES,
    ListConfig,
    ListItemState,
    ListSpec,
    RegisterLists,
    Site,
    build_fields,
    differences,
)
from procurement.records.rows import record_refs, record_values
from procurement.store.database import Store
from procurement.store.effects import Effect
from procurement.store.outbox import Handlers
from procurement.store.tables import ListItem, utcnow
from procurement.store.unit_of_work import Audited

log = logging.getLogger(__name__)

Outcome = Literal["created", "updated", "unchanged", "missing"]


@dataclass(frozen=True)
class MirrorRecord(Effect):
    """Write the record's current values to its list item(s). `change_id` makes each change's
    effect its own outbox row."""

    kind: ClassVar[str] = "records.mirror"
    entity: str
    ref: str
    change_id: str


def fingerprint(fields: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class ListReport:
    """What `sync` found for one list on one site."""

    site: Site
    title: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    duplicates: list[str] = field(default_factory=list)  # refs with more than one item
    unknown: list[str] = field(default_factory=list)  # items whose ref is no record of ours

    @property
    def differed(self) -> list[str]:
        return self.created + self.updated


@dataclass
class SyncReport:
    lists: list[ListReport] = field(default_factory=list)

    def totals(self) -> tuple[int, int, int]:
        return (
            sum(len(r.created) for r in self.lists),
            sum(len(r.updated) for r in self.lists),
            sum(r.unchanged for r in self.lists),
        )

    def lines(self) -> list[str]:
        """The report in Norwegian (English in brackets), one line per list, then the totals."""
        out = []
        for r in self.lists:
            where = "begrenset område" if r.site == "restricted" else "åpent område"
            line = f"{r.title} ({where}): {len(r.created)} opprettet, {len(r.updated)} oppdatert, {r.unchanged} uendret"
            if r.differed:
                line += " — " + ", ".join(r.differed)
            out.append(line)
            if r.duplicates:
                out.append(f"  flere elementer med samme referanse (rydd for hånd): {', '.join(r.duplicates)}")
            if r.unknown:
                out.append(f"  elementer uten post i Innkjøpsassistenten (ikke endret): {', '.join(r.unknown)}")
        created, updated, unchanged = self.totals()
        out.append(
            f"Totalt: {created} opprettet, {updated} oppdatert, {unchanged} uendret "
            f"(total: {created} created, {updated} updated, {unchanged} unchanged)"
        )
        return out


class RecordMirror:
    """The records workflow's SharePoint mirror. `sites` holds one `RegisterLists` per
    configured site ("open", "restricted"); a site that is not configured gets nothing."""

    def __init__(
        self,
        store: Store,
        config: ListConfig,
        sites: Mapping[Site, RegisterLists],
        *,
        lease: timedelta = timedelta(seconds=180),
        busy_retry: float = 1.0,
        settle: float = 5.0,
    ) -> None:
        self.store = store
        self.config = config
        self.sites = {site: sites[site] for site in SITES if site in sites}
        self.lease = lease
        self.busy_retry = busy_retry
        self.settle = settle
        self._ready: set[tuple[Site, str]] = set()
        self._ready_lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.sites and self.config.lists)

    # -- the audit hook and the outbox handler ---------------------------------------------------

    def audit_hook(self, entry: Audited) -> Iterable[Effect]:
        if entry.entity in self.config.lists and entry.entity_id:
            yield MirrorRecord(entry.entity, entry.entity_id, uuid.uuid4().hex)

    def handlers(self) -> Handlers:
        return {MirrorRecord: self.perform}

    async def perform(self, effect: MirrorRecord) -> None:
        await self.mirror(effect.entity, effect.ref)

    async def mirror(self, entity: str, ref: str) -> dict[Site, Outcome]:
        """The record's current values into its item on every configured site."""
        if entity not in self.config.lists:
            return {}
        return {site: await self.mirror_site(site, entity, ref) for site in self.sites}

    # -- one item ----------------------------------------------------------------------------------

    async def _ensure(self, site: Site, spec: ListSpec) -> None:
        if (site, spec.entity) in self._ready:
            return
        async with self._ready_lock:
            if (site, spec.entity) not in self._ready:
                await self.sites[site].ensure_list(spec)
                self._ready.add((site, spec.entity))

    async def mirror_site(self, site: Site, entity: str, ref: str, *, force: bool = False) -> Outcome:
        """Under the record's lease: read it, and create or update its item on `site`.
        `force` writes even when the fields equal the last write (sync found the item differs)."""
        spec = self.config.lists[entity].for_site(site)
        lists = self.sites[site]
        await self._ensure(site, spec)
        token = uuid.uuid4().hex
        item_id, last = await self._claim(site, entity, ref, token)
        outcome: Outcome = "missing"
        written = last
        writing = False
        try:
            # Cut the work off before the lease ends: a lease must only be taken from a worker that
            # is gone, never from one still writing (it could create while we create).
            async with asyncio.timeout(self.lease.total_seconds() * 0.8):
                async with self.store.session() as session:
                    values = await record_values(session, entity, ref)
                if values is not None:
                    fields = build_fields(spec, values)
                    written = fingerprint(fields)
                    if item_id and written == last and not force:
                        outcome = "unchanged"
                    else:
                        writing = True
                        outcome, item_id = await self._write(lists, spec, ref, item_id, fields)
                        writing = False
        except BaseException as err:
            # Retried by the outbox (or a cancelled task). A write whose answer we did not get may
            # still land: the lease stays `settle` seconds, so the next writer's lookup sees it.
            hold = self.settle if writing else 0.0
            await asyncio.shield(self._release(site, entity, ref, token, item_id, last, hold=hold))
            if isinstance(err, TimeoutError):
                raise TransientError(f"writing {entity} {ref} to {site} took too long", self.busy_retry) from None
            raise
        await self._release(site, entity, ref, token, item_id, written)
        return outcome

    async def _write(
        self, lists: RegisterLists, spec: ListSpec, ref: str, item_id: str | None, fields: dict[str, object]
    ) -> tuple[Outcome, str]:
        if item_id and await lists.update_item(spec, item_id, fields):
            return "updated", item_id
        # No id, or the item was deleted in SharePoint: find it by reference before creating.
        found = await lists.find_item(spec, ref)
        if found is not None and await lists.update_item(spec, found.item_id, fields):
            return "updated", found.item_id
        return "created", await lists.create_item(spec, {k: v for k, v in fields.items() if v is not None})

    # -- the lease -------------------------------------------------------------------------------

    def _insert_missing(self, site: Site, entity: str, ref: str) -> sa.Insert:
        if self.store.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(ListItem)
        else:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(ListItem)  # type: ignore[assignment]
        values = stmt.values(site=site, entity=entity, ref=ref, fingerprint="", created_at=utcnow())
        return values.on_conflict_do_nothing(index_elements=["site", "entity", "ref"])

    async def _claim(self, site: Site, entity: str, ref: str, token: str) -> tuple[str | None, str]:
        """Take the record's lease on `site`: (its stored item id, the last write's fingerprint).
        `TransientError` while another worker holds it."""
        now = utcnow()
        async with self.store.session() as session:
            await session.execute(self._insert_missing(site, entity, ref))
            taken = (
                await session.execute(
                    sa.update(ListItem)
                    .where(
                        ListItem.site == site,
                        ListItem.entity == entity,
                        ListItem.ref == ref,
                        sa.or_(ListItem.lease_until.is_(None), ListItem.lease_until < now),
                    )
                    .values(lease_owner=token, lease_until=now + self.lease)
                    .returning(ListItem.item_id, ListItem.fingerprint)
                )
            ).first()
        if taken is None:
            raise TransientError(f"{entity} {ref} on {site} is being written by another worker", self.busy_retry)
        return taken.item_id, taken.fingerprint or ""

    async def _release(
        self, site: Site, entity: str, ref: str, token: str, item_id: str | None, written: str, *, hold: float = 0.0
    ) -> None:
        until = utcnow() + timedelta(seconds=hold) if hold > 0 else None
        async with self.store.session() as session:
            await session.execute(
                sa.update(ListItem)
                .where(
                    ListItem.site == site,
                    ListItem.entity == entity,
                    ListItem.ref == ref,
                    ListItem.lease_owner == token,
                )
                .values(lease_owner=None, lease_until=until, item_id=item_id, fingerprint=written, synced_at=utcnow())
            )

    # -- re-sync -----------------------------------------------------------------------------------

    async def sync(self, entities: Sequence[str] | None = None) -> SyncReport:
        """Compare every record with its list item on every site and write what differs."""
        report = SyncReport()
        for entity in entities or self.config.entities:
            async with self.store.session() as session:
                refs = await record_refs(session, entity)
            for site, lists in self.sites.items():
                spec = self.config.lists[entity].for_site(site)
                await self._ensure(site, spec)
                found = ListReport(site=site, title=spec.title)
                by_ref: dict[str, list[ListItemState]] = {}
                for item in await lists.all_items(spec):
                    by_ref.setdefault(str(item.fields.get(spec.key) or ""), []).append(item)
                known = set(refs)
                found.unknown = sorted(r for r in by_ref if r and r not in known)
                for ref in refs:
                    items = sorted(by_ref.get(ref, []), key=lambda i: _id_order(i.item_id))
                    if len(items) > 1:
                        found.duplicates.append(ref)
                    if items and await self._matches(spec, entity, ref, items[0]):
                        found.unchanged += 1
                        await self._remember(site, entity, ref, items[0].item_id)
                        continue
                    outcome = await self._sync_one(site, entity, ref, items[0] if items else None)
                    (found.created if outcome == "created" else found.updated).append(ref)
                report.lists.append(found)
        return report

    async def _matches(self, spec: ListSpec, entity: str, ref: str, item: ListItemState) -> bool:
        async with self.store.session() as session:
            values = await record_values(session, entity, ref)
        return values is not None and not differences(spec, build_fields(spec, values), item.fields)

    async def _sync_one(self, site: Site, entity: str, ref: str, item: ListItemState | None) -> Outcome:
        if item is not None:
            await self._remember(site, entity, ref, item.item_id)
        for _ in range(30):  # a busy record: its writer is about to finish
            try:
                return await self.mirror_site(site, entity, ref, force=True)
            except TransientError as busy:
                await asyncio.sleep(busy.retry_after or self.busy_retry)
        return await self.mirror_site(site, entity, ref, force=True)

    async def _remember(self, site: Site, entity: str, ref: str, item_id: str) -> None:
        """Keep the item id sync saw (a lost id, or a first sync of an existing list)."""
        async with self.store.session() as session:
            await session.execute(self._insert_missing(site, entity, ref))
            await session.execute(
                sa.update(ListItem)
                .where(
                    ListItem.site == site,
                    ListItem.entity == entity,
                    ListItem.ref == ref,
                    sa.or_(ListItem.item_id.is_(None), ListItem.item_id != item_id),
                    ListItem.lease_owner.is_(None),
                )
                .values(item_id=item_id, fingerprint="")
            )


def _id_order(item_id: str) -> tuple[int, str]:
    return (int(item_id), "") if item_id.isdigit() else (1 << 62, item_id)
