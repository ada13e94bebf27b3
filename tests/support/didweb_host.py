"""A real HTTPS server on 127.0.0.1 (threaded ``http.server`` + ``ssl``) for did:web documents, with a throwaway
CA from ``trustme``. Routes are set at runtime.

    with DidWebHost() as host:
        host.set_document({"id": host.did, ...})           # served at /.well-known/did.json
        fetcher = SafeFetcher(timeout=2, ca_file=host.ca_pem_path, insecure_hosts=frozenset({host.host}))

The same port also answers plain HTTP (the first byte of a connection tells TLS from HTTP): the x402 TS SDK fetches
``did:web:localhost%3A<port>`` over http, our resolver over https, so one host serves both peers.
Node can trust the CA with ``NODE_EXTRA_CA_CERTS=<ca_pem_path>``. The certificate covers ``localhost``,
``127.0.0.1`` and any ``extra_names``. ``requests`` records what was asked (path, Host header, TLS, SNI name).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import trustme

WELL_KNOWN = "/.well-known/did.json"


@dataclass(frozen=True)
class Route:
    """How one path answers. ``content_length=False`` streams the body until the connection closes."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_length: bool = True
    delay_before: float = 0.0  # seconds before the status line
    chunk_size: int = 16384
    chunk_delay: float = 0.0  # seconds between body chunks


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    host_header: str | None
    tls: bool
    sni: str | None
    headers: Mapping[str, str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        owner = self.server.owner
        path = urlsplit(self.path).path
        owner._record(
            RecordedRequest(
                path=path,
                host_header=self.headers.get("Host"),
                tls=isinstance(self.connection, ssl.SSLSocket),
                sni=getattr(self.connection, "omatrust_sni", None),
                headers=dict(self.headers.items()),
            )
        )
        route = owner.route_for(path)
        self.close_connection = True
        if route.delay_before:
            time.sleep(route.delay_before)
        try:
            self.send_response(route.status)
            headers = {"Content-Type": "application/json", **route.headers, "Connection": "close"}
            for name, value in headers.items():
                self.send_header(name, value)
            if route.content_length:
                self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            for start in range(0, len(route.body), route.chunk_size):
                if route.chunk_delay and start:
                    time.sleep(route.chunk_delay)
                self.wfile.write(route.body[start : start + route.chunk_size])
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            pass  # the client gave up (size cap, timeout): expected in tests

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, owner: DidWebHost, context: ssl.SSLContext) -> None:
        self.owner = owner
        self.context = context
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Runs in the per-connection thread, so a slow or silent client never blocks accept().
        request.settimeout(10)
        try:
            first = request.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        if first != b"\x16":  # not a TLS handshake record: plain HTTP
            self.RequestHandlerClass(request, client_address, self)  # type: ignore[arg-type]
            return
        tls = self.context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        try:
            tls.do_handshake()
            tls.omatrust_sni = getattr(_SNI, "name", None)  # type: ignore[attr-defined]
            self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]
        except (ssl.SSLError, OSError):
            pass  # e.g. the client refused our certificate
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # aborted connections are normal in these tests


_SNI = threading.local()


class DidWebHost:
    """HTTPS (+ plain HTTP on the same port) server on 127.0.0.1 serving routes set at runtime."""

    def __init__(self, *, extra_names: Sequence[str] = ()) -> None:
        self.ca = trustme.CA()
        self._tmp = Path(tempfile.mkdtemp(prefix="didweb-host-"))
        self.ca_pem_path = str(self._tmp / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_pem_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("localhost", "127.0.0.1", *extra_names).configure_cert(context)
        context.sni_callback = _remember_sni
        self._lock = threading.Lock()
        self._routes: dict[str, Route] = {}
        self._requests: list[RecordedRequest] = []
        self._server = _Server(self, context)
        self.port: int = self._server.server_address[1]
        self.host = f"localhost:{self.port}"
        self.did = f"did:web:localhost%3A{self.port}"
        self.base_url = f"https://localhost:{self.port}"
        self.plain_base_url = f"http://localhost:{self.port}"
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> DidWebHost:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="didweb-host", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> DidWebHost:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    # -- addressing
    def url(self, path: str = WELL_KNOWN, *, tls: bool = True) -> str:
        return (self.base_url if tls else self.plain_base_url) + path

    def did_with_path(self, *segments: str) -> str:
        """``did:web:localhost%3A<port>:seg1:seg2`` (document served at ``/seg1/seg2/did.json``)."""
        return ":".join([self.did, *(quote(s, safe="") for s in segments)])

    @staticmethod
    def document_path(*segments: str) -> str:
        return "/" + "/".join([*segments, "did.json"]) if segments else WELL_KNOWN

    # -- routes
    def set_route(self, path: str, route: Route) -> None:
        with self._lock:
            self._routes[path] = route

    def set(self, path: str, body: bytes | str = b"", *, status: int = 200, **options: Any) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.set_route(path, Route(status=status, body=data, **options))

    def set_json(self, path: str, obj: Any, **options: Any) -> bytes:
        data = json.dumps(obj).encode("utf-8")
        self.set(path, data, **options)
        return data

    def set_document(self, document: Any, *segments: str, **options: Any) -> bytes:
        """Serve ``document`` (dict → JSON, bytes as is) where did:web puts the DID with these path segments."""
        options.setdefault("headers", {"Content-Type": "application/did+json"})
        path = self.document_path(*segments)
        if isinstance(document, bytes):
            self.set(path, document, **options)
            return document
        return self.set_json(path, document, **options)

    def set_redirect(self, path: str, location: str, *, status: int = 302) -> None:
        self.set(path, b"", status=status, headers={"Location": location})

    def set_oversize(self, path: str, size: int, *, content_length: bool = True, chunk_delay: float = 0.0) -> None:
        """A syntactically valid JSON body of ``size`` bytes (with or without a Content-Length header)."""
        filler = b'{"id": "' + b"x" * max(0, size - 10) + b'"}'
        self.set(path, filler[:size], content_length=content_length, chunk_delay=chunk_delay)

    def clear(self) -> None:
        with self._lock:
            self._routes.clear()
            self._requests.clear()

    def route_for(self, path: str) -> Route:
        with self._lock:
            return self._routes.get(path, Route(status=404, body=b'{"error": "not found"}'))

    # -- what was asked
    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str = WELL_KNOWN) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]


def _remember_sni(_sock: Any, server_name: str | None, _context: ssl.SSLContext) -> None:
    # Called during do_handshake, in the connection's own thread.
    _SNI.name = server_name
