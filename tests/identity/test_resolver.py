"""DidResolver over the real HTTPS host: did:web paths, kid resolution, caching (TTL, failures, single flight)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from service.dids import did_web_document_url
from service.domain import Reason
from service.errors import CheckFailed, FetchFailed, MalformedInput
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from tests.identity.keyfactory import make_key
from tests.support.didweb_host import WELL_KNOWN, DidWebHost, Route


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _document(did: str, *keys: dict[str, str], assertion: list[str] | None = None) -> dict[str, Any]:
    methods = [
        {"id": f"#key-{i}", "type": "JsonWebKey2020", "controller": did, "publicKeyJwk": jwk}
        for i, jwk in enumerate(keys, start=1)
    ]
    doc: dict[str, Any] = {"@context": ["https://www.w3.org/ns/did/v1"], "id": did, "verificationMethod": methods}
    if assertion is not None:
        doc["assertionMethod"] = assertion
    return doc


# did:web → URL (PROTOCOLS.md §2, did:web method spec examples)
@pytest.mark.parametrize(
    ("did", "url"),
    [
        ("did:web:example.com", "https://example.com/.well-known/did.json"),
        ("did:web:example.com:user:alice", "https://example.com/user/alice/did.json"),
        ("did:web:localhost%3A4021", "https://localhost:4021/.well-known/did.json"),
        ("did:web:localhost%3A4021:a:b", "https://localhost:4021/a/b/did.json"),
        ("did:web:Example.COM", "https://example.com/.well-known/did.json"),
    ],
)
def test_did_web_url_mapping(did: str, url: str) -> None:
    assert did_web_document_url(did) == url


def test_resolves_over_https_and_caches(didweb_host: DidWebHost, dev_fetcher: SafeFetcher) -> None:
    key = make_key("P-256")
    raw = didweb_host.set_document(_document(didweb_host.did, key.jwk))
    resolver = DidResolver(fetcher=dev_fetcher)
    first = resolver.resolve_document(did=didweb_host.did)
    second = resolver.resolve_document(did=didweb_host.did)
    assert first == second
    assert first.raw == raw
    assert first.keys[0].jwk == key.jwk
    assert len(didweb_host.requests) == 1
    assert didweb_host.requests[0].tls
    resolved, document = resolver.resolve_key(kid=f"{didweb_host.did}#key-1")
    assert resolved.jwk == key.jwk
    assert document == first
    assert len(didweb_host.requests) == 1  # resolve_key used the cache too


def test_did_with_path_requests_the_mapped_path(didweb_host: DidWebHost, dev_fetcher: SafeFetcher) -> None:
    did = didweb_host.did_with_path("user", "alice")
    didweb_host.set_document(_document(did, make_key("Ed25519").jwk), "user", "alice")
    assert DidResolver(fetcher=dev_fetcher).resolve_document(did=did).id == did
    assert [r.path for r in didweb_host.requests] == ["/user/alice/did.json"]


def test_insecure_hosts_resolve_over_plain_http_like_the_sdk(didweb_host: DidWebHost) -> None:
    didweb_host.set_document(_document(didweb_host.did, make_key("Ed25519").jwk))
    hosts = frozenset({didweb_host.host})
    resolver = DidResolver(fetcher=SafeFetcher(timeout=2, insecure_hosts=hosts), insecure_hosts=hosts)
    resolver.resolve_document(did=didweb_host.did)
    assert [r.tls for r in didweb_host.requests] == [False]


def test_relative_and_absolute_kids(didweb_host: DidWebHost, dev_fetcher: SafeFetcher) -> None:
    a, b = make_key("secp256k1"), make_key("Ed25519")
    doc = _document(didweb_host.did, a.jwk)
    doc["verificationMethod"].append(
        {"id": f"{didweb_host.did}#abs", "type": "JsonWebKey2020", "controller": didweb_host.did, "publicKeyJwk": b.jwk}
    )
    didweb_host.set_document(doc)
    resolver = DidResolver(fetcher=dev_fetcher)
    assert resolver.resolve_key(kid=f"{didweb_host.did}#key-1")[0].jwk == a.jwk
    assert resolver.resolve_key(kid=f"{didweb_host.did}#abs")[0].jwk == b.jwk
    with pytest.raises(CheckFailed) as info:
        resolver.resolve_key(kid=f"{didweb_host.did}#key-9")
    assert info.value.reason is Reason.KEY_NOT_FOUND
    with pytest.raises(CheckFailed) as info:
        resolver.resolve_key(kid=didweb_host.did)  # two keys, no assertionMethod: ambiguous
    assert info.value.reason is Reason.KEY_NOT_FOUND


def test_failures_are_not_cached(didweb_host: DidWebHost, dev_fetcher: SafeFetcher) -> None:
    resolver = DidResolver(fetcher=dev_fetcher)
    with pytest.raises(FetchFailed) as fetch_info:
        resolver.resolve_document(did=didweb_host.did)  # nothing served yet: 404
    assert fetch_info.value.reason is Reason.FETCH_HTTP_STATUS
    didweb_host.set_document({"id": "did:web:someone-else.example"})
    with pytest.raises(MalformedInput) as doc_info:
        resolver.resolve_document(did=didweb_host.did)  # a bad answer is not cached either
    assert doc_info.value.reason is Reason.DID_DOCUMENT_ID_MISMATCH
    didweb_host.set_document(_document(didweb_host.did, make_key("P-256").jwk))
    resolver.resolve_document(did=didweb_host.did)
    resolver.resolve_document(did=didweb_host.did)
    assert len(didweb_host.requests) == 3


def test_ttl_expiry_with_a_fake_clock(didweb_host: DidWebHost, dev_fetcher: SafeFetcher) -> None:
    old, new = make_key("P-256"), make_key("P-256")
    didweb_host.set_document(_document(didweb_host.did, old.jwk))
    clock = FakeClock()
    resolver = DidResolver(fetcher=dev_fetcher, ttl=300, clock=clock)
    kid = f"{didweb_host.did}#key-1"
    assert resolver.resolve_key(kid=kid)[0].jwk == old.jwk
    didweb_host.set_document(_document(didweb_host.did, new.jwk))  # key rotated on the host
    clock.now += 299
    assert resolver.resolve_key(kid=kid)[0].jwk == old.jwk
    assert len(didweb_host.requests) == 1
    clock.now += 2
    assert resolver.resolve_key(kid=kid)[0].jwk == new.jwk
    assert len(didweb_host.requests) == 2


def test_concurrent_resolutions_share_one_fetch(didweb_host: DidWebHost, dev_fetcher: SafeFetcher) -> None:
    key = make_key("Ed25519")
    raw = _document(didweb_host.did, key.jwk)
    didweb_host.set_route(WELL_KNOWN, Route(body=json.dumps(raw).encode(), delay_before=0.3))
    resolver = DidResolver(fetcher=dev_fetcher)
    barrier = threading.Barrier(8)
    results: list[object] = []

    def work() -> None:
        barrier.wait()
        results.append(resolver.resolve_key(kid=f"{didweb_host.did}#key-1")[0].jwk)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [key.jwk] * 8
    assert len(didweb_host.requests) == 1


def test_concurrent_failure_is_shared_but_not_cached(didweb_host: DidWebHost, dev_fetcher: SafeFetcher) -> None:
    didweb_host.set_route(WELL_KNOWN, Route(status=503, delay_before=0.3))
    resolver = DidResolver(fetcher=dev_fetcher)
    errors: list[Reason] = []

    def work() -> None:
        try:
            resolver.resolve_document(did=didweb_host.did)
        except FetchFailed as exc:
            errors.append(exc.reason)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == [Reason.FETCH_HTTP_STATUS] * 4
    assert len(didweb_host.requests) == 1
    didweb_host.set_document(_document(didweb_host.did, make_key("Ed25519").jwk))
    assert resolver.resolve_document(did=didweb_host.did).keys
    assert len(didweb_host.requests) == 2


def test_prime_serves_a_snapshot_without_fetching(didweb_host: DidWebHost, dev_fetcher: SafeFetcher) -> None:
    key = make_key("P-256")
    raw = json.dumps(_document(didweb_host.did, key.jwk)).encode()
    resolver = DidResolver(fetcher=dev_fetcher)
    primed = resolver.prime(did=didweb_host.did, raw=raw)
    assert resolver.resolve_key(kid=f"{didweb_host.did}#key-1") == (primed.keys[0], primed)
    assert didweb_host.requests == []
    with pytest.raises(MalformedInput):
        resolver.prime(did="did:web:other.example", raw=raw)  # id mismatch: nothing cached
    resolver.forget(did=didweb_host.did)
    with pytest.raises(FetchFailed):
        resolver.resolve_document(did=didweb_host.did)  # host serves nothing: the snapshot is gone


@pytest.mark.parametrize(
    "did",
    ["did:web:127.0.0.1%3A443", "did:web:", "did:web:a@b", "did:web:example.com?x=/evil", "did:web:a.example/b",
     "did:web:a.example b", "did:web:a.example\\b"],
)  # fmt: skip
def test_bad_did_web_is_refused_before_any_fetch(didweb_host: DidWebHost, dev_fetcher: SafeFetcher, did: str) -> None:
    with pytest.raises(MalformedInput) as info:
        DidResolver(fetcher=dev_fetcher).resolve_document(did=did)
    assert info.value.reason is Reason.BAD_DID
    assert didweb_host.requests == []
