"""Bounded, SSRF-safe HTTPS GET of small documents (did.json), behind the ``Fetcher`` interface.

The host of a did:web is chosen by whoever wrote the artifact, so every fetch is hostile by default
(PROTOCOLS.md §2): https only, no redirects, the hostname is resolved exactly once and every address it resolves to
must be public, then the TCP connection goes to *that* address while TLS is verified against the hostname (SNI +
certificate check). Resolving once and connecting to the checked address is what defeats DNS rebinding: nothing
resolves the name again between the check and the connect. Bodies are capped while streaming, and the whole fetch
has a deadline. No caching here (the resolver caches parsed documents).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Protocol

import certifi
import httpx

from service.domain import Reason
from service.errors import FetchFailed
from service.identity.addresses import address_refusal
from service.lookup_limits import LookupLimiter

MAX_ADDRESSES = 4  # addresses of one name tried in order, after all of them passed the policy
MAX_HEADER_BYTES = 16 * 1024  # status line + response headers
MAX_HEADERS = 100
_READ_SIZE = 16 * 1024
_ACCEPT = "application/did+json, application/json;q=0.9, */*;q=0.1"
_USER_AGENT = "omatrust-x402-resolver/1"
log = logging.getLogger("omatrust.fetch")


class Fetcher(Protocol):
    def fetch(self, *, url: str) -> bytes:
        """GET ``url`` and return the body. Raises FetchFailed (a CouldNotCheck) with a FETCH_* reason."""
        ...


class SafeFetcher:
    """The production ``Fetcher``.

    ``timeout`` is the overall deadline of one fetch — name resolution, connect, TLS handshake, request, headers
    and body together — enforced on every socket operation, however slowly the peer sends.
    ``insecure_hosts`` (``"host"`` or ``"host:port"``, lower-case) is the development escape hatch: those hosts may
    be fetched over plain http and on loopback/RFC 1918 addresses (never link-local). ``ca_file`` adds trust
    anchors to the certifi bundle (tests use a throwaway CA). ``limiter`` caps fetches in flight per host and
    overall (``LookupSaturated`` past it). ``resolve`` replaces the system's name resolution (``(host, port)`` →
    addresses; tests use it so that no name ever leaves the machine).
    """

    def __init__(
        self,
        *,
        timeout: float,
        max_bytes: int = 65536,
        insecure_hosts: frozenset[str] = frozenset(),
        ca_file: str | None = None,
        limiter: LookupLimiter | None = None,
        resolve: Callable[[str, int], list[str]] | None = None,
    ) -> None:
        self._timeout = timeout
        self._limiter = limiter
        self._resolve_names = resolve
        self._max_bytes = max_bytes
        self._insecure_hosts = frozenset(h.lower() for h in insecure_hosts)
        # Built once: loading a CA bundle costs milliseconds; SSLContext is safe to share across threads.
        self._ssl_context = ssl.create_default_context(cafile=certifi.where())
        if ca_file:
            self._ssl_context.load_verify_locations(cafile=ca_file)

    def fetch(self, *, url: str) -> bytes:
        """GET ``url`` under the SSRF policy.

        Raises:
            FetchFailed: FETCH_SCHEME_REFUSED (not https, or not a URL), FETCH_ADDRESS_REFUSED, FETCH_REDIRECT_REFUSED
                (any 3xx), FETCH_HTTP_STATUS (other non-200), FETCH_TOO_LARGE, FETCH_TIMEOUT, FETCH_FAILED (DNS
                failure, connection refused, TLS verification failure, unsupported content-encoding).
            LookupSaturated: LOOKUP_SATURATED, too many fetches in flight (with a ``limiter``).
        """
        deadline = time.monotonic() + self._timeout
        try:
            target = httpx.URL(url)
            hostname = target.raw_host.decode("ascii").lower()
        except (httpx.InvalidURL, UnicodeDecodeError) as exc:
            raise FetchFailed(Reason.FETCH_SCHEME_REFUSED, "not a URL") from exc
        port = target.port or {"https": 443, "http": 80}.get(target.scheme, 0)
        insecure = hostname in self._insecure_hosts or f"{hostname}:{port}" in self._insecure_hosts
        if not hostname or target.scheme not in (("https", "http") if insecure else ("https",)):
            raise FetchFailed(Reason.FETCH_SCHEME_REFUSED, "only https URLs may be fetched")
        if target.userinfo:
            raise FetchFailed(Reason.FETCH_SCHEME_REFUSED, "URLs with credentials are refused")

        if self._limiter is None:
            return self._fetch_checked(target, hostname, port, insecure, deadline)
        with self._limiter.slot(host=hostname, what="did:web fetch"):
            return self._fetch_checked(target, hostname, port, insecure, deadline)

    def _fetch_checked(self, target: httpx.URL, hostname: str, port: int, insecure: bool, deadline: float) -> bytes:
        addresses = self._resolve(hostname, port, deadline)
        for address in addresses:
            refusal = address_refusal(address, allow_local=insecure)
            if refusal:
                # One bad address refuses the name: a host that also resolves privately is not trusted.
                raise FetchFailed(Reason.FETCH_ADDRESS_REFUSED, f"{hostname}: {refusal}")

        last_error: BaseException | None = None
        for address in addresses[:MAX_ADDRESSES]:
            try:
                return self._get(target, hostname, address, port, deadline)
            except _ConnectFailed as exc:  # refused/unreachable/TLS failure: try the next checked address
                last_error = exc.__cause__
        log.info("fetch %s: could not connect: %r", hostname, last_error)
        raise FetchFailed(Reason.FETCH_FAILED, f"{hostname}: could not connect") from last_error

    def _resolve(self, hostname: str, port: int, deadline: float) -> list[str]:
        """getaddrinfo once, in a daemon thread so a hanging system resolver cannot outlive the deadline."""
        if self._resolve_names is not None:
            try:
                found = self._resolve_names(hostname, port)
            except OSError as exc:
                raise FetchFailed(Reason.FETCH_FAILED, f"cannot resolve {hostname}") from exc
            if not found:
                raise FetchFailed(Reason.FETCH_FAILED, f"{hostname} has no address")
            return found
        result: list[str] = []
        error: list[BaseException] = []

        def run() -> None:
            try:
                infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
                result.extend(dict.fromkeys(str(info[4][0]) for info in infos))
            except BaseException as exc:  # reported to the caller below
                error.append(exc)

        worker = threading.Thread(target=run, name=f"getaddrinfo {hostname}", daemon=True)
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            raise FetchFailed(Reason.FETCH_TIMEOUT, f"resolving {hostname} timed out")
        if error:
            log.info("fetch: resolving %s failed: %r", hostname, error[0])
            raise FetchFailed(Reason.FETCH_FAILED, f"cannot resolve {hostname}") from error[0]
        if not result:
            raise FetchFailed(Reason.FETCH_FAILED, f"{hostname} has no address")
        return result

    def _get(self, target: httpx.URL, hostname: str, address: str, port: int, deadline: float) -> bytes:
        """One HTTP/1.1 GET on a fresh connection to ``address``. Every socket operation — connect, TLS handshake,
        each send and receive — gets only the time left until ``deadline`` (CPython bounds a whole TLS handshake or
        record read by the socket timeout), so a peer dripping one byte at a time cannot stretch the fetch."""
        try:
            sock = socket.create_connection((address, port), timeout=_left(deadline, hostname))
        except TimeoutError as exc:
            raise FetchFailed(Reason.FETCH_TIMEOUT, f"{hostname}: connect timed out") from exc
        except OSError as exc:
            raise _ConnectFailed() from exc
        try:
            if target.scheme == "https":
                sock.settimeout(_left(deadline, hostname))
                try:
                    # SNI + certificate checked against the name, on the connection to the checked address.
                    sock = self._ssl_context.wrap_socket(sock, server_hostname=hostname)
                except TimeoutError as exc:
                    raise FetchFailed(Reason.FETCH_TIMEOUT, f"{hostname}: TLS handshake timed out") from exc
                except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
                    raise _ConnectFailed() from exc
            stream = _Stream(sock, deadline, hostname)
            host_header = hostname if target.port is None else f"{hostname}:{target.port}"
            request = (
                f"GET {target.raw_path.decode('ascii')} HTTP/1.1\r\nHost: {host_header}\r\nAccept: {_ACCEPT}\r\n"
                f"Accept-Encoding: identity\r\nUser-Agent: {_USER_AGENT}\r\nConnection: close\r\n\r\n"
            )
            stream.send(request.encode("ascii"))
            status, headers = stream.read_head()
            if 300 <= status < 400:
                raise FetchFailed(Reason.FETCH_REDIRECT_REFUSED, f"{hostname} answered {status}")
            if status != 200:
                raise FetchFailed(Reason.FETCH_HTTP_STATUS, f"{hostname} answered {status}")
            return self._read_body(stream, headers, hostname)
        finally:
            sock.close()

    def _read_body(self, stream: _Stream, headers: dict[str, str], hostname: str) -> bytes:
        declared = headers.get("content-length", "")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if declared and (chunked or not declared.isdigit()):
            raise FetchFailed(Reason.FETCH_FAILED, f"{hostname} sent an ambiguous body length")
        if declared and int(declared) > self._max_bytes:
            raise FetchFailed(Reason.FETCH_TOO_LARGE, f"{hostname} declares {declared} bytes > {self._max_bytes}")
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "", "gzip", "deflate"):
            raise FetchFailed(Reason.FETCH_FAILED, f"{hostname} sent an unsupported content-encoding")
        if chunked:
            raw = stream.chunked(self._max_bytes)
        else:
            raw = stream.until_eof(self._max_bytes) if not declared else stream.exactly(int(declared))
        # Decompress ourselves, bounded: a compression bomb stops at the cap.
        inflater = zlib.decompressobj(wbits=47) if encoding in ("gzip", "deflate") else None
        body = bytearray()
        for chunk in raw:
            if inflater is not None:
                try:
                    chunk = inflater.decompress(chunk, self._max_bytes + 1 - len(body))
                except zlib.error as exc:
                    raise FetchFailed(Reason.FETCH_FAILED, f"{hostname}: bad {encoding} body") from exc
                if inflater.unconsumed_tail:
                    raise FetchFailed(Reason.FETCH_TOO_LARGE, f"{hostname} body inflates past {self._max_bytes}")
            body += chunk
            if len(body) > self._max_bytes:
                raise FetchFailed(Reason.FETCH_TOO_LARGE, f"{hostname} sent more than {self._max_bytes} bytes")
        if inflater is not None and not inflater.eof:
            raise FetchFailed(Reason.FETCH_FAILED, f"{hostname}: truncated {encoding} body")
        return bytes(body)


class _ConnectFailed(Exception):
    """Connecting to one address failed (refused, unreachable, TLS): the next checked address may be tried."""


def _left(deadline: float, hostname: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchFailed(Reason.FETCH_TIMEOUT, f"{hostname}: overall deadline exceeded")
    return left


class _Stream:
    """Buffered reads on a socket, each bounded by the time left until the fetch deadline."""

    def __init__(self, sock: socket.socket, deadline: float, hostname: str) -> None:
        self._sock = sock
        self._deadline = deadline
        self._hostname = hostname
        self._buf = bytearray()
        self._eof = False

    def send(self, data: bytes) -> None:
        self._sock.settimeout(_left(self._deadline, self._hostname))
        try:
            self._sock.sendall(data)
        except TimeoutError as exc:
            raise FetchFailed(Reason.FETCH_TIMEOUT, f"{self._hostname}: overall deadline exceeded") from exc
        except OSError as exc:
            raise FetchFailed(Reason.FETCH_FAILED, f"{self._hostname}: connection broken") from exc

    def _fill(self) -> bool:
        """Read once more into the buffer; False at end of stream."""
        if self._eof:
            return False
        self._sock.settimeout(_left(self._deadline, self._hostname))
        try:
            chunk = self._sock.recv(_READ_SIZE)
        except TimeoutError as exc:
            raise FetchFailed(Reason.FETCH_TIMEOUT, f"{self._hostname}: overall deadline exceeded") from exc
        except OSError as exc:  # includes ssl.SSLError
            raise FetchFailed(Reason.FETCH_FAILED, f"{self._hostname}: connection broken") from exc
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    def line(self, limit: int) -> bytes:
        while (end := self._buf.find(b"\r\n", 0, limit + 2)) < 0:
            if len(self._buf) > limit:
                raise FetchFailed(Reason.FETCH_TOO_LARGE, f"{self._hostname} sent an over-long header line")
            if not self._fill():
                raise FetchFailed(Reason.FETCH_FAILED, f"{self._hostname} closed the connection early")
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    def read_head(self) -> tuple[int, dict[str, str]]:
        """Status code and headers (names lower-cased; repeated headers joined with ``,``), within a size cap."""
        budget = MAX_HEADER_BYTES
        status_line = self.line(budget)
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not (parts[1].isdigit() and len(parts[1]) == 3):
            raise FetchFailed(Reason.FETCH_FAILED, f"{self._hostname} did not answer HTTP/1.x")
        headers: dict[str, str] = {}
        budget -= len(status_line)
        for _ in range(MAX_HEADERS + 1):
            raw = self.line(budget)
            budget -= len(raw) + 2
            if budget < 0:
                raise FetchFailed(Reason.FETCH_TOO_LARGE, f"{self._hostname} sent more than {MAX_HEADER_BYTES} "
                                  "bytes of headers")  # fmt: skip
            if not raw:
                return int(parts[1]), headers
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep or not name.strip() or name != name.strip():
                raise FetchFailed(Reason.FETCH_FAILED, f"{self._hostname} sent a malformed header")
            key = name.lower()
            headers[key] = f"{headers[key]},{value.strip()}" if key in headers else value.strip()
        raise FetchFailed(Reason.FETCH_TOO_LARGE, f"{self._hostname} sent more than {MAX_HEADERS} headers")

    def _take(self, size: int) -> bytes:
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out

    def exactly(self, size: int) -> Iterator[bytes]:
        left = size
        while left:
            if not self._buf and not self._fill():
                raise FetchFailed(Reason.FETCH_FAILED, f"{self._hostname} closed the connection early")
            chunk = self._take(min(left, len(self._buf)))
            left -= len(chunk)
            yield chunk

    def until_eof(self, cap: int) -> Iterator[bytes]:
        wire = 0
        while self._buf or self._fill():
            chunk = self._take(len(self._buf))
            wire += len(chunk)
            if wire > cap:
                raise FetchFailed(Reason.FETCH_TOO_LARGE, f"{self._hostname} sent more than {cap} bytes")
            yield chunk

    def chunked(self, cap: int) -> Iterator[bytes]:
        wire = 0
        while True:
            size_text = self.line(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise FetchFailed(Reason.FETCH_FAILED, f"{self._hostname} sent a bad chunk size") from None
            if size == 0:
                while self.line(MAX_HEADER_BYTES):  # trailers, ignored
                    pass
                return
            wire += size
            if wire > cap:
                raise FetchFailed(Reason.FETCH_TOO_LARGE, f"{self._hostname} sent more than {cap} bytes")
            yield from self.exactly(size)
            if self.line(0):
                raise FetchFailed(Reason.FETCH_FAILED, f"{self._hostname} sent a malformed chunk")
