"""The one backoff rule for retries (outbox, proactive sends, reminders, Graph uploads)."""

from __future__ import annotations

import random


def backoff(attempt: int, *, base: float, cap: float) -> float:
    """Seconds to wait before retry number `attempt` + 1 (`attempt` counts from 0).

    Exponential, capped, with jitter over the upper half of the step: ``base * 2**attempt``
    (at most `cap`) times a random factor in [0.5, 1]. The jitter spreads retries of many
    failures that happened together (a Graph outage) without collapsing the growth.
    """
    step = min(cap, base * 2 ** min(max(0, attempt), 60))  # 2**60 outgrows any cap
    return step * random.uniform(0.5, 1.0)
