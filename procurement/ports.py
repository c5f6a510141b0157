"""Ports: what the domain needs from the outside world, implemented in `integrations/`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class UnreachableUser(Exception):
    """The person can't be reached (app blocked or removed, user unknown); retrying won't help."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason or "unreachable")
        self.reason = reason


class TransientIntegrationError(Exception):
    """A passing failure (429, 5xx after retries); try again later."""

    def __init__(self, reason: str = "", retry_after: float | None = None) -> None:
        super().__init__(reason or "transient failure")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Person:
    aad_id: str
    name: str = ""
    email: str = ""


class ChatInstaller(Protocol):
    async def ensure_personal_chat(self, user_aad_id: str) -> str: ...


class Directory(Protocol):
    async def resolve(self, email_or_id: str) -> Person | None: ...
