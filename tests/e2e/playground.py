"""Drive a bot through the real Microsoft 365 Agents Playground (the local Teams client).

Two async context managers and a few card helpers; see docs/playground.md.

- `BotProcess` starts any bot command (default `python app.py`) in its own process group,
  waits for `GET /healthz`, logs to test-artifacts/ and kills the group on exit.
- `Playground` starts `agentsplayground -c msteams` against the bot's /api/messages (it
  reads `.m365agentsplayground.yml` from its working directory, the repo root by default),
  sends what the Playground's own web UI sends (messages, Action.Submit, Action.Execute),
  sends custom activities (install, members added, channel events, or any activity), and
  reads the bot's replies from the Playground's websockets.

Facts the harness is built on (Playground 0.2.28, read from its bundled JS and checked):

- A message posted with `POST /_conversation/v1/conversations/{id}/messages` always reaches
  the bot *from the current user* of the yml; `from.id` in the request is only checked for
  membership. Text from another user is therefore sent as a custom activity.
- Only the current user has a configured personal chat. `POST /_connector/v3/conversations`
  (the Bot Connector "create conversation" the bot itself would call) creates one for another
  user, with a random id per Playground run. The conversation websocket never shows
  messages in chats the current user is not a member of; the harness reads the bot's
  messages to those chats from the log websocket instead.
- In group chats and channels the bot is only called when the message mentions it.
- Action.Submit and Action.Execute carry the clicking user (`from.id` is used).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_ROOT = REPO_ROOT / "test-artifacts"
PLAYGROUND_BIN = REPO_ROOT / "node_modules" / ".bin" / "agentsplayground"
ECHO_BOT_COMMAND: tuple[str, ...] = (sys.executable, str(REPO_ROOT / "benchmarks" / "echo_bot.py"))

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
CONVERSATION_STREAM = "/_ws_conversation/v1/conversations/stream"
LOG_STREAM = "/_ws/log/stream"
# Labels the Playground puts in `from`/`to` of its log items.
BOT_APP_LABEL = "User Application"
PLAYGROUND_LABEL = "Microsoft 365 Agents Playground"


class PlaygroundError(RuntimeError):
    """A Playground HTTP call answered with an error status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body


def free_port() -> int:
    """A TCP port that is free on all interfaces right now (the Playground binds to all)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path | None, lines: int = 40) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


# --------------------------------------------------------------------------- processes


class _ManagedProcess:
    """A child process in its own process group, output appended to a log file."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._proc: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def _open_log(self, headline: str) -> IO[bytes]:
        """Append to the log file (closed in _terminate); local and small, so synchronous."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {headline}\n".encode())
        log.flush()
        return log

    async def _spawn(self, command: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
        self._log = self._open_log(f"start: {' '.join(command)} (cwd {cwd})")
        self._proc = await asyncio.create_subprocess_exec(
            *command,
            cwd=str(cwd),
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # own process group: killpg reaches node's children too
        )

    async def _terminate(self, grace: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), grace)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    await proc.wait()
            # Anything the leader left behind in its group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None


class BotProcess(_ManagedProcess):
    """Run a bot (default `python app.py`) on a port and wait until `GET /healthz` is 200.

    `env` is layered over this process's environment with `PORT` and `LOCAL_MODE=true` set; a
    value of None removes a variable (`LOCAL_MODE=None` for a bot given an Entra app). Use
    `restart(env=...)` to restart it (same port) with changes.
    """

    def __init__(
        self,
        command: Sequence[str] | None = None,
        *,
        port: int | None = None,
        env: Mapping[str, str | None] | None = None,
        cwd: Path = REPO_ROOT,
        name: str = "bot",
        artifacts_dir: Path = ARTIFACTS_ROOT,
        health_path: str = "/healthz",
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(Path(artifacts_dir) / f"{name}.log")
        self.command = list(command) if command else [sys.executable, "app.py"]
        self.port = port or free_port()
        self.env_overrides: dict[str, str | None] = dict(env or {})
        self.cwd = Path(cwd)
        self.name = name
        self.health_path = health_path
        self.startup_timeout = startup_timeout

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/api/messages"

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PORT"] = str(self.port)
        env["LOCAL_MODE"] = "true"  # the app starts anonymous only when asked to
        env.setdefault("PYTHONUNBUFFERED", "1")
        for key, value in self.env_overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    async def start(self) -> BotProcess:
        await self._spawn(self.command, self._environment(), self.cwd)
        deadline = time.monotonic() + self.startup_timeout
        url = self.base_url + self.health_path
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                if not self.running:
                    code = self._proc.returncode if self._proc else None
                    await self._terminate()
                    raise RuntimeError(
                        f"{self.name} exited with {code} before {url} answered; "
                        f"log {self.log_path}:\n{_tail(self.log_path)}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(url) as response:
                        if response.status == 200:
                            return self
                if time.monotonic() > deadline:
                    await self._terminate()
                    raise TimeoutError(
                        f"{self.name}: {url} not 200 within {self.startup_timeout}s; "
                        f"log {self.log_path}:\n{_tail(self.log_path)}"
                    )
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        await self._terminate()

    async def restart(self, env: Mapping[str, str | None] | None = None) -> BotProcess:
        """Stop and start again on the same port; `env` updates the overrides."""
        await self.stop()
        if env:
            self.env_overrides.update(env)
        return await self.start()

    async def __aenter__(self) -> BotProcess:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# --------------------------------------------------------------------------- cards


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict in a card, depth first, in document order."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def card_text(card: Mapping[str, Any] | None) -> str:
    """All visible text of an Adaptive Card, one line per element.

    TextBlock text, RichTextBlock TextRuns, FactSet facts as "title: value", input labels
    and ChoiceSet choice titles. Actions are not included (use `find_action`).
    """
    if not card:
        return ""
    from tests.cardcheck import shown_card  # TextBlocks and facts as shown (escapes removed)

    lines: list[str] = []
    for element in _walk(shown_card(card)):
        kind = element.get("type")
        if kind in ("TextBlock", "TextRun") and isinstance(element.get("text"), str):
            lines.append(element["text"])
        elif kind == "FactSet":
            for fact in element.get("facts", []):
                lines.append(f"{fact.get('title', '')}: {fact.get('value', '')}")
        elif isinstance(kind, str) and kind.startswith("Input."):
            if element.get("label"):
                lines.append(str(element["label"]))
            for choice in element.get("choices", []) or []:
                if isinstance(choice, dict) and choice.get("title"):
                    lines.append(str(choice["title"]))
    return "\n".join(lines)


def card_actions(card: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Every Action.* in a card (actions, ActionSets, ShowCard cards, selectActions)."""
    if not card:
        return []
    return [
        element
        for element in _walk(card)
        if isinstance(element.get("type"), str) and element["type"].startswith("Action.")
    ]


