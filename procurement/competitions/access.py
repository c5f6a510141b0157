"""Who may do what with competition rooms (printed in docs/access.md; a test compares).

A competition is confidential until it is announced: only innkjøpere and the people in its room
(the responsible innkjøper owns it; the faggruppe and the submitter are members) learn that it
exists. Anyone else gets `NotFound`, the same answer as for a reference that does not exist.
"""

from __future__ import annotations

from procurement.access import Policy, Relation, Role, rule

POLICY = Policy(
    "competition",
    {
        "view_room": rule(
            Role.PROCUREMENT,
            Relation.ROOM_MEMBER,
            note="the room's status card (`rom K-…`, `competition.room_status`); anyone else: not found",
        ),
        "retry_room": rule(Role.PROCUREMENT, note="`competition.room_retry`: run the failed step again"),
        "evaluate": rule(Relation.ROOM_MEMBER, note="the evaluation card after the contract is signed"),
        "evaluation_summary": rule(
            Role.PROCUREMENT, note="`evaluering K-…`: the answers summarised for Innkjøpsseksjonen"
        ),
    },
)
