"""Shared pytest fixtures: one real HTTPS did:web host and one real DNS server per test module (cleared per test),
and resolvers pointed at them. Import the names into a conftest.py (or test module) to use them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.identity.dns import ControllerResolver
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from tests.support.didweb_host import DidWebHost
from tests.support.dns_server import LoopbackDns

# A second name on the host's certificate: the x402 SDK fetches did:web over plain http for "localhost", so its
# HTTPS path is tested under this name (mapped to 127.0.0.1 inside the Node peer only).
SDK_HOST_NAME = "didweb.test"


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
