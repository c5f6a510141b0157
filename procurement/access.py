"""Who is acting, and the one shape of an access policy every workflow declares.

`Actor` is resolved by the bot from the activity's sender (never from card data) and
passed to every service command. Each workflow has one `Policy` (`<workflow>/access.py`):
a table of verb → who may do it, by role (innkjøper) and by relation to the record
(its submitter, the contract's avtaleforvalter). Services check it themselves; the same
tables are printed in `docs/access.md`, and a test compares the two.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

ConversationType = Literal["personal", "groupChat", "channel"]


class Role(StrEnum):
    """Roles held by a person, resolved on the server."""

    PROCUREMENT = "innkjoper"  # member of Innkjøpsseksjonen


class Relation(StrEnum):
    """How an actor relates to one record; decided by the service from the record."""

    SUBMITTER = "submitter"  # sent the needs report
    MANAGER = "manager"  # avtaleforvalter of the contract
    RECIPIENT = "recipient"  # the reminder was sent to them
    ROOM_MEMBER = "room_member"  # in the competition's collaboration room (owner or member)


# Who may do a verb: "anyone" (every person in the tenant), a role, or a relation.
Grant = Role | Relation | Literal["anyone"]
ANYONE: Literal["anyone"] = "anyone"


@dataclass(frozen=True)
class Actor:
    """The sender of one activity."""

    aad_id: str
    name: str
    roles: frozenset[Role] = frozenset()
    lang: str = "nb"
    conversation_type: ConversationType = "personal"
    conversation_id: str = ""
    tenant_id: str = ""
    activity_id: str = ""

    @property
    def is_procurement(self) -> bool:
        return Role.PROCUREMENT in self.roles

    @property
    def in_personal_chat(self) -> bool:
        return self.conversation_type == "personal"


# Background work (the reminder worker, imports) acts as the system.
SYSTEM = Actor(aad_id="", name="Innkjøpsassistenten")


class NotAllowed(Exception):
    """The actor may not do this. Dialogs answer with a refusal that reveals nothing.

    `personal_only`: allowed for this actor, but only in a personal chat (the dialog
    answers "fortsett i personlig chat" instead of a refusal)."""

    def __init__(self, workflow: str, verb: str, *, personal_only: bool = False) -> None:
        super().__init__(f"{workflow}.{verb} not allowed")
        self.workflow = workflow
        self.verb = verb
        self.personal_only = personal_only


class NotFound(Exception):
    """No such record *for this actor*: also raised when it exists but the actor may not
    see it, so nobody learns from a guessed reference whether it exists."""


@dataclass(frozen=True)
class Rule:
    grants: frozenset[Grant]
    # Content that is exempt from public access (prices, notes, needs): shown only in a
    # personal chat, never where others read along.
    personal_only: bool = False
    note: str = ""


def rule(*grants: Grant, personal_only: bool = False, note: str = "") -> Rule:
    return Rule(frozenset(grants), personal_only, note)


@dataclass(frozen=True)
class Policy:
    workflow: str
    rules: Mapping[str, Rule] = field(default_factory=dict)

    def granted(self, actor: Actor, verb: str, relations: Iterable[Relation] = ()) -> bool:
        """Whether the actor's roles or relations grant the verb, wherever they are."""
        grants = self.rules[verb].grants  # an unknown verb is a programming error
        if ANYONE in grants and actor.aad_id:
            return True
        if any(role in grants for role in actor.roles):
            return True
        return any(relation in grants for relation in relations)

    def allows(self, actor: Actor, verb: str, relations: Iterable[Relation] = ()) -> bool:
        """Granted, and in a conversation where the verb's content may be shown."""
        if self.rules[verb].personal_only and not actor.in_personal_chat:
            return False
        return self.granted(actor, verb, relations)

    def check(self, actor: Actor, verb: str, relations: Iterable[Relation] = ()) -> None:
        if not self.granted(actor, verb, relations):
            raise NotAllowed(self.workflow, verb)
        if self.rules[verb].personal_only and not actor.in_personal_chat:
            raise NotAllowed(self.workflow, verb, personal_only=True)


# -- the printed table (docs/access.md) ---------------------------------------------------

_COLUMNS: tuple[tuple[Grant, str], ...] = (
    (Role.PROCUREMENT, "innkjøper"),
    (Relation.MANAGER, "avtaleforvalter of the contract"),
    (Relation.SUBMITTER, "submitter of the report"),
    (Relation.RECIPIENT, "recipient of the reminder"),
    (Relation.ROOM_MEMBER, "member of the competition room"),
    (ANYONE, "anyone in the tenant"),
)


def access_table(policies: Iterable[Policy]) -> str:
    """The policies as one Markdown table: verb × who, as docs/access.md prints it."""
    head = ["verb", *(title for _, title in _COLUMNS), "personal chat only", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for policy in policies:
        for verb, granted in policy.rules.items():
            cells = [f"`{policy.workflow}.{verb}`"]
            cells += ["yes" if grant in granted.grants else "–" for grant, _ in _COLUMNS]
            cells += ["yes" if granted.personal_only else "–", granted.note]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
