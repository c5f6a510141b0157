"""The loop of a background worker: rounds of work, a pause when a round found nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def run_rounds(run_once: Callable[[], Awaitable[int]], idle: Callable[[], Awaitable[None]], name: str) -> None:
    """Forever: a round, and `idle()` after a round that handled nothing. A failing round is
    logged and counts as empty, so a database outage slows the worker down but never ends it."""
    while True:
        try:
            handled = await run_once()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: round failed", name)
            handled = 0
        if handled == 0:
            await idle()