def card_buttons(card: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The actions a user sees as buttons, in document order: those in `actions` and
    ActionSets (and inside Action.ShowCard cards). Not the card's `refresh` action (run by
    the client for listed users), not `fallback`s (used only when the client lacks the
    action type), not `selectAction`s."""
    buttons: list[dict[str, Any]] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            kind = node.get("type")
            if isinstance(kind, str) and kind.startswith("Action."):
                buttons.append(node)
            for key, value in node.items():
                if key not in ("refresh", "fallback", "selectAction"):
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(card)
    return buttons


def button_titles(card: Mapping[str, Any] | None) -> list[str]:
    """The titles of `card_buttons(card)`, as a user reads them."""
    return [str(button.get("title", "")) for button in card_buttons(card)]


def find_action(card: Mapping[str, Any] | None, title_or_verb: str) -> dict[str, Any]:
    """The action whose title, verb, id or `data.verb` equals `title_or_verb`.

    Raises LookupError naming the actions that exist.
    """
    actions = card_actions(card)
    for action in actions:
        data = action.get("data")
        keys = (
            action.get("title"),
            action.get("verb"),
            action.get("id"),
            data.get("verb") if isinstance(data, dict) else None,
        )
        if title_or_verb in keys:
            return action
    available = [f"{a.get('type')}(title={a.get('title')!r}, verb={a.get('verb')!r})" for a in actions]
    raise LookupError(f"no action {title_or_verb!r} in card; actions: {available}")


def card_inputs(card: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Every Input.* element of a card."""
    if not card:
        return []
    return [
        element
        for element in _walk(card)
        if isinstance(element.get("type"), str) and element["type"].startswith("Input.")
    ]


def find_input(card: Mapping[str, Any] | None, input_id: str) -> dict[str, Any]:
    """The Input.* element with `id` == `input_id`; LookupError naming the inputs there are."""
    inputs = card_inputs(card)
    for element in inputs:
        if element.get("id") == input_id:
            return element
    raise LookupError(f"no input {input_id!r}; inputs: {[e.get('id') for e in inputs]}")


def field_messages(card: Mapping[str, Any] | None, input_id: str) -> list[str]:
    """The TextBlocks placed right after input `input_id` (before the next input or
    non-text element): the message a user reads at that field."""
    for element in _walk(card):
        for value in element.values():
            if not isinstance(value, list):
                continue
            for index, item in enumerate(value):
                if isinstance(item, dict) and item.get("id") == input_id:
                    messages: list[str] = []
                    for following in value[index + 1 :]:
                        if not isinstance(following, dict) or following.get("type") != "TextBlock":
                            break
                        messages.append(str(following.get("text", "")))
                    return messages
    raise LookupError(f"no input {input_id!r} in card")


