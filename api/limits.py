"""Request hygiene before any handler runs: a body larger than ``MAX_BODY_BYTES`` is 413, and a
body that is not JSON (by its Content-Type) is 415, both with the API's error object.

The size is checked on the declared Content-Length and again while the body streams in, so a
chunked upload cannot get around it.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body

MAX_BODY_BYTES = 64 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyTooLarge(Exception):
    pass


class RequestLimits:
    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await _answer(send, 413, "body_too_large",
                          f"The request body exceeds {self.max_body_bytes} bytes.")
            return
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        has_body = length not in (None, b"0") or b"transfer-encoding" in headers
        if has_body and content_type and content_type != b"application/json":
            await _answer(send, 415, "unsupported_media_type",
                          "Send the request body as JSON (Content-Type: application/json).")
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except BodyTooLarge:
            await _answer(send, 413, "body_too_large",
                          f"The request body exceeds {self.max_body_bytes} bytes.")


async def _answer(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body("invalid_request_error", code, message, None)).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
