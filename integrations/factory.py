"""Picks the real Graph adapters when a tenant is configured, the local ones otherwise."""

from __future__ import annotations

from procurement.ports import ChatInstaller, Directory
from settings import Settings


def build_chat_installer(settings: Settings) -> ChatInstaller:
    from integrations.local_adapters import LocalChatInstaller

    return LocalChatInstaller(settings.data_dir)


def build_directory(settings: Settings) -> Directory:
    from integrations.directory import LocalDirectory

    return LocalDirectory(settings.playground_config)
