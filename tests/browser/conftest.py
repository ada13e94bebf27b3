"""The anvil + OMATrust schemas + loopback did:web/DNS environment of ``tests/authorization``, for the Chromium test
of review responses (fixtures are only set up for the tests that ask for them)."""

from tests.authorization.conftest import _loopback, anvil_node, chain, env  # noqa: F401 (re-exported fixtures)
