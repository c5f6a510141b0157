"""Verb and text-command tables. Each workflow's `bot/routes/<workflow>.py` registers into one
`Router` with one decorator per verb or command, by an explicit `register(router)` call."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from dialogs.base import Reply
from dialogs.services import Services
from procurement.access import Actor

VerbHandler = Callable[[Services, Actor, dict[str, Any]], Awaitable[Reply]]
TextHandler = Callable[[Services, Actor, re.Match[str]], Awaitable[Reply]]
SearchHandler = Callable[[Services, Actor, str, int], Awaitable[list[dict[str, str]]]]
# Files sent in a message (the activity's attachments as JSON): a reply, or None when the
# handler has nothing to do with them (the message then goes the ordinary way).
AttachmentHandler = Callable[[Services, Actor, list[dict[str, Any]]], Awaitable[Reply | None]]
# An invoke by name (a message action's composeExtension/fetchTask …): the invoke's value in,
# the invoke response's body out.
InvokeHandler = Callable[[Services, Actor, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class Router:
    verbs: dict[str, VerbHandler] = field(default_factory=dict)
    texts: list[tuple[re.Pattern[str], TextHandler]] = field(default_factory=list)
    searches: dict[str, SearchHandler] = field(default_factory=dict)
    fallback_text: TextHandler | None = None
    attachment_handlers: list[AttachmentHandler] = field(default_factory=list)
    invokes: dict[str, InvokeHandler] = field(default_factory=dict)

    def verb(self, name: str) -> Callable[[VerbHandler], VerbHandler]:
        def register(func: VerbHandler) -> VerbHandler:
            if name in self.verbs:
                raise ValueError(f"verb {name} registered twice")
            self.verbs[name] = func
            return func

        return register

    def verbs_to(self, handlers: dict[str, VerbHandler]) -> None:
        """Register verbs whose dialog takes the card data as it is (the common case)."""
        for name, handler in handlers.items():
            self.verb(name)(handler)

    def text(self, *patterns: str) -> Callable[[TextHandler], TextHandler]:
        """Commands match the whole message, case-insensitively, ignoring surrounding space."""

        def register(func: TextHandler) -> TextHandler:
            for pattern in patterns:
                self.texts.append((re.compile(rf"^\s*(?:{pattern})\s*[.!?]*\s*$", re.IGNORECASE), func))
            return func

        return register

    def search(self, dataset: str) -> Callable[[SearchHandler], SearchHandler]:
        def register(func: SearchHandler) -> SearchHandler:
            self.searches[dataset] = func
            return func

        return register

    def attachments(self, func: AttachmentHandler) -> AttachmentHandler:
        self.attachment_handlers.append(func)
        return func

    def invoke(self, name: str) -> Callable[[InvokeHandler], InvokeHandler]:
        def register(func: InvokeHandler) -> InvokeHandler:
            if name in self.invokes:
                raise ValueError(f"invoke {name} registered twice")
            self.invokes[name] = func
            return func

        return register

    def otherwise(self, func: TextHandler) -> TextHandler:
        self.fallback_text = func
        return func

    def match_text(self, message: str) -> tuple[TextHandler, re.Match[str]] | None:
        for pattern, handler in self.texts:
            found = pattern.match(message)
            if found:
                return handler, found
        return None
