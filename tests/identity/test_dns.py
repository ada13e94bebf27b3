"""ControllerResolver (dnspython) against a real DNS server on loopback, and the pure TXT parser."""

from __future__ import annotations

import time

import pytest

from service.domain import ControllerRecord, Reason
from service.errors import CouldNotCheck, DnsFailed, MalformedInput
from service.identity.controllers import parse_controller_records
from service.identity.dns import ControllerResolver, parse_nameserver
from tests.support.dns_server import LoopbackDns

PKH = "did:pkh:eip155:1:0xab5801a7d398351b8be11c439e05c5b3259aec9b"
WEB = "did:web:api.example.com"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _resolver(dns: LoopbackDns, **kwargs: object) -> ControllerResolver:
    return ControllerResolver(nameservers=[dns.nameserver], timeout=kwargs.pop("timeout", 1.0), **kwargs)  # type: ignore[arg-type]


def test_single_record(loopback_dns: LoopbackDns) -> None:
    loopback_dns.set_txt("_controllers.example.com", f"v=1;controller={PKH}")
    record = _resolver(loopback_dns).lookup(domain="example.com")
    assert record == ControllerRecord(domain="example.com", record_name="_controllers.example.com", controllers=(PKH,))


def test_multi_string_record_is_joined(loopback_dns: LoopbackDns) -> None:
    # one TXT record made of three character-strings, split mid-DID as long records are
    loopback_dns.set_txt("_controllers.example.com", ["v=1;controller=did:pkh:eip155:1:", "0xab5801a7d398351b8be1",
                                                      "1c439e05c5b3259aec9b;controller=" + WEB])  # fmt: skip
    record = _resolver(loopback_dns).lookup(domain="example.com")
    assert record is not None
    assert record.controllers == (PKH, WEB)


def test_several_records_non_v1_filtered(loopback_dns: LoopbackDns) -> None:
    loopback_dns.set_txt(
        "_controllers.example.com",
        "google-site-verification=abc",
        f"v=2;controller={WEB}",
        f" v = 1 ; controller = {PKH} ",
        "v=1;controller=did:jwk:eyJrdHkiOiJPS1AifQ;controller=" + PKH,
    )
    record = _resolver(loopback_dns).lookup(domain="example.com")
    assert record is not None
    assert record.controllers == (PKH, "did:jwk:eyJrdHkiOiJPS1AifQ")


def test_omatrust_fallback_only_when_controllers_is_absent(loopback_dns: LoopbackDns) -> None:
    loopback_dns.set_txt("_omatrust.old.example", f"v=1;controller={WEB}")
    record = _resolver(loopback_dns).lookup(domain="old.example")
    assert record == ControllerRecord(domain="old.example", record_name="_omatrust.old.example", controllers=(WEB,))

    loopback_dns.set_txt("_controllers.both.example", f"v=1;controller={PKH}")
    loopback_dns.set_txt("_omatrust.both.example", f"v=1;controller={WEB}")
    record = _resolver(loopback_dns).lookup(domain="both.example")
    assert record is not None
    assert record.controllers == (PKH,)
    assert loopback_dns.queries_for("_omatrust.both.example") == 0  # no query more than needed

    loopback_dns.set_txt("_controllers.v2.example", f"v=2;controller={PKH}")  # no v=1 here → older name
    loopback_dns.set_txt("_omatrust.v2.example", f"v=1;controller={WEB}")
    record = _resolver(loopback_dns).lookup(domain="v2.example")
    assert record is not None
    assert record.record_name == "_omatrust.v2.example"


def test_nxdomain_and_noanswer_are_answers(loopback_dns: LoopbackDns) -> None:
    resolver = _resolver(loopback_dns)
    assert resolver.lookup(domain="nothing.example") is None
    assert loopback_dns.queries_for("_controllers.nothing.example") == 1
    assert loopback_dns.queries_for("_omatrust.nothing.example") == 1
    loopback_dns.set_empty("_controllers.empty.example")
    loopback_dns.set_empty("_omatrust.empty.example")
    assert resolver.lookup(domain="empty.example") is None


def test_timeout_is_dns_failed(loopback_dns: LoopbackDns) -> None:
    loopback_dns.hang = True
    started = time.monotonic()
    with pytest.raises(DnsFailed) as info:
        _resolver(loopback_dns, timeout=0.3).lookup(domain="example.com")
    assert info.value.reason is Reason.DNS_FAILED
    assert isinstance(info.value, CouldNotCheck)
    assert time.monotonic() - started < 1.0


