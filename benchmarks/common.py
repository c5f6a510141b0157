"""Shared helpers for the HTTP benchmarks: a fast Connector stub, process control, a bounded
closed-loop load generator, percentiles, a table, and what machine this ran on.

Everything talks to 127.0.0.1 only, and every loop is bounded in requests and time.

- `FastStub`: the Bot Connector the bot replies to (the activity's `serviceUrl`). Unlike
  `tests/connector_stub.py` it has no Teams rate limits, recording or fault injection: it
  answers every send/reply/update at once (201/200 with an id) and counts (also the error
  cards the bot sends), so it measures the bot, not the stub. It runs in its own process (`start_stub`).
- `start_server(cmd, env, port)`: a bot in a subprocess, waited for on `/healthz`.
- `run_load(...)`: `concurrency` simulated users, each sending one request after the other
  (closed loop), after a warm-up; stops at `max_requests` or `duration` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


# -- ports, processes ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


async def wait_healthy(url: str, within: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode} before it was healthy")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} not healthy within {within} s")


@contextlib.contextmanager
def server_process(cmd: Sequence[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start `cmd` (stderr/stdout to `log_path`); stop it (SIGTERM, then SIGKILL) afterwards."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(list(cmd), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (and its threads) has used so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def base_env(**extra: str) -> dict[str, str]:
    """This environment without the SDK's credentials, in local mode (asked for), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTIONS__", "CONNECTIONSMAP__"))}
    env["LOCAL_MODE"] = "true"
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


# -- the fast Connector stub ------------------------------------------------------------------


# The bots' "something went wrong" answers: a turn that failed still answers HTTP 200/202
# for a message, so the stub counts these to make such failures visible.
ERROR_MARKERS = (b"Noe gikk galt", b"Something went wrong", b"echo: error")


class FastStub:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {"send": 0, "reply": 0, "update": 0, "other": 0, "error_cards": 0}
        self._ids = 0

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            if any(marker in body for marker in ERROR_MARKERS):
                self.counts["error_cards"] += 1
            tail = request.match_info.get("tail", "")
            parts = [p for p in tail.split("/") if p]
            if request.method == "PUT":
                self.counts["update"] += 1
                return web.json_response({"id": parts[-1] if parts else ""}, status=200)
            if request.method == "POST" and len(parts) == 2 and parts[1] == "activities":
                self.counts["send"] += 1
            elif request.method == "POST" and len(parts) == 3:
                self.counts["reply"] += 1
            else:
                self.counts["other"] += 1
            self._ids += 1
            return web.json_response({"id": f"fast-{self._ids}"}, status=201)

        async def counts(_request: web.Request) -> web.Response:
            return web.json_response(self.counts)

        async def reset(_request: web.Request) -> web.Response:
            for key in self.counts:
                self.counts[key] = 0
            return web.json_response(self.counts)

        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_get("/_counts", counts)
        app.router.add_post("/_reset", reset)
        app.router.add_route("*", "/v3/conversations{tail:.*}", handle)
        return app


def _stub_main(port: int) -> None:
    web.run_app(FastStub().app(), host=HOST, port=port, print=None, access_log=None, handle_signals=True)


@contextlib.contextmanager
def start_stub() -> Iterator[str]:
    """A FastStub in its own process; yields its URL (the bot's serviceUrl)."""
    port = free_port()
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=_stub_main, args=(port,), daemon=True)
    proc.start()
    try:
        url = f"http://{HOST}:{port}/"
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
                break
            if time.monotonic() > deadline or not proc.is_alive():
                raise RuntimeError("stub did not start")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.join(timeout=10)


async def stub_counts(stub_url: str, reset: bool = False) -> dict[str, int]:
    async with aiohttp.ClientSession() as http:
        if reset:
            async with http.post(stub_url + "_reset") as resp:
                return dict(await resp.json())
        async with http.get(stub_url + "_counts") as resp:
            return dict(await resp.json())


# -- the load generator ---------------------------------------------------------------------


