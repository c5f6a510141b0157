"""Contract-register routes: my contracts, search, the contract form and the picker's typeahead."""

from __future__ import annotations

import re

from bot.router import Router
from dialogs import contracts
from dialogs.base import Reply
from dialogs.services import Services
from procurement.access import Actor


def register(router: Router) -> None:
    @router.text("mine kontrakter", "mine avtaler", "my contracts", "kontrakter", "contracts")
    async def my_contracts_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        return await contracts.mine(s, actor, {})

    @router.text(
        r"(?:finn|søk|sok)\s+(?:kontrakt|kontrakter|avtale|avtaler)\s+(?P<query>.+)",
        r"(?:find|search)\s+(?:contract|contracts)\s+(?P<query>.+)",
    )
    async def search_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        return await contracts.search(s, actor, match.group("query").strip())

    @router.text(
        r"(?:ny kontrakt|registrer kontrakt|kontrakt signert|signert kontrakt|new contract|contract signed)"
        r"\s+(?:for\s+|fra\s+|from\s+)?(?P<ref>K-\d{4}-\d{4,})"
    )
    async def from_competition_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        return await contracts.from_competition(s, actor, match.group("ref").upper())

    @router.text("ny kontrakt", "new contract", "registrer kontrakt")
    async def new_contract_text(s: Services, actor: Actor, match: re.Match[str]) -> Reply:
        return await contracts.new_form(s, actor, {})

    router.verbs_to(
        {
            "contracts.mine": contracts.mine,
            "contracts.new": contracts.new_form,
            "contracts.save": contracts.save,
        }
    )

    @router.search("contracts")
    async def typeahead(s: Services, actor: Actor, query: str, limit: int) -> list[dict[str, str]]:
        return await contracts.typeahead(s, actor, query, limit)
