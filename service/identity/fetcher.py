"""Bounded, SSRF-safe HTTPS GET of small documents (did.json), behind the ``Fetcher`` interface.

The host of a did:web is chosen by whoever wrote the artifact, so every fetch is hostile by default
(PROTOCOLS.md §2): https only, no redirects, the hostname is resolved exactly once and every address it resolves to
must be public, then the TCP connection goes to *that* address while TLS is verified against the hostname (SNI +
certificate check). Resolving once and connecting to the checked address is what defeats DNS rebinding: nothing
resolves the name again between the check and the connect. Bodies are capped while streaming, and the whole fetch
has a deadline. No caching here (the resolver caches parsed documents).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
import zlib
from typing import Protocol

import certifi
import httpx

from service.domain import Reason
from service.errors import FetchFailed
from service.identity.addresses import address_refusal

MAX_ADDRESSES = 4  # addresses of one name tried in order, after all of them passed the policy
_ACCEPT = "application/did+json, application/json;q=0.9, */*;q=0.1"
_USER_AGENT = "omatrust-x402-resolver/1"


class Fetcher(Protocol):
    def fetch(self, *, url: str) -> bytes:
        """GET ``url`` and return the body. Raises FetchFailed (a CouldNotCheck) with a FETCH_* reason."""
        ...


class SafeFetcher:
    """The production ``Fetcher``.

    ``timeout`` bounds each of name resolution, connect and every read, and is also the overall deadline of one
    fetch: it is checked between body chunks, so a fetch ends at most one read-timeout after the deadline.
    ``insecure_hosts`` (``"host"`` or ``"host:port"``, lower-case) is the development escape hatch: those hosts may
    be fetched over plain http and on loopback/RFC 1918 addresses (never link-local). ``ca_file`` adds trust
    anchors to the certifi bundle (tests use a throwaway CA).
    """

    def __init__(
        self,
        *,
        timeout: float,
        max_bytes: int = 65536,
        insecure_hosts: frozenset[str] = frozenset(),
        ca_file: str | None = None,
    ) -> None:
        self._timeout = timeout
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
        """
        deadline = time.monotonic() + self._timeout
        try:
            target = httpx.URL(url)
            hostname = target.raw_host.decode("ascii").lower()
        except (httpx.InvalidURL, UnicodeDecodeError) as exc:
            raise FetchFailed(Reason.FETCH_SCHEME_REFUSED, f"not a URL: {url!r}") from exc
        port = target.port or {"https": 443, "http": 80}.get(target.scheme, 0)
        insecure = hostname in self._insecure_hosts or f"{hostname}:{port}" in self._insecure_hosts
        if not hostname or target.scheme not in (("https", "http") if insecure else ("https",)):
            raise FetchFailed(Reason.FETCH_SCHEME_REFUSED, f"only https URLs may be fetched: {url!r}")
        if target.userinfo:
            raise FetchFailed(Reason.FETCH_SCHEME_REFUSED, "URLs with credentials are refused")

        addresses = self._resolve(hostname, port, deadline)
        for address in addresses:
            refusal = address_refusal(address, allow_local=insecure)
            if refusal:
                # One bad address refuses the name: a host that also resolves privately is not trusted.
                raise FetchFailed(Reason.FETCH_ADDRESS_REFUSED, f"{hostname}: {refusal}")

        last_error: Exception | None = None
        for address in addresses[:MAX_ADDRESSES]:
            try:
                return self._get(target, hostname, address, deadline)
            except httpx.ConnectError as exc:  # refused/unreachable/TLS failure: try the next checked address
                last_error = exc
            except httpx.TimeoutException as exc:
                raise FetchFailed(Reason.FETCH_TIMEOUT, f"{hostname}: {type(exc).__name__}") from exc
            except httpx.HTTPError as exc:
                raise FetchFailed(Reason.FETCH_FAILED, f"{hostname}: {type(exc).__name__}: {exc}") from exc
        raise FetchFailed(Reason.FETCH_FAILED, f"{hostname}: could not connect: {last_error}") from last_error

    def _resolve(self, hostname: str, port: int, deadline: float) -> list[str]:
        """getaddrinfo once, in a daemon thread so a hanging system resolver cannot outlive the deadline."""
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
            raise FetchFailed(Reason.FETCH_FAILED, f"cannot resolve {hostname}: {error[0]}") from error[0]
        if not result:
            raise FetchFailed(Reason.FETCH_FAILED, f"{hostname} has no address")
        return result

    def _get(self, target: httpx.URL, hostname: str, address: str, deadline: float) -> bytes:
        remaining = max(0.01, deadline - time.monotonic())
        timeout = httpx.Timeout(remaining)
        host_header = hostname if target.port is None else f"{hostname}:{target.port}"
        # One client per fetch: a pooled connection verified for one hostname must never serve another name
        # that happens to resolve to the same address.
        transport = httpx.HTTPTransport(verify=self._ssl_context, retries=0)
        with httpx.Client(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False) as client:
            request = client.build_request(
                "GET",
                target.copy_with(host=address),
                headers={
                    "Host": host_header,
                    "Accept": _ACCEPT,
                    "Accept-Encoding": "identity",
                    "User-Agent": _USER_AGENT,
                    "Connection": "close",
                },
                extensions={"sni_hostname": hostname},
            )
            response = client.send(request, stream=True)
            try:
                if 300 <= response.status_code < 400:
                    raise FetchFailed(Reason.FETCH_REDIRECT_REFUSED, f"{hostname} answered {response.status_code}")
                if response.status_code != 200:
                    raise FetchFailed(Reason.FETCH_HTTP_STATUS, f"{hostname} answered {response.status_code}")
                return self._read_body(response, hostname, deadline)
            finally:
                response.close()

    def _read_body(self, response: httpx.Response, hostname: str, deadline: float) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.strip().isdigit() and int(declared) > self._max_bytes:
            raise FetchFailed(Reason.FETCH_TOO_LARGE, f"{hostname} declares {declared} bytes > {self._max_bytes}")
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "", "gzip", "deflate"):
            raise FetchFailed(Reason.FETCH_FAILED, f"{hostname} sent unsupported content-encoding {encoding!r}")
        # Decompress ourselves, bounded, rather than trusting httpx's decoder with a compression bomb.
        inflater = zlib.decompressobj(wbits=47) if encoding in ("gzip", "deflate") else None
        body = bytearray()
        wire = 0
        for chunk in response.iter_raw():
            wire += len(chunk)
            if wire > self._max_bytes:
                raise FetchFailed(Reason.FETCH_TOO_LARGE, f"{hostname} sent more than {self._max_bytes} bytes")
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
            if time.monotonic() > deadline:
                raise FetchFailed(Reason.FETCH_TIMEOUT, f"{hostname}: overall deadline exceeded")
        if inflater is not None and not inflater.eof:
            raise FetchFailed(Reason.FETCH_FAILED, f"{hostname}: truncated {encoding} body")
        return bytes(body)
