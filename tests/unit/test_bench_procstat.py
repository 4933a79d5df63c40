"""Finding a shared service's processes by the port it listens on, for the benchmarks' CPU per
payment when the broker and Redis were started by another checkout (no pid file here)."""

from __future__ import annotations

import os
import socket

from bench.procstat import parse_listening_inodes, pids_listening

TCP_TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2384 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7001 1
   1: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7002 1
   2: 0100007F:C350 0100007F:2384 01 00000000:00000000 00:00000000 00000000     0        0 7003 1
   3: 00000000:2384 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7004 1
"""


def test_only_listening_sockets_on_the_port_count() -> None:
    # 0x2384 = 9092 (Kafka), 0x18EB = 6379 (Redis); row 2 is a connection *to* 9092.
    assert parse_listening_inodes(TCP_TABLE, 9092) == {7001, 7004}
    assert parse_listening_inodes(TCP_TABLE, 6379) == {7002}
    assert parse_listening_inodes(TCP_TABLE, 5432) == set()


def test_the_process_listening_on_a_port_is_found() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert os.getpid() in pids_listening(port)
    assert os.getpid() not in pids_listening(port)
