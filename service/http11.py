"""A small HTTP/1.1 client for JSON-RPC POSTs to a configured node (the payment networks' reads,
``payments.sources.JsonRpcSource``; ``getNonce`` per submission, ``chain.eas_reads``): a request goes out in a single
write, an answer is read with its framing (``Content-Length``, chunked, or until the node closes), connections are
kept alive in a :class:`ConnectionPool`. Not for attacker-chosen URLs (no address policy: those go through
``identity.fetcher``).

Why not ``http.client``: it writes a request's head and its body in two sends — two packets, two wake-ups of the
node (~150 µs each inside a submission on a busy loopback, ``bench.payments``) — and parses the answer's headers
with the email package. A payment read is sent and taken on a review submission's critical path, where those two
costs were a large part of what the check added.

What is understood of an answer: the status line (``HTTP/1.x``), interim ``1xx`` answers (skipped), the framing
headers (RFC 9112 §6.3: ``Transfer-Encoding: chunked``, then ``Content-Length``, else the body runs until the node
closes) and ``Connection`` (``close``; an HTTP/1.0 answer without ``keep-alive``). Nothing else: the request asks
for no content coding (``Accept-Encoding: identity``) and an answer is one bounded JSON body.
"""

from __future__ import annotations

import base64
import re
import select
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

MAX_HEAD = 64 * 1024  # status line and headers of one answer
MAX_BODY = 32 * 1024 * 1024  # one answer's body (a receipt with many logs is far smaller)
MAX_INTERIM = 8  # 1xx answers before the final one
_CHUNK = 65536
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")


class ConnectionClosed(ConnectionError):
    """The node closed the connection before any byte of the answer (e.g. a kept-alive connection it had dropped
    while idle: the request may be sent again on a new one)."""


