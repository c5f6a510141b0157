"""`./dev run --as ingrid`: the Agents Playground's configuration with another current user.

The Playground (0.2.28) always acts as the `currentUser` of the `.m365agentsplayground.yml` in
its working directory; its page has no way to switch user, and it has no flag or variable for
another file. So `./dev run --as NAME` writes a copy of the repo's yml in which NAME is the
current user (the former current user takes NAME's place among `users`, so all six people stay
in the tenant, the group chat and the team) and starts the Playground in that copy's directory.

    python tools/playground_as.py NAME OUT_DIR   # writes OUT_DIR/.m365agentsplayground.yml
    python tools/playground_as.py --list         # the names, one per line

NAME is a person's first name (`ingrid`, `kari`, …), case and accents ignored, or a full name.
An unknown name exits 2 with the list of names.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

REPO_CONFIG = Path(__file__).resolve().parent.parent / ".m365agentsplayground.yml"
CONFIG_NAME = ".m365agentsplayground.yml"

_KEY = re.compile(r"^(\s*)(-\s+)?(\w+):\s*(.*?)\s*$")
# The current user's comment says so; the note moves with the role of current user.
_TYPING = " (the user typing in the web UI)"


@dataclass
class MockPerson:
    """One person of the yml: the comment line above the entry (role, unit) and its keys."""

    comment: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.fields.get("name", "")

    @property
    def key(self) -> str:
        """The name to type after --as: the first name, lower case, without accents."""
        return fold(self.fields.get("givenName") or self.name.split(" ")[0])

    @property
    def role(self) -> str:
        """The comment's role part ("innkjøper"), or "" (the comment is "Name, role, unit")."""
        parts = [p.strip() for p in self.comment.split(",")]
        role = parts[1] if len(parts) > 1 else ""
        return role.split(" (")[0]

    def matches(self, wanted: str) -> bool:
        return fold(wanted) in (self.key, fold(self.name), fold(self.name).replace(" ", "-"))


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.strip().lower().replace("ø", "o").replace("æ", "ae"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass
class PlaygroundConfig:
    """The yml split where the people are: `head` (through the comment before currentUser),
    the current user, the other users, and `tail` (personalChat onwards)."""

    head: list[str]
    current: MockPerson
    users: list[MockPerson]
    tail: list[str]

    @property
    def people(self) -> list[MockPerson]:
        return [self.current, *self.users]


def _value(raw: str) -> str:
    return raw.strip().strip("'\"")


def parse(text: str) -> PlaygroundConfig:
    """Reads the layout of this repo's yml (no YAML library: the file's shape is ours)."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("currentUser:"))
        users_at = next(i for i, line in enumerate(lines) if line.startswith("users:"))
        end = next(i for i in range(users_at + 1, len(lines)) if lines[i] and not lines[i].startswith(" "))
    except StopIteration:
        raise ValueError(f"{CONFIG_NAME}: no currentUser/users blocks found") from None
    comment_at = start - 1 if start > 0 and lines[start - 1].startswith("#") else start
    current = MockPerson(lines[comment_at][1:].strip().removesuffix(_TYPING) if comment_at < start else "")
    for line in lines[start + 1 : users_at]:
        if m := _KEY.match(line):
            current.fields[m.group(3)] = _value(m.group(4))
    users: list[MockPerson] = []
    comment = ""
    for line in lines[users_at + 1 : end]:
        stripped = line.strip()
        if stripped.startswith("#"):
            comment = stripped[1:].strip()
            continue
        m = _KEY.match(line)
        if not m:
            continue
        if m.group(2):  # "- id: …" starts the next person
            users.append(MockPerson(comment))
            comment = ""
        if users:
            users[-1].fields[m.group(3)] = _value(m.group(4))
    return PlaygroundConfig(lines[:comment_at], current, users, lines[end:])


def _quoted(value: str) -> str:
    # Plain YAML scalars are fine for these values except ones starting with a YAML indicator.
    return f'"{value}"' if value[:1] in "&*!|>%@`{[" or ": " in value or " #" in value else value


def render(config: PlaygroundConfig) -> str:
    out = list(config.head)
    out.append(f"# {config.current.comment}{_TYPING}")
    out.append("currentUser:")
    out += [f"  {k}: {_quoted(v)}" for k, v in config.current.fields.items()]
    out.append("users:")
    for person in config.users:
        if person.comment:
            out.append(f"  # {person.comment}")
        for n, (k, v) in enumerate(person.fields.items()):
            out.append(f"  {'- ' if n == 0 else '  '}{k}: {_quoted(v)}")
    out += config.tail
    return "\n".join(out) + "\n"


def personal_chat_id(person: MockPerson) -> str:
    """Each current user has their own personal chat id (Kari's is the repo's
    `a:personal-kari-nordmann`), so a conversation stored under one person is never reused
    for another when `./dev run --as` changes who is typing."""
    return "a:personal-" + re.sub(r"[^a-z0-9]+", "-", fold(person.name)).strip("-")


def config_as(text: str, wanted: str) -> tuple[str, MockPerson]:
    """The yml `text` with `wanted` as the current user, and that person. LookupError when no
    person matches (its message lists the names)."""
    config = parse(text)
    chosen = next((p for p in config.people if p.matches(wanted)), None)
    if chosen is None:
        raise LookupError(
            f"unknown person {wanted!r} for --as: choose one of {', '.join(p.key for p in config.people)}"
        )
    if chosen is not config.current:
        config.users = [config.current if p is chosen else p for p in config.users]
        config.current = chosen
    config.tail = [
        re.sub(r"^(\s+id:\s*)a:personal-\S+", rf"\g<1>{personal_chat_id(chosen)}", line)
        if i == 1 and config.tail[0].startswith("personalChat:")
        else line
        for i, line in enumerate(config.tail)
    ]
    return render(config), chosen


def main(argv: list[str]) -> int:
    text = REPO_CONFIG.read_text(encoding="utf-8")
    if argv == ["--list"]:
        for person in parse(text).people:
            print(f"{person.key}\t{person.name}\t{person.role}")
        return 0
    if len(argv) != 2:
        print("usage: playground_as.py NAME OUT_DIR | --list", file=sys.stderr)
        return 2
    try:
        yml, person = config_as(text, argv[0])
    except LookupError as err:
        print(err.args[0], file=sys.stderr)
        return 2
    out_dir = Path(argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG_NAME).write_text(yml, encoding="utf-8")
    # For dev's banner: who is typing in the page.
    print(f"{person.name}\t{person.role}\t{person.fields.get('aadObjectId', '')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
