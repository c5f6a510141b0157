"""Thin routes, one module per workflow; each registers its verbs and commands explicitly."""

from __future__ import annotations

from bot.router import Router

from . import (
    competition_room,
    contracts,
    delivery_status,
    deviation_report,
    home,
    needs_report,
    records,
    reminders,
)


def build_router() -> Router:
    """Every workflow's routes, in one place, in a fixed order (text commands are tried in
    registration order; the welcome card answers whatever matches none)."""
    router = Router()
    home.register(router)
    needs_report.register(router)
    contracts.register(router)
    reminders.register(router)
    competition_room.register(router)
    records.register(router)
    delivery_status.register(router)
    deviation_report.register(router)
    return router
