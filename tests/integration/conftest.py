"""Fixtures shared by the integration tests that run the bot over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.cardcheck import validate_card
from tests.connector_stub import ConnectorStub, adaptive_cards


@pytest.fixture
async def stub() -> AsyncIterator[ConnectorStub]:
    """The Connector the bot replies to. Afterwards, every card it received must be valid."""
    async with ConnectorStub() as s:
        yield s
        for card in s.cards():
            validate_card(card)
        for update in s.updates:
            for card in adaptive_cards(update.activity):
                validate_card(card)
