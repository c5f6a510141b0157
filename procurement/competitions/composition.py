"""Who is in a competition's room.

The responsible innkjøper (the approver) owns it. The faggruppe from the needs report (Teams'
people picker gives AAD object ids; typed entries are names or e-mail addresses) and the
submitting innkjøpskontakt are members. Verneombud and tillitsvalgte (the configured people) join
when the report asks for them (an entry such as "verneombud" in the faggruppe) or the approver
does. Everyone is looked up in the directory; an entry nobody answers to is kept as unresolved,
so the status card lists it instead of dropping it silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from procurement.competitions.record import MemberSource
from procurement.ports import Directory, MemberRole, Person

_SPLIT = re.compile(r"[,;\n]+")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# An entry that asks for the staff's representatives rather than naming a person.
_REPRESENTATIVES = re.compile(
    r"\b(?:hoved)?verneombud\w*|\btillitsvalgt\w*|\bsafety representative\w*|\bunion representative\w*",
    re.IGNORECASE,
)
MAX_NAME = 200


@dataclass(frozen=True)
class Candidate:
    """Someone who belongs in the room. `key` is the AAD id, or "?" and the typed entry."""

    key: str
    aad_id: str | None
    name: str
    source: MemberSource
    role: MemberRole = "member"

    @property
    def resolved(self) -> bool:
        return self.aad_id is not None


def faggruppe_entries(data: Mapping[str, Any]) -> list[str]:
    """The report's faggruppe entries as given (a list from the people picker, or typed text)."""
    raw = data.get("faggruppe")
    parts: Iterable[Any] = raw if isinstance(raw, list | tuple) else _SPLIT.split(raw) if isinstance(raw, str) else ()
    out: list[str] = []
    for part in parts:
        entry = " ".join(str(part).split())[:MAX_NAME] if isinstance(part, str) else ""
        if entry and entry not in out:
            out.append(entry)
    return out


def asks_for_representatives(entries: Sequence[str]) -> bool:
    return any(_REPRESENTATIVES.search(e) for e in entries)


def person_entries(entries: Sequence[str]) -> list[str]:
    return [e for e in entries if not _REPRESENTATIVES.search(e)]


async def _resolve(directory: Directory, entry: str) -> Person | None:
    person = await directory.resolve(entry)
    if person is None or not person.aad_id:
        return None
    return Person(aad_id=person.aad_id.lower(), name=person.name, email=person.email)


def _merge(candidates: list[Candidate], new: Candidate) -> None:
    for i, old in enumerate(candidates):
        if old.key == new.key:
            if new.role == "owner" and old.role != "owner":
                candidates[i] = Candidate(old.key, old.aad_id, old.name or new.name, old.source, "owner")
            return
    candidates.append(new)


async def compose_room(
    *,
    owner: Person,
    submitter: Person,
    data: Mapping[str, Any],
    directory: Directory,
    representatives: Sequence[str] = (),
    include_representatives: bool = False,
) -> tuple[Candidate, ...]:
    """Everyone who belongs in the room, the owner first. Raises what the directory raises when
    it is unavailable (the job tries again later): "unknown" and "unavailable" are not the same."""
    candidates: list[Candidate] = []
    _merge(candidates, Candidate(owner.aad_id.lower(), owner.aad_id.lower(), owner.name, "owner", "owner"))
    if submitter.aad_id:
        _merge(candidates, Candidate(submitter.aad_id.lower(), submitter.aad_id.lower(), submitter.name, "submitter"))
    entries = faggruppe_entries(data)
    for entry in person_entries(entries):
        person = await _resolve(directory, entry)
        if person is None:
            _merge(candidates, Candidate(f"?{entry.casefold()}"[:MAX_NAME], None, entry, "faggruppe"))
        else:
            name = person.name or ("" if _GUID.match(entry) else entry)
            _merge(candidates, Candidate(person.aad_id, person.aad_id, name, "faggruppe"))
    if include_representatives or asks_for_representatives(entries):
        for entry in representatives:
            person = await _resolve(directory, entry)
            if person is None:
                _merge(candidates, Candidate(f"?{entry.casefold()}"[:MAX_NAME], None, entry, "representative"))
            else:
                _merge(candidates, Candidate(person.aad_id, person.aad_id, person.name or entry, "representative"))
    return tuple(candidates)


def faggruppe_names(candidates: Iterable[Candidate]) -> list[str]:
    """The faggruppe as the strategy lists it: resolved names, and typed entries as they are."""
    return [c.name or c.key for c in candidates if c.source in ("faggruppe", "representative")]