# (user index, request number) → activity JSON
MakeActivity = Callable[[int, int], dict[str, Any]]
# (HTTP status, body bytes) → None if fine, else a short reason
Check = Callable[[int, bytes], str | None]


@dataclass
class LoadResult:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_reasons: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    concurrency: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requests": self.requests,
            "errors": self.errors,
            "error_reasons": self.error_reasons,
            "elapsed_s": round(self.elapsed_s, 3),
            "concurrency": self.concurrency,
            "throughput_rps": round(self.throughput, 1),
            "p50_ms": round(self.percentile(50), 1),
            "p90_ms": round(self.percentile(90), 1),
            "p99_ms": round(self.percentile(99), 1),
            "max_ms": round(max(self.latencies_ms, default=0.0), 1),
            **self.extra,
        }


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0–100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


async def run_load(
    name: str,
    url: str,
    make_activity: MakeActivity,
    check: Check,
    *,
    concurrency: int = 20,
    max_requests: int = 2000,
    duration: float = 20.0,
    warmup_requests: int = 100,
    request_timeout: float = 30.0,
    rate: float | None = None,
    after_warmup: Callable[[], Awaitable[Any]] | None = None,
) -> LoadResult:
    """Closed loop: `concurrency` users, each waits for its answer before the next request.

    With `rate`, an open loop instead: arrivals at `rate` per second (see `open_loop`).
    Warm-up first (`warmup_requests` in total, not measured). Then measured requests until
    `max_requests` have been started or `duration` seconds have passed; requests in flight
    at the end are awaited and counted. Every request is bounded by `request_timeout`.
    """
    result = LoadResult(name=name, concurrency=concurrency)
    conn = aiohttp.TCPConnector(limit=concurrency * 2, force_close=False)
    client_timeout = aiohttp.ClientTimeout(total=request_timeout)
    headers = {"Content-Type": "application/json"}
    seq = [0] * concurrency

    async with aiohttp.ClientSession(connector=conn, timeout=client_timeout) as http:

        async def one(user: int) -> tuple[float, str | None]:
            seq[user] += 1
            payload = json.dumps(make_activity(user, seq[user]))
            start = time.perf_counter()
            try:
                async with http.post(url, data=payload, headers=headers) as resp:
                    body = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError, OSError) as err:
                return (time.perf_counter() - start) * 1000, type(err).__name__
            return (time.perf_counter() - start) * 1000, check(status, body)

        # Warm-up: same users, not measured.
        left = [warmup_requests]
        warm_errors = [0]

        async def warm(user: int) -> None:
            while left[0] > 0:
                left[0] -= 1
                _, problem = await one(user)
                warm_errors[0] += bool(problem)

        await asyncio.gather(*(warm(u) for u in range(concurrency)))
        result.extra["warmup_ok"] = warmup_requests - warm_errors[0]
        if after_warmup is not None:
            await after_warmup()

        started = [0]
        t0 = time.perf_counter()
        deadline = t0 + duration

        async def user_loop(user: int) -> None:
            while started[0] < max_requests and time.perf_counter() < deadline:
                started[0] += 1
                ms, problem = await one(user)
                result.latencies_ms.append(ms)
                if problem:
                    result.errors += 1
                    result.error_reasons[problem] = result.error_reasons.get(problem, 0) + 1

        async def open_loop() -> None:
            # Arrivals every 1/rate s whatever the answers; at most `concurrency` in flight
            # (one per user). Latency counts from the scheduled arrival, so waiting for a
            # free user is included (no coordinated omission).
            assert rate
            free: asyncio.Queue[int] = asyncio.Queue()
            for u in range(concurrency):
                free.put_nowait(u)
            tasks: list[asyncio.Task[None]] = []

            async def fire(user: int, scheduled: float) -> None:
                ms, problem = await one(user)
                free.put_nowait(user)
                del ms  # the request's own time; what the user waited counts from `scheduled`
                result.latencies_ms.append((time.perf_counter() - scheduled) * 1000)
                if problem:
                    result.errors += 1
                    result.error_reasons[problem] = result.error_reasons.get(problem, 0) + 1

            n = 0
            while n < max_requests:
                scheduled = t0 + n / rate
                if scheduled >= deadline:
                    break
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                user = await free.get()
                tasks.append(asyncio.create_task(fire(user, scheduled)))
                n += 1
            await asyncio.gather(*tasks)

        if rate:
            await open_loop()
        else:
            await asyncio.gather(*(user_loop(u) for u in range(concurrency)))
        result.elapsed_s = time.perf_counter() - t0
        result.extra["mode"] = f"open {rate:g}/s" if rate else "closed"
    return result


