"""HTTP load for the API benchmarks: a lean keep-alive HTTP/1.1 client, a closed-loop driver
(N clients, each sends its next request when the last is answered) and an open-loop driver
(each request leaves at its scheduled time, whatever earlier ones are doing; its latency runs
from that scheduled time, so a slow server cannot hide its queue from the figures).

Why not httpx: in this environment its async client spends 2-5 ms of CPU per request (about
40 % of it in httpcore retrying ``import sniffio``, which is not installed, on every call; much
of the rest in anyio's socket layer), so on a 2-core machine the load generator would eat the
CPU the server needs. This client costs about 0.1 ms per request; it speaks just enough HTTP/1.1
for uvicorn's answers (Content-Length bodies, keep-alive).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024


class HttpError(Exception):
    """The connection failed or the answer was not HTTP/1.1 as this client reads it."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    retry_after: str | None = None
    """The ``Retry-After`` header, if any (a shed answer must carry one)."""


def encode_request(method: str, path: str, host: str, headers: dict[str, str],
                   body: bytes = b"") -> bytes:
    """The request's bytes (keep-alive is HTTP/1.1's default)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def header_value(head: bytes, name: str) -> str | None:
    """The value of header ``name`` (lower case) in a response head, None if absent."""
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def parse_head(head: bytes) -> tuple[int, int, bool]:
    """(status, content length, keep alive) of a response head ending in CRLF CRLF."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise HttpError(f"not an HTTP/1.x status line: {lines[0]!r}")
    status, length, keep_alive = int(parts[1]), 0, parts[0] == "HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            raise HttpError("chunked answers are not supported by this client")
        elif name == "connection":
            keep_alive = value.strip().lower() == "keep-alive"
    if not 0 <= length <= MAX_BODY_BYTES:
        raise HttpError(f"content-length {length}")
    return status, length, keep_alive


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> tuple[Answer, bool]:
        self.writer.write(request)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
            raise HttpError(f"connection closed or head too long: {error}") from error
        status, length, keep_alive = parse_head(head)
        body = await self.reader.readexactly(length) if length else b""
        retry_after = header_value(head, "retry-after") if status in (429, 503) else None
        return Answer(status, body, retry_after), keep_alive

    def close(self) -> None:
        self.writer.close()


IDLE_SECONDS = 2.0
"""A connection idle longer than this is closed rather than reused: uvicorn closes idle
keep-alive connections after 5 s, and a request sent on one it just closed would fail."""


@dataclass
class Client:
    """A pool of up to ``max_connections`` keep-alive connections to one host:port.

    ``timeout_seconds`` bounds one exchange on a connection, not the wait for a free one: in
    the open loop that wait is part of a request's latency, as it would be for a real client."""

    host: str
    port: int
    max_connections: int = 256
    timeout_seconds: float = 10.0
    _idle: list[tuple[_Connection, float]] = field(default_factory=list)
    _slots: asyncio.Semaphore | None = None

    async def request(self, method: str, path: str, headers: dict[str, str],
                      body: bytes = b"") -> Answer:
        """Send and read one answer; HttpError or TimeoutError when it fails."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_connections)
        request = encode_request(method, path, f"{self.host}:{self.port}", headers, body)
        async with self._slots:
            connection = await self._connection()
            try:
                answer, keep_alive = await asyncio.wait_for(connection.exchange(request),
                                                            self.timeout_seconds)
            except (HttpError, TimeoutError):
                connection.close()
                raise
            except (OSError, asyncio.IncompleteReadError) as error:
                connection.close()
                raise HttpError(repr(error)) from error
            except BaseException:
                connection.close()
                raise
            if keep_alive:
                self._idle.append((connection, time.monotonic()))
            else:
                connection.close()
            return answer

    async def _connection(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            connection, last_used = self._idle.pop()
            if now - last_used < IDLE_SECONDS:
                return connection
            connection.close()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=MAX_HEADER_BYTES),
                self.timeout_seconds)
        except OSError as error:
            raise HttpError(f"cannot connect: {error}") from error
        return _Connection(reader, writer)

    def close(self) -> None:
        while self._idle:
            self._idle.pop()[0].close()


@dataclass(frozen=True)
class Outcome:
    """One request's fate: HTTP status (0 for a connection error or timeout, -1 when the
    generator had too many requests outstanding to send it), when it was scheduled and when it
    was answered (seconds from the start), and the answer's body."""

    status: int
    scheduled: float
    answered: float
    body: bytes = b""
    retry_after: str | None = None

    @property
    def latency(self) -> float:
        return self.answered - self.scheduled


Send = Callable[[int], Awaitable[Answer]]
"""Sends request number ``index`` and returns its answer."""


async def open_loop(send: Send, schedule: Sequence[float], max_outstanding: int,
                    keep_body: Callable[[int], bool] = lambda status: False) -> list[Outcome]:
    """Send request ``i`` at ``schedule[i]`` seconds from now, never waiting for answers.

    At most ``max_outstanding`` requests are in the air; one due while that many are, is not
    sent and counts as status -1 (the generator's bound, so the benchmark stays bounded in
    memory). Bodies are kept for the statuses ``keep_body`` selects."""
    start = time.monotonic()
    outcomes: list[Outcome | None] = [None] * len(schedule)
    pending: set[asyncio.Task[None]] = set()

    async def one(index: int, scheduled: float) -> None:
        retry_after = None
        try:
            answer = await send(index)
            status, body = answer.status, answer.body if keep_body(answer.status) else b""
            retry_after = answer.retry_after
        except (HttpError, TimeoutError):
            status, body = 0, b""
        outcomes[index] = Outcome(status, scheduled, time.monotonic() - start, body,
                                  retry_after)

    for index, offset in enumerate(schedule):
        delay = start + offset - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(pending) >= max_outstanding:
            outcomes[index] = Outcome(-1, offset, time.monotonic() - start)
            continue
        task = asyncio.create_task(one(index, offset))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending)
    return [outcome for outcome in outcomes if outcome is not None]


async def closed_loop(send: Send, clients: int, seconds: float) -> list[Outcome]:
    """``clients`` loops, each sending its next request as soon as the last is answered, for
    ``seconds``; each outcome's ``scheduled`` is when it was sent."""
    start = time.monotonic()
    outcomes: list[Outcome] = []
    counter = iter(range(10**9))

    async def loop() -> None:
        while (sent := time.monotonic() - start) < seconds:
            try:
                status = (await send(next(counter))).status
            except (HttpError, TimeoutError):
                status = 0
            outcomes.append(Outcome(status, sent, time.monotonic() - start))

    await asyncio.gather(*(loop() for _ in range(clients)))
    return outcomes
