"""One vocabulary for failures of the outside world (Graph, the Bot Connector, Entra ID).

Every adapter raises one of three, and every caller (the outbox, the proactive sender, the
reminder worker) sorts by them:

- `TransientError`: a passing failure (429, 5xx after the adapter's own retries, a network
  error, a resource still being provisioned). Try again later: after `retry_after` seconds
  when the service said so (the service pacing us, not a failed attempt), else with backoff.
- `PermanentError`: the same request will fail the same way (a missing permission, a bad
  secret, a bad request) until someone changes something.
- `Unreachable`: the person or conversation can't be reached (app not installed, blocked,
  unknown user); retrying won't help, a human must follow up.

`reason` is for the log only: it may hold an outside system's error text. What users see is
chosen by the machine code `why` (catalog key ``rm_why_<why>``), never the text.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Literal, get_args

# Why a person or conversation can't be reached.
UnreachableWhy = Literal[
    "not_installed",  # no chat with the bot, and the app can't be installed from here
    "blocked",  # the user blocked the bot (Teams 403)
    "unknown_user",  # no such user in the directory (Graph 404)
    "no_manager",  # the contract names no avtaleforvalter
    "no_reference",  # no stored conversation to post in
    "not_allowed_by_policy",  # a Teams app permission policy keeps the app from the user
    "not_in_catalog",  # the app is not published to the organisation's app catalog
]
# Why a permanent failure happened, as far as we can tell.
PermanentWhy = Literal[
    "permission_missing",  # 403: the app lacks a Graph permission (or consent)
    "sign_in_failed",  # 401, or Entra ID refused the app's secret or certificate
    "failed",  # anything else (a bad request, a bug)
]


class IntegrationError(Exception):
    """Base of the three below; catch it to mean "the outside world failed"."""

    why: str = "failed"

    def __init__(self, reason: str = "", status: int | None = None, code: str | None = None) -> None:
        super().__init__(reason or type(self).__name__)
        self.reason = reason
        self.status = status
        self.code = code  # the outside system's own error code (Graph's "Forbidden", msal's "invalid_client")

    def summary(self) -> str:
        """Class, status and code, without the outside system's message (for stored rows)."""
        return " ".join(p for p in (type(self).__name__, str(self.status or ""), self.code or "") if p)


class TransientError(IntegrationError):
    def __init__(
        self,
        reason: str = "",
        retry_after: float | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(reason, status, code)
        self.retry_after = retry_after


class PermanentError(IntegrationError):
    def __init__(
        self,
        reason: str = "",
        status: int | None = None,
        code: str | None = None,
        *,
        why: PermanentWhy | None = None,
    ) -> None:
        super().__init__(reason, status, code)
        self.why = why or ("sign_in_failed" if status == 401 else "permission_missing" if status == 403 else "failed")


class Unreachable(IntegrationError):
    def __init__(
        self,
        reason: str = "",
        *,
        why: UnreachableWhy,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(reason, status, code)
        self.why = why


# -- escalation reasons as a reminder row stores them ---------------------------------------

EscalationCode = Literal[UnreachableWhy, PermanentWhy, "unanswered"]
ESCALATION_CODES: frozenset[str] = frozenset(get_args(EscalationCode))
_STORED = re.compile(r"^([a-z_]+)(?::(F-[0-9A-F]{6}))?$")


def new_reference() -> str:
    """A short id for a failure: shown to users ("kontakt IT, referanse F-7F3A2C"), and the
    log line with the details carries the same id."""
    return f"F-{secrets.token_hex(3).upper()}"


@dataclass(frozen=True)
class EscalationReason:
    """Why a reminder went to Innkjøpsseksjonen: a code and, for failures, a reference.

    Stored in `reminders.escalation_reason` as ``code`` or ``code:F-XXXXXX``; shown with the
    catalog text ``rm_why_<code>`` (formatted with ``ref``).
    """

    code: str
    ref: str = ""

    def encode(self) -> str:
        return f"{self.code}:{self.ref}" if self.ref else self.code

    @classmethod
    def parse(cls, stored: str | None) -> EscalationReason:
        """The reason a row holds. Empty means unanswered (the 7-day escalation); a free text
        from before codes were stored reads as "failed" so its raw text is never shown."""
        if not stored:
            return cls("unanswered")
        match = _STORED.match(stored.strip())
        if match is None or match.group(1) not in ESCALATION_CODES:
            return cls("failed")
        return cls(match.group(1), match.group(2) or "")

    @property
    def catalog_key(self) -> str:
        return f"rm_why_{self.code}"