# -- output -----------------------------------------------------------------------------------


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A Markdown table of `rows` with `columns` = [(key, heading)]."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    rule = "|" + "|".join("---:" if i else "---" for i in range(len(columns))) + "|"
    lines = [head, rule]
    for row in rows:
        cells = []
        for key, _ in columns:
            value = row.get(key, "")
            cells.append(f"{value:,.1f}".replace(",", " ") if isinstance(value, float) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> dict[str, str]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": str(os.cpu_count() or "?"),
        "cpu": model or platform.processor() or "?",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


async def gather_bounded(coros: Sequence[Awaitable[Any]], limit: int) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def run(c: Awaitable[Any]) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(run(c) for c in coros))


async def echo_baseline(*, concurrency: int, max_requests: int, duration: float, prefix: str) -> dict[str, Any]:
    """The plain echo bot (same SDK, same machine, same run) under `run_load`: the figure every
    benchmark prints its own next to."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix=f"{prefix}-echo-") as tmp, start_stub() as stub_url:
        port = free_port()
        cmd = [sys.executable, "benchmarks/echo_bot.py", "--host", HOST, "--port", str(port)]
        with server_process(cmd, base_env(LOG_LEVEL="WARNING"), Path(tmp) / "echo.log") as proc:
            await wait_healthy(f"http://{HOST}:{port}/healthz", proc=proc)

            def activity(user: int, n: int) -> dict[str, Any]:
                return {
                    "type": "message",
                    "id": f"m-{user}-{n}",
                    "channelId": "msteams",
                    "serviceUrl": stub_url,
                    "from": {"id": f"29:u{user}", "name": f"U{user}"},
                    "recipient": {"id": "28:bot", "name": "bot"},
                    "conversation": {"id": f"a:c{user}", "conversationType": "personal"},
                    "text": f"hei {n}",
                    "textFormat": "plain",
                }

            result = await run_load(
                "echo bot: message",
                f"http://{HOST}:{port}/api/messages",
                activity,
                lambda status, body: None if status in (200, 201, 202) else f"HTTP {status}",
                concurrency=concurrency,
                max_requests=max_requests,
                duration=duration,
                warmup_requests=50,
            )
    return result.as_dict()


def add_outbox_bench_args(parser: Any) -> None:
    """The options the outbox throughput benchmarks (records, archive) share: the echo run next
    to them, the throttled server's Retry-After, a time limit, the database and a JSON copy."""
    parser.add_argument("--retry-after", default="1", help="the Retry-After of a throttled call (default 1 s)")
    parser.add_argument("--time-limit", type=float, default=300.0, help="give up after this many seconds")
    parser.add_argument("--concurrency", type=int, default=10, help="echo users (default 10)")
    parser.add_argument("--echo-requests", type=int, default=2000)
    parser.add_argument("--echo-duration", type=float, default=10.0)
    parser.add_argument("--database-url", default="", help="an empty database (default a temp SQLite file)")
    parser.add_argument("--json", help="also write the figures to this file")


def print_machine_and_echo(info: dict[str, str], echo: dict[str, Any], concurrency: int) -> None:
    print(f"machine: {info['nproc']} cores, {info['cpu']}, Python {info['python']}")
    print(
        f"echo bot: {echo['requests']} requests, {echo['throughput_rps']} req/s, p50 {echo['p50_ms']} ms, "
        f"p99 {echo['p99_ms']} ms, errors {echo['errors']} ({concurrency} users, closed loop)"
    )
