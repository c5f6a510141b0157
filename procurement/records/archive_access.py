"""Who may archive by hand from a competition room (printed in docs/access.md; a test compares).

"arkiver" is for the innkjøpere responsible for the competition: an innkjøper who is in its
room (its owner, the responsible innkjøper, or a member). Anyone who is not an innkjøper gets a
polite refusal; an innkjøper outside the room gets `NotFound`, as for a reference that does not
exist (a competition is confidential until it is announced). The automatic archive copies are
made by the system from audit entries and need no one's permission.
"""

from __future__ import annotations

from procurement.access import Policy, Role, rule

POLICY = Policy(
    "archive",
    {
        "list_files": rule(
            Role.PROCUREMENT,
            note="`arkiver` / `arkiver K-…`: the room's files to pick from; only in a room the innkjøper is in, "
            "else not found",
        ),
        "submit": rule(
            Role.PROCUREMENT,
            note="`archive.submit`: archive the picked files into the competition's case (the one who asked)",
        ),
        "status": rule(Role.PROCUREMENT, note="`archive.status`: each document's archive reference or reason"),
    },
)
