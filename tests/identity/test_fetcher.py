"""SafeFetcher against a real HTTPS server on loopback, plus SSRF unit cases with a fake name resolution."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Callable
from functools import partial

import pytest

from service.domain import Reason
from service.errors import CouldNotCheck, FetchFailed
from service.identity.fetcher import SafeFetcher
from tests.support.didweb_host import WELL_KNOWN, DidWebHost, Route

DOC = b'{"id": "did:web:example"}'
_real_getaddrinfo = socket.getaddrinfo


def _reason(call: Callable[[], object]) -> Reason:
    with pytest.raises(FetchFailed) as info:
        call()
    assert isinstance(info.value, CouldNotCheck)
    return info.value.reason


class FakeNames:
    """getaddrinfo stand-in: names in ``table`` resolve to the given addresses (each answer popped in turn when a
    list of answers is given); other names and IP literals resolve for real. ``calls`` counts look-ups per name."""

    def __init__(self) -> None:
        self.table: dict[str, list[list[str]]] = {}
        self.calls: dict[str, int] = {}

    def set(self, name: str, *answers: list[str]) -> None:
        self.table[name] = list(answers)

    def __call__(self, host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:  # type: ignore[type-arg]
        if host not in self.table:
            return _real_getaddrinfo(host, port, *args, **kwargs)  # type: ignore[arg-type]
        self.calls[host] = self.calls.get(host, 0) + 1
        answers = self.table[host]
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        family = {True: socket.AF_INET6, False: socket.AF_INET}
        return [(family[":" in a], socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]


@pytest.fixture
def fake_names(monkeypatch: pytest.MonkeyPatch) -> FakeNames:
    names = FakeNames()
    monkeypatch.setattr(socket, "getaddrinfo", names)
    return names


# -- real HTTPS host -----------------------------------------------------------------------------------------------


def test_fetch_ok_over_https_with_sni_and_host_header(didweb_host: DidWebHost, dev_fetcher: SafeFetcher) -> None:
    didweb_host.set(WELL_KNOWN, DOC, headers={"Content-Type": "application/did+json"})
    assert dev_fetcher.fetch(url=didweb_host.url()) == DOC
    (request,) = didweb_host.requests
    assert request.tls
    assert request.sni == "localhost"
    assert request.host_header == didweb_host.host


def test_content_type_is_not_strict(didweb_host: DidWebHost, dev_fetcher: SafeFetcher) -> None:
    didweb_host.set(WELL_KNOWN, DOC, headers={"Content-Type": "text/plain"})
    assert dev_fetcher.fetch(url=didweb_host.url()) == DOC


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_refused(didweb_host: DidWebHost, dev_fetcher: SafeFetcher, status: int) -> None:
    didweb_host.set(WELL_KNOWN, DOC)
    didweb_host.set_redirect("/moved", didweb_host.url(), status=status)
    assert _reason(lambda: dev_fetcher.fetch(url=didweb_host.url("/moved"))) is Reason.FETCH_REDIRECT_REFUSED
    assert [r.path for r in didweb_host.requests] == ["/moved"]  # the target was never asked


@pytest.mark.parametrize("content_length", [True, False])
def test_oversize_body_is_refused(didweb_host: DidWebHost, dev_fetcher: SafeFetcher, content_length: bool) -> None:
    didweb_host.set_oversize(WELL_KNOWN, 5 * 1024 * 1024, content_length=content_length)
    started = time.monotonic()
    assert _reason(lambda: dev_fetcher.fetch(url=didweb_host.url())) is Reason.FETCH_TOO_LARGE
    assert time.monotonic() - started < 1.5  # stopped early, did not download 5 MiB first


def test_declared_oversize_is_refused_before_reading_the_body(
    didweb_host: DidWebHost, dev_fetcher: SafeFetcher
) -> None:
    # The body trickles (1 s between chunks): only the Content-Length check can refuse this quickly.
    didweb_host.set_oversize(WELL_KNOWN, 1024 * 1024, content_length=True, chunk_delay=1.0)
    started = time.monotonic()
    assert _reason(lambda: dev_fetcher.fetch(url=didweb_host.url())) is Reason.FETCH_TOO_LARGE
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("content_length", [True, False])
def test_size_cap_boundary(didweb_host: DidWebHost, content_length: bool) -> None:
    fetcher = SafeFetcher(timeout=2, max_bytes=1000, ca_file=didweb_host.ca_pem_path,
                          insecure_hosts=frozenset({didweb_host.host}))  # fmt: skip
    didweb_host.set_oversize(WELL_KNOWN, 1000, content_length=content_length)
    assert len(fetcher.fetch(url=didweb_host.url())) == 1000
    didweb_host.set_oversize(WELL_KNOWN, 1001, content_length=content_length)
    assert _reason(lambda: fetcher.fetch(url=didweb_host.url())) is Reason.FETCH_TOO_LARGE


def test_gzip_body_is_inflated_within_the_cap(didweb_host: DidWebHost, dev_fetcher: SafeFetcher) -> None:
    didweb_host.set(WELL_KNOWN, gzip.compress(DOC), headers={"Content-Encoding": "gzip"})
    assert dev_fetcher.fetch(url=didweb_host.url()) == DOC
    bomb = gzip.compress(b" " * (10 * 1024 * 1024))  # ~10 KiB on the wire, 10 MiB inflated
    assert len(bomb) < 65536
    didweb_host.set(WELL_KNOWN, bomb, headers={"Content-Encoding": "gzip"})
    assert _reason(lambda: dev_fetcher.fetch(url=didweb_host.url())) is Reason.FETCH_TOO_LARGE
    didweb_host.set(WELL_KNOWN, DOC, headers={"Content-Encoding": "br"})
    assert _reason(lambda: dev_fetcher.fetch(url=didweb_host.url())) is Reason.FETCH_FAILED


def test_slow_headers_time_out(didweb_host: DidWebHost) -> None:
    fetcher = SafeFetcher(timeout=0.4, ca_file=didweb_host.ca_pem_path, insecure_hosts=frozenset({didweb_host.host}))
    didweb_host.set_route(WELL_KNOWN, Route(body=DOC, delay_before=1.5))
    started = time.monotonic()
    assert _reason(lambda: fetcher.fetch(url=didweb_host.url())) is Reason.FETCH_TIMEOUT
    assert time.monotonic() - started < 1.2


def test_trickling_body_hits_the_overall_deadline(didweb_host: DidWebHost) -> None:
    # Each chunk arrives well within the read timeout; only the overall deadline can stop this.
    fetcher = SafeFetcher(timeout=0.6, ca_file=didweb_host.ca_pem_path, insecure_hosts=frozenset({didweb_host.host}))
    didweb_host.set_route(WELL_KNOWN, Route(body=b" " * 40, chunk_size=1, chunk_delay=0.1))
    started = time.monotonic()
    assert _reason(lambda: fetcher.fetch(url=didweb_host.url())) is Reason.FETCH_TIMEOUT
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("status", [404, 410, 500, 204])
def test_non_200_status(didweb_host: DidWebHost, dev_fetcher: SafeFetcher, status: int) -> None:
    didweb_host.set(WELL_KNOWN, DOC, status=status)
    assert _reason(lambda: dev_fetcher.fetch(url=didweb_host.url())) is Reason.FETCH_HTTP_STATUS


def test_missing_route_is_404(didweb_host: DidWebHost, dev_fetcher: SafeFetcher) -> None:
    assert _reason(lambda: dev_fetcher.fetch(url=didweb_host.url("/nothing"))) is Reason.FETCH_HTTP_STATUS


def test_plain_http_only_for_insecure_hosts(didweb_host: DidWebHost) -> None:
    didweb_host.set(WELL_KNOWN, DOC)
    strict = SafeFetcher(timeout=2, ca_file=didweb_host.ca_pem_path)
    assert _reason(lambda: strict.fetch(url=didweb_host.url(tls=False))) is Reason.FETCH_SCHEME_REFUSED
    assert didweb_host.requests == []
    for entry in (didweb_host.host, "localhost"):  # "host:port" or any port of "host"
        dev = SafeFetcher(timeout=2, insecure_hosts=frozenset({entry}))
        assert dev.fetch(url=didweb_host.url(tls=False)) == DOC
    assert [r.tls for r in didweb_host.requests] == [False, False]
    other_port = SafeFetcher(timeout=2, insecure_hosts=frozenset({"localhost:1"}))
    assert _reason(lambda: other_port.fetch(url=didweb_host.url(tls=False))) is Reason.FETCH_SCHEME_REFUSED


def test_loopback_refused_without_the_escape_hatch(didweb_host: DidWebHost) -> None:
    didweb_host.set(WELL_KNOWN, DOC)
    strict = SafeFetcher(timeout=2, ca_file=didweb_host.ca_pem_path)
    assert _reason(lambda: strict.fetch(url=didweb_host.url())) is Reason.FETCH_ADDRESS_REFUSED
    port = didweb_host.port
    for url in (f"https://127.0.0.1:{port}/.well-known/did.json", f"https://[::ffff:127.0.0.1]:{port}/x"):
        assert _reason(partial(strict.fetch, url=url)) is Reason.FETCH_ADDRESS_REFUSED
    assert didweb_host.requests == []  # refused before connecting


def test_untrusted_certificate_fails(didweb_host: DidWebHost) -> None:
    didweb_host.set(WELL_KNOWN, DOC)
    no_ca = SafeFetcher(timeout=2, insecure_hosts=frozenset({didweb_host.host}))
    assert _reason(lambda: no_ca.fetch(url=didweb_host.url())) is Reason.FETCH_FAILED
    assert didweb_host.requests == []


def test_connection_refused(dev_fetcher: SafeFetcher) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the fetch: nothing listens there
    fetcher = SafeFetcher(timeout=2, insecure_hosts=frozenset({f"localhost:{port}"}))
    assert _reason(lambda: fetcher.fetch(url=f"https://localhost:{port}/x")) is Reason.FETCH_FAILED


# -- name resolution: checked once, connected to that address, TLS against the name ---------------------------


def test_connects_to_the_checked_address_with_tls_against_the_name(
    didweb_host: DidWebHost, fake_names: FakeNames
) -> None:
    fake_names.set("didhost.test", ["127.0.0.1"])  # the test certificate covers didhost.test
    didweb_host.set(WELL_KNOWN, DOC)
    host = f"didhost.test:{didweb_host.port}"
    fetcher = SafeFetcher(timeout=2, ca_file=didweb_host.ca_pem_path, insecure_hosts=frozenset({host}))
    assert fetcher.fetch(url=f"https://{host}{WELL_KNOWN}") == DOC
    (request,) = didweb_host.requests
    assert request.sni == "didhost.test"
    assert request.host_header == host
    assert fake_names.calls == {"didhost.test": 1}


def test_certificate_is_checked_against_the_name_not_the_address(
    didweb_host: DidWebHost, fake_names: FakeNames
) -> None:
    fake_names.set("other.test", ["127.0.0.1"])  # same address, but the certificate does not cover other.test
    didweb_host.set(WELL_KNOWN, DOC)
    host = f"other.test:{didweb_host.port}"
    fetcher = SafeFetcher(timeout=2, ca_file=didweb_host.ca_pem_path, insecure_hosts=frozenset({host}))
    assert _reason(lambda: fetcher.fetch(url=f"https://{host}{WELL_KNOWN}")) is Reason.FETCH_FAILED
    assert didweb_host.requests == []


def test_rebinding_after_the_check_has_no_effect(didweb_host: DidWebHost, fake_names: FakeNames) -> None:
    """The name is resolved exactly once and the connection goes to that answer; a later answer (here the cloud
    metadata address) is never asked for, so it cannot be swapped in between check and connect."""
    fake_names.set("didhost.test", ["127.0.0.1"], ["169.254.169.254"], ["169.254.169.254"])
    didweb_host.set(WELL_KNOWN, DOC)
    host = f"didhost.test:{didweb_host.port}"
    fetcher = SafeFetcher(timeout=2, ca_file=didweb_host.ca_pem_path, insecure_hosts=frozenset({host}))
    assert fetcher.fetch(url=f"https://{host}{WELL_KNOWN}") == DOC
    assert fake_names.calls == {"didhost.test": 1}
    # the next fetch resolves afresh and gets the refused answer
    assert _reason(lambda: fetcher.fetch(url=f"https://{host}{WELL_KNOWN}")) is Reason.FETCH_ADDRESS_REFUSED


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.1.2.3"],
        ["172.16.0.1"],
        ["192.168.1.1"],
        ["169.254.169.254"],
        ["100.64.0.1"],
        ["0.0.0.0"],
        ["224.0.0.251"],
        ["::1"],
        ["fe80::1"],
        ["fd00::1"],
        ["::ffff:127.0.0.1"],
        ["::ffff:10.0.0.1"],
        ["::ffff:169.254.169.254"],
        ["8.8.8.8", "10.0.0.1"],  # one private address refuses the name
    ],
)
def test_private_addresses_are_refused(fake_names: FakeNames, addresses: list[str]) -> None:
    fake_names.set("evil.test", addresses)
    fetcher = SafeFetcher(timeout=1)
    assert _reason(lambda: fetcher.fetch(url="https://evil.test/.well-known/did.json")) is Reason.FETCH_ADDRESS_REFUSED


def test_escape_hatch_never_opens_link_local(fake_names: FakeNames) -> None:
    fake_names.set("dev.test", ["169.254.169.254"])
    fetcher = SafeFetcher(timeout=1, insecure_hosts=frozenset({"dev.test"}))
    assert _reason(lambda: fetcher.fetch(url="http://dev.test/x")) is Reason.FETCH_ADDRESS_REFUSED


def test_unresolvable_name(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> list:  # type: ignore[type-arg]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    assert _reason(lambda: SafeFetcher(timeout=1).fetch(url="https://nx.test/x")) is Reason.FETCH_FAILED


def test_hanging_name_resolution_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hang(*args: object, **kwargs: object) -> list:  # type: ignore[type-arg]
        release.wait(5)
        raise socket.gaierror(socket.EAI_AGAIN, "late")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    started = time.monotonic()
    try:
        assert _reason(lambda: SafeFetcher(timeout=0.3).fetch(url="https://slow.test/x")) is Reason.FETCH_TIMEOUT
    finally:
        release.set()
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/.well-known/did.json",
        "ftp://example.com/did.json",
        "file:///etc/passwd",
        "gopher://example.com/",
        "https://user:pw@example.com/did.json",
        "https:///did.json",
        "not a url",
    ],
)
def test_scheme_and_shape_refused_before_any_lookup(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    def no_lookup(*args: object, **kwargs: object) -> list:  # type: ignore[type-arg]
        raise AssertionError("must not resolve")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    assert _reason(lambda: SafeFetcher(timeout=1).fetch(url=url)) is Reason.FETCH_SCHEME_REFUSED
