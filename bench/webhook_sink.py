"""The end-to-end benchmark's webhook endpoint: answers 200 to every request, keeps nothing.

    python -m bench.webhook_sink --port PORT

A merchant's server stand-in, as lean as it can be so that its CPU does not crowd the
stack it measures: an asyncio HTTP/1.1 server on 127.0.0.1 that reads each request (head and
``Content-Length`` body) and answers ``200`` with an empty body, keeping the connection open.
When a delivery succeeded is what the sender records itself (``webhook_attempts``); this only
has to answer. It exits on SIGTERM or after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
MAX_HEAD_BYTES, MAX_BODY_BYTES = 64 * 1024, 4 * 1024 * 1024


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEAD_BYTES:
                break
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if not 0 <= length <= MAX_BODY_BYTES:
                break
            await reader.readexactly(length)
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def main(port: int, max_seconds: float) -> None:
    server = await asyncio.start_server(serve_connection, "127.0.0.1", port,
                                        limit=MAX_HEAD_BYTES + 1)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max_seconds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.max_seconds))