class BadResponse(Exception):
    """The answer is not an HTTP/1.x answer this client can frame (or is larger than the limits)."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    will_close: bool  # the node closes the connection after this answer: do not reuse it


def post_request(*, target: str, host: str, body: bytes, extra_headers: str = "") -> bytes:
    """The bytes of a ``POST`` of a JSON ``body`` to ``target`` on ``host`` (the ``Host`` header: host[:port]).
    ``extra_headers``: complete header lines, each ending in CRLF."""
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAccept: application/json\r\n"
        f"Accept-Encoding: identity\r\n{extra_headers}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class Http11Connection:
    """A client connection to ``host``:``port`` (TLS when ``tls`` is given; the certificate is checked for
    ``host``). Connects on the first ``send``; one request at a time. Not thread-safe: one owner at a time."""

    def __init__(self, *, host: str, port: int, timeout: float, tls: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.timeout, self._tls = host, port, timeout, tls
        self.sock: socket.socket | None = None
        self._buf = bytearray()

    def close(self) -> None:
        sock, self.sock = self.sock, None
        self._buf.clear()
        if sock is not None:
            sock.close()

    def reusable(self) -> bool:
        """True when this idle connection can carry another request: connected, nothing left over from the last
        answer, and nothing arrived since (a readable idle socket means the node closed it or sent something
        unasked, such as a 408 before closing)."""
        if self.sock is None or self._buf:
            return False
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def send(self, request: bytes) -> None:
        """Write ``request`` (head and body together), connecting first when not connected.

        Raises:
            OSError: could not connect (ssl.SSLError: the TLS handshake failed) or write.
        """
        if self.sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self._tls is not None:
                    sock = self._tls.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
            self.sock = sock
            self._buf.clear()
        self.sock.sendall(request)

    def response(self) -> Response:
        """Read the answer to the request sent.

        Raises:
            ConnectionClosed: nothing came back, the connection was closed.
            OSError: reading failed (TimeoutError included).
            BadResponse: not an HTTP/1.x answer, bad framing, an answer closed midway, or over the limits.
        """
        if self.sock is None:
            raise ConnectionClosed("not connected")
        for _ in range(MAX_INTERIM + 1):
            version, status, headers = _parse_head(self._head())
            if not 100 <= status < 200:
                break  # 1xx: an interim answer, the real one follows
        else:
            raise BadResponse("too many interim (1xx) answers")
        connection = {token.strip() for token in headers.get(b"connection", b"").lower().split(b",")}
        will_close = b"close" in connection or (version == b"HTTP/1.0" and b"keep-alive" not in connection)
        encoding = headers.get(b"transfer-encoding")
        length = headers.get(b"content-length")
        if status in (204, 304):
            body = b""
        elif encoding is not None:
            will_close = will_close or length is not None  # both framings given: not to be trusted further
            if encoding.lower().rsplit(b",", 1)[-1].strip() != b"chunked":
                raise BadResponse(f"unsupported transfer coding {encoding!r}")
            body = self._chunked()
        elif length is not None:
            if not length.isdigit():
                raise BadResponse(f"bad Content-Length {length!r}")
            body = self._exactly(int(length))
        else:
            body, will_close = self._until_closed(), True
        if will_close:
            self.close()
        return Response(status=status, body=body, will_close=will_close)

    def _recv(self) -> bytes:
        assert self.sock is not None
        return self.sock.recv(_CHUNK)

    def _fill(self, what: str) -> None:
        chunk = self._recv()
        if not chunk:
            raise BadResponse(f"the node closed the connection inside the {what}")
        self._buf += chunk

    def _head(self) -> bytes:
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            if len(self._buf) > MAX_HEAD:
                raise BadResponse("the answer's head is too large")
            chunk = self._recv()
            if not chunk:
                if not self._buf:
                    raise ConnectionClosed("the node closed the connection without answering")
                raise BadResponse("the node closed the connection inside the answer's head")
            self._buf += chunk
        head = bytes(self._buf[:end])
        del self._buf[: end + 4]
        return head

    def _exactly(self, size: int) -> bytes:
        if size > MAX_BODY:
            raise BadResponse("the answer's body is too large")
        while len(self._buf) < size:
            self._fill("answer's body")
        body = bytes(self._buf[:size])
        del self._buf[:size]
        return body

    def _line(self) -> bytes:
        while (end := self._buf.find(b"\r\n")) < 0:
            if len(self._buf) > MAX_HEAD:
                raise BadResponse("a chunk line is too long")
            self._fill("chunked body")
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_text = self._line().split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise BadResponse(f"bad chunk size {size_text[:20]!r}")
            size = int(size_text, 16)
            if total + size > MAX_BODY:
                raise BadResponse("the answer's body is too large")
            if size == 0:
                while self._line():  # trailer fields, up to the empty line
                    pass
                return b"".join(parts)
            parts.append(self._exactly(size))
            total += size
            if self._exactly(2) != b"\r\n":
                raise BadResponse("a chunk does not end with CRLF")

    def _until_closed(self) -> bytes:
        while True:
            if len(self._buf) > MAX_BODY:
                raise BadResponse("the answer's body is too large")
            if not (chunk := self._recv()):
                break
            self._buf += chunk
        body = bytes(self._buf)
        self._buf.clear()
        return body


def _parse_head(head: bytes) -> tuple[bytes, int, dict[bytes, bytes]]:
    lines = head.split(b"\r\n")
    parts = lines[0].split(None, 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0") or len(parts[1]) != 3 or not parts[1].isdigit():
        raise BadResponse(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise BadResponse(f"bad header line {line[:80]!r}")
        key, value = name.lower(), value.strip()
        if key in headers:
            if key == b"content-length" and headers[key] != value:
                raise BadResponse("conflicting Content-Length headers")  # RFC 9112 §6.3: unrecoverable
            headers[key] = value if key == b"content-length" else headers[key] + b", " + value
        else:
            headers[key] = value
    return parts[0], int(parts[1]), headers


# A kept-alive connection the node had closed while idle: the request is sent once more on a new connection.
_STALE = (ConnectionClosed, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class ConnectionPool:
    """Kept-alive connections to one http(s) URL (at most ``max_idle`` kept). A request sent on a reused connection
    that the node had closed while idle is sent once more on a new one. Thread-safe: a connection has one owner
    between :meth:`send` and :meth:`receive`. User info in the URL (``https://user:pass@host``) is sent as Basic
    authorization, as HTTP clients do."""

    def __init__(self, *, url: str, timeout: float, max_idle: int = 8, tls: ssl.SSLContext | None = None) -> None:
        """``tls``: the context for an https URL (default: the system's trust store).

        Raises:
            ValueError: ``url`` is not http(s) with a host.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL with a host")
        self.host = parts.hostname
        self.timeout = timeout
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._authority = parts.netloc.rpartition("@")[2]
        self._auth = ""
        if parts.username is not None:
            user, password = unquote(parts.username), unquote(parts.password or "")  # as typed in the URL
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._auth = f"Authorization: Basic {token}\r\n"
        self._tls = (tls or ssl.create_default_context()) if parts.scheme == "https" else None
        self._idle: list[Http11Connection] = []
        self._max_idle = max_idle
        self._lock = threading.Lock()

    def request(self, body: bytes) -> bytes:
        """The bytes of a POST of ``body`` to this URL."""
        return post_request(target=self._target, host=self._authority, body=body, extra_headers=self._auth)

    def send(self, request: bytes) -> tuple[Http11Connection, bool]:
        """Write ``request`` on an idle connection that is still usable (or a new one); returns it and whether it
        was reused.

        Raises:
            OSError: could not connect or write.
        """
        conn = self._idle_connection()
        if conn is not None:
            try:
                conn.send(request)
                return conn, True
            except OSError:
                conn.close()
        return self._send_fresh(request), False

    def _idle_connection(self) -> Http11Connection | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()
            if conn.reusable():
                return conn
            conn.close()

    def _send_fresh(self, request: bytes) -> Http11Connection:
        conn = Http11Connection(host=self.host, port=self._port, timeout=self.timeout, tls=self._tls)
        try:
            conn.send(request)
        except BaseException:
            conn.close()
            raise
        return conn

    def receive(self, conn: Http11Connection, *, reused: bool, request: bytes) -> Response:
        """The answer to ``request`` sent on ``conn``; the connection goes back to the pool when it stays open and
        holds nothing past the answer. A reused connection the node had closed gets the request once more, on a
        new connection (never on another idle one: those may be stale too).

        Raises:
            OSError: reading failed (TimeoutError included).
            BadResponse: not an answer this client can frame.
        """
        try:
            try:
                response = conn.response()
            except _STALE:
                if not reused:
                    raise
                conn.close()
                conn = self._send_fresh(request)
                response = conn.response()
        except BaseException:
            conn.close()
            raise
        if response.will_close or not conn.reusable():
            conn.close()
        else:
            self._release(conn)
        return response

    def post(self, body: bytes) -> Response:
        """Send a POST of ``body`` and read its answer (see :meth:`send` and :meth:`receive` for what it raises)."""
        request = self.request(body)
        conn, reused = self.send(request)
        return self.receive(conn, reused=reused, request=request)

    def _release(self, conn: Http11Connection) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
