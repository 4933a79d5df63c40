"""A webhook receiver for tests: a threaded HTTP server on 127.0.0.1 that records every POST.

Each path answers from its own script — a list of status codes, or ``HANG`` to hold the request
open until ``release_hung()`` (at most ``HANG_LIMIT_SECONDS``) — and then ``default`` (200).
One thread per request, so a hanging path never stalls another path.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = -1
HANG_LIMIT_SECONDS = 30.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes
    at: float
    """time.monotonic() when it arrived."""


class Receiver:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._scripts: dict[str, list[int]] = defaultdict(list)
        self._defaults: dict[str, int] = {}
        self._received: dict[str, list[Received]] = defaultdict(list)
        self._release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, answers: list[int], default: int = 200) -> None:
        """Answer the next requests to ``path`` with ``answers`` in turn, then ``default``."""
        with self._lock:
            self._scripts[path] = list(answers)
            self._defaults[path] = default

    def received(self, path: str) -> list[Received]:
        with self._lock:
            return list(self._received[path])

    def wait_for(self, path: str, count: int, timeout: float) -> list[Received]:
        """The first ``count`` requests to ``path``; AssertionError if they do not come in time."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._received[path]) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{path}: {len(self._received[path])} of {count} requests in {timeout} s")
                self._lock.wait(remaining)
            return list(self._received[path])

    def release_hung(self) -> None:
        self._release.set()

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def _answer_for(self, path: str) -> int:
        with self._lock:
            script = self._scripts[path]
            return script.pop(0) if script else self._defaults.get(path, 200)

    def _record(self, received: Received) -> None:
        with self._lock:
            self._received[received.path].append(received)
            self._lock.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:  # cut off (the sender was killed): never delivered
                    self.close_connection = True
                    return
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver._record(Received(self.path, headers, body, time.monotonic()))
                status = receiver._answer_for(self.path)
                if status == HANG:
                    receiver._release.wait(HANG_LIMIT_SECONDS)
                    status = 200
                answer = b'{"received": true}' if status < 300 else b'{"error": "scripted"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
