"""A competition's collaboration room as the domain sees it: the provisioning job's steps, what a
retry resumes from, and the evaluation at the end. Pure: no I/O.

    channel ─▶ members ─▶ folders ─▶ strategy ─▶ tab ─▶ welcome        (each: pending → done | failed)

The job does the first step that is not done, records it, and goes on; a failed step stops it
(the status card names the step and why, in plain Norwegian, with a retry button for
innkjøpere). A retry resets the failed step to pending and runs again from there: the steps
done before are never repeated, and every step looks up before it creates, so a step that Graph
completed but we never recorded (a crash in between) finds what it made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

Step = Literal["channel", "members", "folders", "strategy", "tab", "welcome"]
STEPS: tuple[Step, ...] = get_args(Step)
StepState = Literal["pending", "done", "failed"]
RoomStatus = Literal["pending", "ready", "failed"]

# Why a step failed, as a code; the cards show catalog text `cr_why_<code>`, never an exception.
Failure = Literal[
    "not_configured",  # no team for rooms is configured (ROOMS_TEAM_ID)
    "permission_missing",  # Graph refused: a permission or consent is missing
    "sign_in_failed",  # Entra ID refused the app's secret or certificate
    "files_folder_timeout",  # SharePoint never provisioned the channel's files folder in time
    "channel_conflict",  # a channel of that name exists with the other membership type
    "owner_not_in_team",  # the responsible innkjøper can't be added to the team
    "strategy_failed",  # the strategy template could not be filled in
    "no_report",  # the needs report is gone
    "failed",  # anything else
]
FAILURES: tuple[str, ...] = get_args(Failure)

# Who is in a room and why.
MemberSource = Literal["owner", "faggruppe", "submitter", "representative"]
# pending: resolved, not added yet; added/present: in the room; failed: Graph refused (why);
# unresolved: a typed name nobody in the directory answers to (listed on the status card).
MemberState = Literal["pending", "added", "present", "failed", "unresolved"]
IN_ROOM: frozenset[str] = frozenset({"added", "present"})

TAB_NAME = {"nb": "Konkurransestrategi", "en": "Competition strategy"}


def initial_steps() -> dict[str, str]:
    return {step: "pending" for step in STEPS}


def _normalised(steps: Mapping[str, Any]) -> dict[str, str]:
    out = initial_steps()
    for step in STEPS:
        value = steps.get(step)
        if value in ("pending", "done", "failed"):
            out[step] = str(value)
    return out


def next_step(steps: Mapping[str, Any]) -> Step | None:
    """The step to do now: the first not done; None when every step is done or one failed."""
    current = _normalised(steps)
    for step in STEPS:
        if current[step] == "failed":
            return None
        if current[step] != "done":
            return step
    return None


def with_done(steps: Mapping[str, Any], step: Step) -> dict[str, str]:
    current = _normalised(steps)
    current[step] = "done"
    return current


def with_failed(steps: Mapping[str, Any], step: Step) -> dict[str, str]:
    current = _normalised(steps)
    current[step] = "failed"
    return current


def failed_step(steps: Mapping[str, Any]) -> Step | None:
    current = _normalised(steps)
    return next((s for s in STEPS if current[s] == "failed"), None)


def reset_failed(steps: Mapping[str, Any]) -> dict[str, str]:
    """For a retry: the failed step is pending again; the steps done stay done."""
    return {step: ("pending" if state == "failed" else state) for step, state in _normalised(steps).items()}


def room_status(steps: Mapping[str, Any]) -> RoomStatus:
    current = _normalised(steps)
    if any(state == "failed" for state in current.values()):
        return "failed"
    if all(state == "done" for state in current.values()):
        return "ready"
    return "pending"


def can_retry(steps: Mapping[str, Any]) -> bool:
    return failed_step(steps) is not None


def failure_code(code: str | None) -> str:
    return code if code in FAILURES else "failed"


# -- the room as cards and other workflows read it ---------------------------------------------


@dataclass(frozen=True)
class RoomMemberView:
    key: str
    aad_id: str | None
    name: str
    source: str
    role: str
    state: str
    why: str | None = None

    @property
    def in_room(self) -> bool:
        return self.state in IN_ROOM


@dataclass(frozen=True)
class RoomView:
    """A room for the status card and `rom K-…`."""

    ref: str
    title: str
    needs_ref: str
    status: RoomStatus
    steps: dict[str, str]
    failed_step: str | None
    failure: str | None
    membership_type: str
    channel_name: str
    channel_url: str
    document_name: str
    document_url: str
    attempt: int
    members: tuple[RoomMemberView, ...] = ()
    owner_aad_id: str = ""
    evaluations: int = 0
    evaluation_requested: bool = False
    evaluation_summarised_at: datetime | None = None

    @property
    def member_ids(self) -> frozenset[str]:
        """Everyone in the room (the owner from the start): who may read its status."""
        ids = {m.aad_id for m in self.members if m.aad_id and (m.in_room or m.source == "owner")}
        if self.owner_aad_id:
            ids.add(self.owner_aad_id)
        return frozenset(ids)

    @property
    def problems(self) -> tuple[RoomMemberView, ...]:
        """People who are not in the room and why: the status card names every one of them."""
        return tuple(m for m in self.members if m.state in ("failed", "unresolved"))


@dataclass(frozen=True)
class RoomInfo:
    """What other workflows use of a room (deviations' welcome button, the archive command)."""

    ref: str
    team_id: str
    channel_id: str
    web_url: str
    drive_id: str
    item_id: str
    member_aad_ids: frozenset[str] = field(default_factory=frozenset)


# -- the evaluation at the end ---------------------------------------------------------------------

Messages = dict[str, str]
EVALUATION_TEXT_LIMIT = 2000
NEED_DESCRIBED = ("yes", "partly", "no")
SUPPLIER_FEEDBACK = ("yes", "no")


@dataclass(frozen=True)
class EvaluationAnswers:
    went_well: str
    to_change: str
    need_described: str  # yes | partly | no
    supplier_feedback: str  # yes | no


@dataclass(frozen=True)
class EvaluationResult:
    values: dict[str, str]  # what to show again on the card (cleaned, capped)
    errors: dict[str, Messages]
    answers: EvaluationAnswers | None = None


def _text(value: object) -> str:
    if isinstance(value, str):
        return "".join(ch for ch in value if ch in "\n\t" or ch.isprintable()).strip()
    return ""


def validate_evaluation(raw: Mapping[str, Any]) -> EvaluationResult:
    """The evaluation card's answers as the server requires them; never raises."""
    went_well = _text(raw.get("went_well"))
    to_change = _text(raw.get("to_change"))
    need = _text(raw.get("need_described"))
    feedback = _text(raw.get("supplier_feedback"))
    values = {
        "went_well": went_well[: 2 * EVALUATION_TEXT_LIMIT],
        "to_change": to_change[: 2 * EVALUATION_TEXT_LIMIT],
        "need_described": need if need in NEED_DESCRIBED else "",
        "supplier_feedback": feedback if feedback in SUPPLIER_FEEDBACK else "",
    }
    errors: dict[str, Messages] = {}
    for key, value in (("went_well", went_well), ("to_change", to_change)):
        if len(value) > EVALUATION_TEXT_LIMIT:
            errors[key] = {
                "nb": f"Teksten er for lang: {len(value)} tegn. Skriv høyst {EVALUATION_TEXT_LIMIT} tegn.",
                "en": f"The text is too long: {len(value)} characters. Write at most {EVALUATION_TEXT_LIMIT}.",
            }
    if not went_well and not to_change:
        errors["went_well"] = {
            "nb": "Skriv hva som fungerte, hva som bør endres, eller begge deler.",
            "en": "Write what worked, what should change, or both.",
        }
    if need not in NEED_DESCRIBED:
        errors["need_described"] = {
            "nb": "Velg om behovet var godt beskrevet.",
            "en": "Choose whether the need was well described.",
        }
    if feedback not in SUPPLIER_FEEDBACK:
        errors["supplier_feedback"] = {
            "nb": "Velg om tilbakemeldinger fra leverandørene er hentet inn.",
            "en": "Choose whether supplier feedback was gathered.",
        }
    if errors:
        return EvaluationResult(values, errors)
    return EvaluationResult(values, {}, EvaluationAnswers(went_well, to_change, need, feedback))


@dataclass(frozen=True)
class EvaluationEntry:
    name: str
    answers: Mapping[str, str]
    submitted_at: datetime


@dataclass(frozen=True)
class EvaluationSummary:
    """What Innkjøpsseksjonen reads after a competition: counts and every comment, by whom."""

    count: int
    invited: int
    need_described: dict[str, int]
    supplier_feedback: dict[str, int]
    went_well: tuple[tuple[str, str], ...]
    to_change: tuple[tuple[str, str], ...]


def summarise(entries: Iterable[EvaluationEntry], invited: int) -> EvaluationSummary:
    items = sorted(entries, key=lambda e: e.submitted_at)
    need = {k: 0 for k in NEED_DESCRIBED}
    feedback = {k: 0 for k in SUPPLIER_FEEDBACK}
    for e in items:
        if e.answers.get("need_described") in need:
            need[str(e.answers["need_described"])] += 1
        if e.answers.get("supplier_feedback") in feedback:
            feedback[str(e.answers["supplier_feedback"])] += 1
    return EvaluationSummary(
        count=len(items),
        invited=invited,
        need_described=need,
        supplier_feedback=feedback,
        went_well=tuple((e.name, str(e.answers.get("went_well") or "")) for e in items if e.answers.get("went_well")),
        to_change=tuple((e.name, str(e.answers.get("to_change") or "")) for e in items if e.answers.get("to_change")),
    )
