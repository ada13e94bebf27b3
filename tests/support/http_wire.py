"""Reading HTTP/1.1 requests off a raw socket, for loopback test servers that script their answers byte by byte."""

from __future__ import annotations

import socket


def read_request(conn: socket.socket, buf: bytes) -> tuple[bytes, bytes, bytes] | None:
    """The next request on ``conn`` as (head, body, bytes left over), reading past ``buf`` (bytes already received);
    None when the peer closed the connection before a whole head arrived. The body is framed by Content-Length."""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))  # fmt: skip
    while len(buf) < length:
        buf += conn.recv(65536)
    return head, buf[:length], buf[length:]