def _input_default(element: Mapping[str, Any]) -> str | None:
    """The value the Adaptive Cards renderer would send for an untouched input."""
    if element.get("type") == "Input.Toggle":
        value = element.get("value", element.get("valueOff", "false"))
        return str(value)
    value = element.get("value")
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def action_payload(
    card: Mapping[str, Any] | None,
    action: Mapping[str, Any],
    inputs: Mapping[str, Any] | None = None,
    *,
    validate_required: bool = True,
) -> dict[str, Any]:
    """The data the Playground sends for `action`: its `data` with the card's inputs on top.

    Mirrors adaptivecards' `internalPrepareForExecution`: a copy of `action.data` (an
    object; anything else becomes {}), then every input of the card that has a value, as
    a string, unless `associatedInputs` is "none". `inputs` are what the user typed.
    """
    data = action.get("data")
    payload: dict[str, Any] = json.loads(json.dumps(data)) if isinstance(data, dict) else {}
    if action.get("associatedInputs") == "none":
        return payload
    values: dict[str, Any] = {}
    for element in card_inputs(card):
        default = _input_default(element)
        if element.get("id") and default is not None:
            values[element["id"]] = default
    for key, value in (inputs or {}).items():
        values[key] = value if isinstance(value, str) else json.dumps(value)
    if validate_required:
        missing = [
            element["id"]
            for element in card_inputs(card)
            if element.get("isRequired") and element.get("id") and not values.get(element["id"])
        ]
        if missing:
            raise ValueError(f"required inputs {missing} have no value; the Playground would not send this")
    payload.update(values)
    return payload


# --------------------------------------------------------------------------- messages


@dataclass
class BotMessage:
    """A message the bot created or updated, as a Teams client would show it."""

    event: str  # "createMessage" | "updateMessage"
    conversation_id: str  # where the message lives; use it for submit/invoke
    action_conversation_id: str  # as reported by the websocket event
    message_id: str | None
    from_id: str
    text: str | None = None
    text_format: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    attachment_layout: str | None = None
    suggested_actions: dict[str, Any] | None = None
    timestamp: int | None = None
    source: str = "conversation"  # "conversation" websocket, or "log" websocket
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def post_conversation_id(self) -> str | None:
        return self.conversation_id if ";messageid=" in self.conversation_id else None

    @property
    def cards(self) -> list[dict[str, Any]]:
        return [
            a["content"]
            for a in self.attachments
            if str(a.get("contentType", "")).lower() == ADAPTIVE_CARD and isinstance(a.get("content"), dict)
        ]

    @property
    def card(self) -> dict[str, Any] | None:
        cards = self.cards
        return cards[0] if cards else None

    @property
    def all_text(self) -> str:
        """The message text followed by the text of every Adaptive Card in it."""
        parts = [self.text or ""] + [card_text(card) for card in self.cards]
        return "\n".join(part for part in parts if part)

    def with_card(self, card: dict[str, Any]) -> BotMessage:
        """This message after an invoke answered with `card`: the Playground (like Teams)
        swaps the card in place, same message id, without a websocket event."""
        attachment = {"contentType": ADAPTIVE_CARD, "content": card}
        return dataclasses.replace(self, attachments=[attachment])

    def in_conversation(self, conversation_id: str) -> bool:
        """True for the conversation itself and, for a channel, any thread in it."""
        return conversation_id in (
            self.conversation_id,
            self.action_conversation_id,
            self.conversation_id.split(";", 1)[0],
        )


Predicate = str | re.Pattern[str] | Callable[[BotMessage], bool] | None


def _as_predicate(predicate: Predicate) -> Callable[[BotMessage], bool]:
    if predicate is None:
        return lambda _m: True
    if isinstance(predicate, str):
        return lambda m: predicate in m.all_text
    if isinstance(predicate, re.Pattern):
        return lambda m: predicate.search(m.all_text) is not None
    return predicate


@dataclass
class InvokeResult:
    """What `POST /_conversation/v1/invoke` answered for an Action.Execute."""

    type: str | None
    value: Any

    @property
    def card(self) -> dict[str, Any] | None:
        if self.type == ADAPTIVE_CARD and isinstance(self.value, dict):
            return self.value
        return None


# --------------------------------------------------------------------------- playground


