"""Real loopback servers for the interop tests: one HTTPS did:web host and one DNS server per module.

The did:web host's certificate also covers ``didweb.test``: the TS SDK fetches ``did:web:localhost…`` over plain
http, so SDK-side HTTPS resolution uses that name, mapped to 127.0.0.1 inside the Node peer only. The x402 payment
tests share ``tests.x402.support``'s anvil chain and API fixtures.
"""

from __future__ import annotations

from tests.support.fixtures import _dns_module, _host_module, controllers, dns, host, resolver  # noqa: F401
from tests.x402.support import chain, service  # noqa: F401
