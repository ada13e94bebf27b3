"""Real loopback servers shared by the identity tests (one of each per test module, cleared between tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.identity.fetcher import SafeFetcher
from tests.support.didweb_host import DidWebHost
from tests.support.dns_server import LoopbackDns


@pytest.fixture(scope="module")
def _didweb_host_module() -> Iterator[DidWebHost]:
    with DidWebHost(extra_names=("didhost.test",)) as host:
        yield host


@pytest.fixture
def didweb_host(_didweb_host_module: DidWebHost) -> DidWebHost:
    _didweb_host_module.clear()
    return _didweb_host_module


@pytest.fixture
def dev_fetcher(didweb_host: DidWebHost) -> SafeFetcher:
    """A SafeFetcher that trusts the test CA and allows the loopback test host (the development escape hatch)."""
    return SafeFetcher(timeout=2.0, ca_file=didweb_host.ca_pem_path, insecure_hosts=frozenset({didweb_host.host}))


@pytest.fixture(scope="module")
def _dns_module() -> Iterator[LoopbackDns]:
    with LoopbackDns() as server:
        yield server


@pytest.fixture
def loopback_dns(_dns_module: LoopbackDns) -> LoopbackDns:
    _dns_module.clear()
    return _dns_module
