"""Real loopback servers for the interop tests: one HTTPS did:web host and one DNS server per module.

The did:web host's certificate also covers ``didweb.test``: the TS SDK fetches ``did:web:localhost…`` over plain
http, so SDK-side HTTPS resolution uses that name, mapped to 127.0.0.1 inside the Node peer only.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.identity.dns import ControllerResolver
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from tests.interop.peer import SDK_HOST_NAME
from tests.support.didweb_host import DidWebHost
from tests.support.dns_server import LoopbackDns


@pytest.fixture(scope="module")
def _host_module() -> Iterator[DidWebHost]:
    with DidWebHost(extra_names=(SDK_HOST_NAME,)) as host:
        yield host


@pytest.fixture
def host(_host_module: DidWebHost) -> DidWebHost:
    _host_module.clear()
    return _host_module


@pytest.fixture(scope="module")
def _dns_module() -> Iterator[LoopbackDns]:
    with LoopbackDns() as server:
        yield server


@pytest.fixture
def dns(_dns_module: LoopbackDns) -> LoopbackDns:
    _dns_module.clear()
    return _dns_module


@pytest.fixture
def resolver(host: DidWebHost) -> DidResolver:
    """Fetches over HTTPS (test CA), loopback allowed for the test host only; fresh cache per test."""
    fetcher = SafeFetcher(timeout=3.0, ca_file=host.ca_pem_path, insecure_hosts=frozenset({host.host}))
    return DidResolver(fetcher=fetcher)


@pytest.fixture
def controllers(dns: LoopbackDns) -> ControllerResolver:
    return ControllerResolver(nameservers=[dns.nameserver], timeout=1.0)
