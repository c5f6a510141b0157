"""What every dialog gets (the actor, the services) and returns (a reply)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from procurement.shared.text import clean_text


@dataclass
class Reply:
    """A dialog's answer: a card (shown in place of the pressed card for an invoke),
    an optional text, and extra cards to post after it in the same conversation."""

    card: dict[str, Any] | None = None
    text: str | None = None
    followups: list[dict[str, Any]] = field(default_factory=list)
    # For a card that must update for everyone (not only the presser), e.g. an intake
    # card after a decision: the bot edits the message itself too.
    update_for_all: bool = False


def as_dict(data: object) -> dict[str, Any]:
    """Card data arrives as JSON of any shape; dialogs see a dict with str keys."""
    if isinstance(data, dict):
        return {str(k): v for k, v in data.items()}
    return {}


def as_text(value: object, limit: int | None = None) -> str:
    """A submitted value as text; non-strings (numbers, lists, junk) become text or ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        out = clean_text(str(value))
    else:
        out = ""
    return out[:limit] if limit else out