def test_servfail_is_dns_failed(loopback_dns: LoopbackDns) -> None:
    loopback_dns.set_servfail("_controllers.broken.example")
    with pytest.raises(DnsFailed):
        _resolver(loopback_dns).lookup(domain="broken.example")


def test_no_fallback_after_a_failure(loopback_dns: LoopbackDns) -> None:
    # A failing current name must not be papered over by an older record.
    loopback_dns.set_hang("_controllers.x.example")
    loopback_dns.set_txt("_omatrust.x.example", f"v=1;controller={WEB}")
    with pytest.raises(DnsFailed):
        _resolver(loopback_dns, timeout=0.3).lookup(domain="x.example")
    assert loopback_dns.queries_for("_omatrust.x.example") == 0


def test_unreachable_nameserver_is_dns_failed() -> None:
    with LoopbackDns() as server:
        nameserver = server.nameserver
    with pytest.raises(DnsFailed):  # the port is closed now: nothing answers
        ControllerResolver(nameservers=[nameserver], timeout=0.3).lookup(domain="example.com")


def test_answers_are_cached_failures_are_not(loopback_dns: LoopbackDns) -> None:
    clock = FakeClock()
    resolver = _resolver(loopback_dns, timeout=0.3, ttl=60, clock=clock)
    loopback_dns.set_txt("_controllers.example.com", f"v=1;controller={PKH}")
    first = resolver.lookup(domain="example.com")
    assert resolver.lookup(domain="Example.COM.") == first  # same name after normalization, from cache
    assert resolver.lookup(domain="nothing.example") is None
    assert resolver.lookup(domain="nothing.example") is None  # negative answers are cached too
    assert len(loopback_dns.queries) == 3

    loopback_dns.set_hang("_controllers.flaky.example")
    with pytest.raises(DnsFailed):
        resolver.lookup(domain="flaky.example")
    loopback_dns.clear()
    loopback_dns.set_txt("_controllers.flaky.example", f"v=1;controller={WEB}")
    record = resolver.lookup(domain="flaky.example")  # the failure was not remembered
    assert record is not None
    assert record.controllers == (WEB,)

    loopback_dns.set_txt("_controllers.example.com", f"v=1;controller={WEB}")
    clock.now += 59
    assert resolver.lookup(domain="example.com") == first
    clock.now += 2
    record = resolver.lookup(domain="example.com")
    assert record is not None
    assert record.controllers == (WEB,)


def test_domain_with_port_is_looked_up_by_host(loopback_dns: LoopbackDns) -> None:
    loopback_dns.set_txt("_controllers.localhost", f"v=1;controller={WEB}")
    record = _resolver(loopback_dns).lookup(domain="localhost:4021")
    assert record is not None
    assert record.domain == "localhost"


def test_bad_domain() -> None:
    resolver = ControllerResolver(nameservers=["127.0.0.1:1"], timeout=0.2)
    for domain in ("", "a" * 64 + ".example", "a..b"):
        with pytest.raises(MalformedInput):
            resolver.lookup(domain=domain)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1", ("127.0.0.1", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)), ("::1", ("::1", 53)),
     ("[::1]:5353", ("::1", 5353)), (" 10.0.0.1 ", ("10.0.0.1", 53))],
)  # fmt: skip
def test_parse_nameserver(text: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize("text", ["dns.google", "127.0.0.1:0", "127.0.0.1:x", "[::1]:99999"])
def test_parse_nameserver_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r".+"):
        parse_nameserver(text)


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([f"v=1;controller={PKH}"], (PKH,)),
        ([f"controller={PKH};v=1"], (PKH,)),  # field order does not matter
        ([f"V=1; Controller={PKH};"], (PKH,)),
        ([f"v=1;controller={PKH}", f"v=1;controller={PKH}"], (PKH,)),  # duplicates merged
        (["v=1"], ()),  # a v=1 record listing nobody
        ([f"v=10;controller={PKH}"], None),
        ([f"controller={PKH}"], None),  # no version: not ours
        (["hello", ""], None),
        ([], None),
    ],
)
def test_parse_controller_records(records: list[str], expected: tuple[str, ...] | None) -> None:
    assert parse_controller_records(records=records) == expected