class Playground:
    """The Agents Playground as a subprocess, with its HTTP API and websockets.

    `bot` is a BotProcess, a port or a full messaging endpoint URL.
    """

    def __init__(
        self,
        bot: BotProcess | int | str,
        *,
        port: int | None = None,
        name: str = "playground",
        artifacts_dir: Path = ARTIFACTS_ROOT,
        cwd: Path = REPO_ROOT,
        startup_timeout: float = 60.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        if isinstance(bot, BotProcess):
            self.bot_endpoint = bot.endpoint
        elif isinstance(bot, int):
            self.bot_endpoint = f"http://127.0.0.1:{bot}/api/messages"
        else:
            self.bot_endpoint = bot
        self.port = port or free_port()
        self.name = name
        self.artifacts_dir = Path(artifacts_dir)
        self.cwd = Path(cwd)
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args)
        self._process = _ManagedProcess(self.artifacts_dir / f"{name}.log")
        self._session: aiohttp.ClientSession | None = None
        self._config: dict[str, Any] | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._reader_error: BaseException | None = None
        self._event_files: list[IO[str]] = []
        self._cond = asyncio.Condition()
        self._consumed: set[int] = set()
        self._personal_chats: dict[str, str] = {}
        #: Chats without the current user: the conversation websocket hides them.
        self.hidden_conversations: set[str] = set()
        #: Every bot message seen, in arrival order.
        self.messages: list[BotMessage] = []
        #: Conversation ids of typing indicators, in arrival order.
        self.typing: list[str] = []
        #: Every item of the Playground's log websocket (all HTTP exchanges with the bot).
        self.log_items: list[dict[str, Any]] = []

    # ----------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self._process.log_path

    async def start(self) -> Playground:
        if not PLAYGROUND_BIN.exists():
            raise FileNotFoundError(f"{PLAYGROUND_BIN} missing: run `npm ci` in {REPO_ROOT}")
        env = dict(os.environ)
        env["TEAMSAPPTESTER_BROWSER"] = "none"
        env["NO_COLOR"] = "1"
        command = [
            str(PLAYGROUND_BIN),
            "-e",
            self.bot_endpoint,
            "-c",
            "msteams",
            "-p",
            str(self.port),
            "--disable-telemetry",
            *self.extra_args,
        ]
        await self._process._spawn(command, env, self.cwd)
        try:
            await self._wait_listening()
            # It prints "Listening on" before it reads the yml; a bad yml makes it exit
            # with the reason only in devTools/m365agentsplayground.log.
            await asyncio.sleep(0.3)
            if not self._process.running:
                raise RuntimeError(self._startup_failure("Playground exited during start-up"))
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
            await self._connect_streams()
            self._config = await self._get_json("/_internal/v1/config")
        except BaseException as error:
            died = not self._process.running
            await self.stop()
            if died and not isinstance(error, RuntimeError):
                raise RuntimeError(self._startup_failure("Playground exited")) from error
            raise
        return self

    def _startup_failure(self, reason: str) -> str:
        devtools = self.cwd / "devTools" / "m365agentsplayground.log"
        return (
            f"{reason}; log {self.log_path}:\n{_tail(self.log_path)}\n"
            f"{devtools} (shared by all Playgrounds started in {self.cwd}):\n{_tail(devtools)}"
        )

    async def _wait_listening(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            start = text.rfind("=== ")
            found = re.search(r"Listening on (\d+)", text[start:])
            if found:
                # With -p on a busy port the Playground silently picks another one.
                self.port = int(found.group(1))
                return
            if not self._process.running:
                raise RuntimeError(self._startup_failure("Playground exited during start-up"))
            if time.monotonic() > deadline:
                raise TimeoutError(f"Playground did not listen within {self.startup_timeout}s")
            await asyncio.sleep(0.1)

    async def _connect_streams(self) -> None:
        assert self._session is not None
        ws_base = self.base_url.replace("http://", "ws://")
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        for path, handler, suffix in (
            (CONVERSATION_STREAM, self._on_conversation_event, "conversation"),
            (LOG_STREAM, self._on_log_event, "exchanges"),
        ):
            ws = await self._session.ws_connect(ws_base + path, heartbeat=30)
            out = self._open_events(suffix)
            self._readers.append(asyncio.create_task(self._read(ws, handler, out)))

    def _open_events(self, suffix: str) -> IO[str]:
        """A JSONL file for one websocket's frames (closed in stop)."""
        out = open(self.artifacts_dir / f"{self.name}-{suffix}.jsonl", "a", encoding="utf-8")
        self._event_files.append(out)
        return out

    async def stop(self) -> None:
        for task in self._readers:
            task.cancel()
        for task in self._readers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._readers.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._process._terminate()
        for out in self._event_files:
            out.close()
        self._event_files.clear()

    async def __aenter__(self) -> Playground:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ----------------------------------------------------------------- websockets

    async def _read(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        handler: Callable[[dict[str, Any]], None],
        out: IO[str],
    ) -> None:
        try:
            async for frame in ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    continue
                out.write(frame.data + "\n")
                out.flush()
                event = json.loads(frame.data)
                async with self._cond:
                    handler(event)
                    self._cond.notify_all()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # surfaced by next_message
            async with self._cond:
                self._reader_error = error
                self._cond.notify_all()
        finally:
            await ws.close()

    def _on_conversation_event(self, event: dict[str, Any]) -> None:
        action = event.get("action")
        if action == "typing":
            self.typing.append(event.get("actionConversationId", ""))
            return
        if action not in ("createMessage", "updateMessage"):
            return
        message = event.get("message", {})
        action_conversation = event.get("actionConversationId", "")
        self.messages.append(
            BotMessage(
                event=action,
                conversation_id=message.get("postConversationId") or action_conversation,
                action_conversation_id=action_conversation,
                message_id=message.get("messageId"),
                from_id=message.get("from", {}).get("id", ""),
                text=message.get("text"),
                text_format=message.get("textFormat"),
                attachments=list(message.get("attachments") or []),
                attachment_layout=message.get("attachmentLayout"),
                suggested_actions=message.get("suggestedActions"),
                timestamp=message.get("timestamp"),
                source="conversation",
                raw=event,
            )
        )

    def _on_log_event(self, event: dict[str, Any]) -> None:
        item = event.get("log")
        if not isinstance(item, dict):
            return
        self.log_items.append(item)
        if item.get("type") != "bot" or item.get("from") != BOT_APP_LABEL:
            return
        request = (item.get("request") or {}).get("body") or {}
        response = item.get("response") or {}
        body = response.get("body")
        response_body: dict[str, Any] = body if isinstance(body, dict) else {}
        if item.get("activityName") == "createConversation":
            members = request.get("members") or []
            chat_id = response_body.get("id")
            if chat_id and not request.get("isGroup") and members and members[0].get("id") != self.current_user_id:
                self.hidden_conversations.add(chat_id)
            return
        conversation = item.get("conversationId") or ""
        if (
            conversation not in self.hidden_conversations
            or request.get("type") != "message"
            or response.get("statusCode") not in (200, 201, 202)
        ):
            return
        # The Playground splits text + attachments into one message each (not carousels).
        parts: list[dict[str, Any]] = []
        if request.get("attachmentLayout") == "carousel":
            parts.append(request)
        else:
            if request.get("text"):
                parts.append({**request, "attachments": []})
            for attachment in request.get("attachments") or []:
                parts.append({**request, "text": None, "attachments": [attachment]})
        for part in parts:
            self.messages.append(
                BotMessage(
                    event="updateMessage" if response.get("statusCode") == 200 else "createMessage",
                    conversation_id=conversation,
                    action_conversation_id=conversation,
                    message_id=response_body.get("id") if len(parts) == 1 else None,
                    from_id=(request.get("from") or {}).get("id", ""),
                    text=part.get("text"),
                    text_format=part.get("textFormat"),
                    attachments=[
                        {"contentType": a.get("contentType"), "content": a.get("content")}
                        for a in part.get("attachments") or []
                    ],
                    attachment_layout=part.get("attachmentLayout"),
                    suggested_actions=part.get("suggestedActions"),
                    timestamp=item.get("timestamp"),
                    source="log",
                    raw=item,
                )
            )

    async def next_message(
        self,
        predicate: Predicate = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - the harness API the tests read best
        *,
        conversation_id: str | None = None,
        event: str | None = None,
    ) -> BotMessage:
        """The oldest bot message not yet returned that matches, waiting up to `timeout`.

        `predicate` is a substring or regex of `BotMessage.all_text`, or a callable.
        `conversation_id` matches the conversation and, for a channel, its threads.
        `event` is "createMessage" or "updateMessage". Messages that do not match stay
        available for later calls.
        """
        match = _as_predicate(predicate)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._cond:
            while True:
                for index, message in enumerate(self.messages):
                    if index in self._consumed:
                        continue
                    if conversation_id and not message.in_conversation(conversation_id):
                        continue
                    if event and message.event != event:
                        continue
                    if match(message):
                        self._consumed.add(index)
                        return message
                if self._reader_error is not None:
                    raise RuntimeError("Playground websocket failed") from self._reader_error
                remaining = deadline - loop.time()
                if remaining <= 0:
                    pending = [
                        f"{m.event} in {m.conversation_id}: {m.all_text[:120]!r}"
                        for i, m in enumerate(self.messages)
                        if i not in self._consumed
                    ]
                    raise TimeoutError(
                        f"no bot message matching {predicate!r} (conversation {conversation_id},"
                        f" event {event}) within {timeout}s; not yet consumed: {pending}; "
                        f"failed exchanges: {self.failed_exchanges()}"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._cond.wait(), remaining)

    async def expect_no_message(
        self,
        predicate: Predicate = None,
        timeout: float = 1.0,  # noqa: ASYNC109
        *,
        conversation_id: str | None = None,
    ) -> None:
        """Fail if a matching bot message arrives within `timeout` seconds."""
        try:
            message = await self.next_message(predicate, timeout, conversation_id=conversation_id)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected bot message: {message}")

    async def wait_for_exchange(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """The newest log item (HTTP exchange) matching `predicate`, waiting up to `timeout`.

        An exchange is logged when its HTTP response is complete, i.e. usually *after* the
        bot's replies in that turn have arrived on the conversation websocket.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._cond:
            while True:
                for item in reversed(self.log_items):
                    if predicate(item):
                        return item
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError(f"no matching exchange within {timeout}s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._cond.wait(), remaining)

    def drain(self) -> list[BotMessage]:
        """Mark every message received so far as consumed, and return those not yet seen."""
        fresh = [m for i, m in enumerate(self.messages) if i not in self._consumed]
        self._consumed.update(range(len(self.messages)))
        return fresh

    def failed_exchanges(self) -> list[str]:
        """HTTP exchanges between Playground and bot that answered >= 400 (either way)."""
        failures = []
        for item in self.log_items:
            status = (item.get("response") or {}).get("statusCode")
            if isinstance(status, int) and status >= 400:
                failures.append(
                    f"{item.get('from')} -> {item.get('to')} {item.get('activityName')} "
                    f"{status} {json.dumps((item.get('response') or {}).get('body'))[:300]}"
                )
        return failures

    # ----------------------------------------------------------------- HTTP

    async def _request(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        if self._session is None:
            raise RuntimeError("Playground not started")
        async with self._session.request(method, self.base_url + path, json=body, **kw) as response:
            text = await response.text()
            if response.status >= 400:
                raise PlaygroundError(method, path, response.status, text)
            return json.loads(text) if text.strip() else None

    async def _get_json(self, path: str, **kw: Any) -> Any:
        return await self._request("GET", path, **kw)

    async def config(self) -> dict[str, Any]:
        """`GET /_internal/v1/config` (cached): {"config": {...}, "internalConfig": {...}}."""
        if self._config is None:
            self._config = await self._get_json("/_internal/v1/config")
        return self._config

    @property
    def _cfg(self) -> dict[str, Any]:
        if self._config is None:
            raise RuntimeError("Playground not started")
        return self._config["config"]

    @property
    def current_user_id(self) -> str:
        return self._cfg["currentUser"]["id"] if self._config else ""

    @property
    def bot_id(self) -> str:
        return self._cfg["bot"]["id"]

    @property
    def bot_name(self) -> str:
        return self._cfg["bot"]["name"]

    @property
    def tenant_id(self) -> str:
        return self._cfg["tenantId"]

    @property
    def users(self) -> list[dict[str, Any]]:
        """Current user first, then the five others."""
        return [self._cfg["currentUser"], *self._cfg["users"]]

    def user(self, key: str | None = None) -> dict[str, Any]:
        """A user by id, aadObjectId, full name or given name (case-insensitive); None = current."""
        if key is None:
            return self._cfg["currentUser"]
        wanted = key.casefold()
        for user in self.users:
            names = (user["id"], user["aadObjectId"], user["name"], user["givenName"])
            if wanted in (n.casefold() for n in names):
                return user
        raise LookupError(f"no user {key!r} in {[u['name'] for u in self.users]}")

    def account(self, key: str | None = None) -> dict[str, str]:
        """A channel account ({id, name, aadObjectId}) as Teams puts it in `from`."""
        user = self.user(key)
        return {"id": user["id"], "name": user["name"], "aadObjectId": user["aadObjectId"]}

    @property
    def personal_chat_id(self) -> str:
        """The current user's personal chat with the bot (from the yml)."""
        return self._cfg["personalChat"]["id"]

    @property
    def group_chat_id(self) -> str:
        return self._cfg["groupChats"][0]["id"]

    @property
    def team(self) -> dict[str, Any]:
        return self._cfg["teams"][0]

    @property
    def team_id(self) -> str:
        return self.team["id"]

    @property
    def general_channel_id(self) -> str:
        """The General channel; its conversation id is the team id."""
        return self.team_id

    def channel_id(self, name: str) -> str:
        """A channel's conversation id by name ("General"/"Generelt" or a channel of the yml)."""
        if name.casefold() == "generelt":
            name = "General"
        for channel in self.team["channels"]:
            if channel["name"].casefold() == name.casefold():
                return channel["id"]
        raise LookupError(f"no channel {name!r} in {[c['name'] for c in self.team['channels']]}")

    async def personal_chat(self, user: str | None = None) -> str:
        """The personal chat of `user` with the bot, created on first use.

        For the current user that is the yml's personalChat. For anyone else it is created
        through the Bot Connector API (`POST /_connector/v3/conversations`) exactly as a
        proactive bot would; the id is random per Playground run and the same on repeated
        calls (also when the bot asks for it).
        """
        account = self.user(user)
        if account["id"] == self.current_user_id:
            return self.personal_chat_id
        if account["id"] not in self._personal_chats:
            body = {
                "isGroup": False,
                "bot": {"id": self.bot_id, "name": self.bot_name},
                "members": [{"id": account["id"], "aadObjectId": account["aadObjectId"]}],
                "tenantId": self.tenant_id,
                "channelData": {"tenant": {"id": self.tenant_id}},
            }
            created = await self._request("POST", "/_connector/v3/conversations", body)
            self._personal_chats[account["id"]] = created["id"]
            async with self._cond:
                self.hidden_conversations.add(created["id"])
        return self._personal_chats[account["id"]]

    def _is_channel(self, conversation_id: str) -> bool:
        top = conversation_id.split(";", 1)[0]
        return any(c["id"] == top for c in self.team["channels"])

    def _mention(self, text: str) -> tuple[str, list[dict[str, Any]]]:
        tag = f"<at>{self.bot_name}</at>"
        return f"{tag} {text}", [{"mentioned": {"id": self.bot_id}, "text": tag}]

    async def send_text(
        self,
        conversation_id: str,
        text: str,
        from_id: str | None = None,
        *,
        mention_bot: bool | None = None,
    ) -> dict[str, Any]:
        """Send `text` to the bot in a conversation as a user (id, aadObjectId or name).

        In group chats and channels the bot is @mentioned unless `mention_bot=False` (the
        Playground does not call the bot otherwise). As the current user this is what the
        web UI sends; the answer is {"messageId", "timestamp"[, "postConversationId"]}
        (a channel post starts a thread "<channel>;messageid=<messageId>"). As anyone else,
        or in a chat the harness created for another user, it is a custom activity and
        the answer is the activity sent.
        """
        sender = self.user(from_id)
        owner = {chat: user for user, chat in self._personal_chats.items()}
        owner[self.personal_chat_id] = self.current_user_id
        if conversation_id in owner and owner[conversation_id] != sender["id"]:
            raise ValueError(
                f"{conversation_id} is the personal chat of {owner[conversation_id]}, "
                f"not of {sender['id']}: use `await pg.personal_chat(user)`"
            )
        personal = conversation_id in owner or conversation_id in self.hidden_conversations
        mention = (not personal) if mention_bot is None else mention_bot
        mentions: list[dict[str, Any]] = []
        if mention:
            text, mentions = self._mention(text)
        if sender["id"] == self.current_user_id and conversation_id not in self.hidden_conversations:
            body: dict[str, Any] = {
                "from": {"id": sender["id"]},
                "text": text,
                "textFormat": "plain",
            }
            if mentions:
                body["mentions"] = mentions
            path = f"/_conversation/v1/conversations/{conversation_id}/messages"
            return await self._request("POST", path, body)
        entities: list[dict[str, Any]] = [
            {
                "type": "mention",
                "mentioned": {"id": self.bot_id, "name": self.bot_name},
                "text": m["text"],
            }
            for m in mentions
        ]
        entities.append({"type": "clientInfo", "locale": "en-US", "country": "US", "platform": "Web"})
        overrides: dict[str, Any] = {
            "type": "message",
            "text": text,
            "textFormat": "plain",
            "entities": entities,
            "locale": "en-US",
        }
        if self._is_channel(conversation_id):
            top = conversation_id.split(";", 1)[0]
            overrides["channelData"] = {
                "teamsChannelId": top,
                "teamsTeamId": self.team_id,
                "team": {"id": self.team_id},
                "channel": {"id": top},
            }
        return await self.custom_activity(None, conversation_id, from_id=sender["id"], **overrides)

    async def submit(
        self,
        conversation_id: str,
        reply_to_id: str,
        value: Mapping[str, Any],
        from_id: str | None = None,
    ) -> None:
        """Action.Submit as the web UI sends it: `POST /_conversation/v1/submit`.

        Body {"conversation": {"id"}, "replyToId": <card message id>, "value": {...data and
        inputs}, "from": {"id"}}. The bot receives a `message` activity with that `value`
        and `replyToId`, from that user. Replies arrive on the websocket.
        """
        body = {
            "conversation": {"id": conversation_id},
            "replyToId": reply_to_id,
            "value": dict(value),
            "from": {"id": self.user(from_id)["id"]},
        }
        await self._request("POST", "/_conversation/v1/submit", body)

    async def invoke(
        self,
        conversation_id: str,
        reply_to_id: str,
        verb: str,
        data: Mapping[str, Any] | None = None,
        from_id: str | None = None,
        *,
        title: str | None = None,
    ) -> InvokeResult:
        """Action.Execute as the web UI sends it: `POST /_conversation/v1/invoke`.

        Body {"name": "adaptiveCard/action", "value": {"action": {"type": "Action.Execute",
        "title", "verb", "data"}}, "from": {"id"}, "conversation": {"id"}, "replyToId"}.
        The answer is the bot's invoke response body {"type", "value"}; with a card type
        the Playground also replaces the card of message `reply_to_id` (no websocket
        event). A bot answering >= 400 makes this raise PlaygroundError (HTTP 502).
        """
        action: dict[str, Any] = {"type": "Action.Execute", "verb": verb, "data": dict(data or {})}
        if title is not None:
            action["title"] = title
        body = {
            "name": "adaptiveCard/action",
            "value": {"action": action},
            "from": {"id": self.user(from_id)["id"]},
            "conversation": {"id": conversation_id},
            "replyToId": reply_to_id,
        }
        answer = await self._request("POST", "/_conversation/v1/invoke", body) or {}
        return InvokeResult(type=answer.get("type"), value=answer.get("value"))

    async def click(
        self,
        message: BotMessage,
        title_or_verb: str,
        inputs: Mapping[str, Any] | None = None,
        from_id: str | None = None,
        *,
        card_index: int = 0,
        validate_required: bool = True,
    ) -> InvokeResult | None:
        """Press a button of a card in `message` like a user would.

        Fills `inputs` into the card's inputs (others keep their defaults), builds the data
        as the renderer does, and sends an invoke (Action.Execute, returns InvokeResult) or
        a submit (Action.Submit, returns None).
        """
        cards = message.cards
        if card_index >= len(cards):
            raise LookupError(f"message has {len(cards)} cards: {message}")
        if message.message_id is None:
            raise ValueError("message has no id (the Playground split it); cannot act on it")
        card = cards[card_index]
        action = find_action(card, title_or_verb)
        payload = action_payload(card, action, inputs, validate_required=validate_required)
        if action["type"] == "Action.Execute":
            return await self.invoke(
                message.conversation_id,
                message.message_id,
                action.get("verb") or "",
                payload,
                from_id,
                title=action.get("title"),
            )
        if action["type"] == "Action.Submit":
            await self.submit(message.conversation_id, message.message_id, payload, from_id)
            return None
        raise ValueError(f"cannot click {action['type']}")

    async def open_personal_chat(self, conversation_id: str | None = None) -> None:
        """What the web UI does when the page opens: `POST /_debug/conversation/{id}/installation`.

        The Playground then sends the bot an installationUpdate (action "add") and a
        conversationUpdate with membersAdded [current user, bot], both from the current
        user, in the current user's personal chat (default).
        """
        conversation = conversation_id or self.personal_chat_id
        await self._request("POST", f"/_debug/conversation/{conversation}/installation", {})

    async def activity_template(self, conversation_id: str, activity_type: str | None = None) -> dict[str, Any]:
        """`GET /_internal/v1/customActivities/template?conversationId=…&type=…`.

        Types: install, uninstall, botAdded, userAdded, botRemoved, userRemoved,
        channelCreated, channelRenamed, channelDeleted, teamRenamed, teamDeleted,
        sendEmail, mentionInWord; None gives a bare activity of type "<custom-activity-type>".
        Templates are always from the current user.
        """
        params = {"conversationId": conversation_id}
        if activity_type:
            params["type"] = activity_type
        return await self._get_json("/_internal/v1/customActivities/template", params=params)

    async def send_activity(self, activity: Mapping[str, Any]) -> None:
        """`POST /_internal/v1/customActivities`: the body goes to the bot unchanged.

        The Playground answers 200 before it calls the bot; the bot's HTTP status shows
        up in `log_items` / `failed_exchanges()`.
        """
        await self._request("POST", "/_internal/v1/customActivities", dict(activity))

    async def custom_activity(
        self,
        activity_type: str | None,
        conversation_id: str,
        *,
        from_id: str | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """Fetch a template, replace `from` (if given) and top-level keys, send it.

        Example: `custom_activity("userAdded", pg.team_id, membersAdded=[pg.account("Nina")])`.
        Returns the activity sent.
        """
        activity = await self.activity_template(conversation_id, activity_type)
        activity["id"] = str(uuid.uuid4())
        if from_id is not None:
            activity["from"] = self.account(from_id)
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(activity.get(key), dict):
                activity[key] = {**activity[key], **value}
            else:
                activity[key] = value
        await self.send_activity(activity)
        return activity
