"""Picks the real Graph adapters when a tenant is configured, the local ones otherwise."""

from __future__ import annotations

from procurement.ports import ChatInstaller, Directory, UnreachableUser
from settings import Settings


class NoGraphInstaller:
    """Local mode has no tenant to install the app in: a user we have no chat with is unreachable."""

    async def ensure_personal_chat(self, user_aad_id: str) -> str:
        raise UnreachableUser("lokal modus: ingen Graph-tilgang for å installere appen")


def build_chat_installer(settings: Settings) -> ChatInstaller:
    return NoGraphInstaller()


def build_directory(settings: Settings) -> Directory:
    from integrations.directory import LocalDirectory

    return LocalDirectory(settings.playground_config)
