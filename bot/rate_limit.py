"""Teams' bot send limits, kept on our side so we rarely meet a 429.

Per conversation: 7 per 1 s, 8 per 2 s, 60 per 30 s, 1800 per hour. Per app and tenant:
50 per second. `acquire(conversation_id)` waits until a send is allowed and books it.
One instance keeps its own books; several instances each stay under the limits they see,
and Teams' 429 + Retry-After (handled by the caller) covers the rest.

Teams counts arrivals, we count bookings; the time between them varies by tens of
milliseconds, so every window is kept a little longer than Teams' own: 0.15 s for a
conversation's (a few sends, where one early arrival is a 429), 0.05 s for the app's 50/s
(which sets the bulk rate: 50 per 1.05 s is 95 % of the ceiling).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

CONVERSATION_WINDOWS: tuple[tuple[int, float], ...] = (
    (7, 1.0),
    (8, 2.0),
    (60, 30.0),
    (1800, 3600.0),
)
APP_WINDOWS: tuple[tuple[int, float], ...] = ((50, 1.0),)


class _Windows:
    def __init__(self, windows: tuple[tuple[int, float], ...], margin: float = 0.0) -> None:
        self.windows = tuple((limit, span + margin) for limit, span in windows)
        self.sent: deque[float] = deque()
        self.longest = max(span for _, span in self.windows)

    def wait_needed(self, now: float) -> float:
        while self.sent and now - self.sent[0] >= self.longest:
            self.sent.popleft()
        wait = 0.0
        for limit, span in self.windows:
            if len(self.sent) >= limit:
                # The send `limit` places back must leave the window first.
                oldest_in_window = self.sent[-limit]
                wait = max(wait, oldest_in_window + span - now)
        return wait


class SendLimiter:
    def __init__(
        self,
        conversation_windows: tuple[tuple[int, float], ...] = CONVERSATION_WINDOWS,
        app_windows: tuple[tuple[int, float], ...] = APP_WINDOWS,
        clock: Callable[[], float] = time.monotonic,
        conversation_margin: float = 0.15,
        app_margin: float = 0.05,
    ) -> None:
        self.conversation_windows = conversation_windows
        self.margin = conversation_margin
        self.app = _Windows(app_windows, app_margin)
        self.conversations: dict[str, _Windows] = {}
        self.clock = clock
        self._lock = asyncio.Lock()

    async def acquire(self, conversation_id: str) -> None:
        while True:
            async with self._lock:
                now = self.clock()
                conv = self.conversations.get(conversation_id)
                if conv is None:
                    conv = self.conversations[conversation_id] = _Windows(self.conversation_windows, self.margin)
                wait = max(conv.wait_needed(now), self.app.wait_needed(now))
                if wait <= 0:
                    conv.sent.append(now)
                    self.app.sent.append(now)
                    if len(self.conversations) > 10_000:
                        self._forget_idle(now)
                    return
            await asyncio.sleep(wait)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, w in self.conversations.items() if w.wait_needed(now) == 0 and not w.sent]:
            del self.conversations[key]
