"""The store tests that judge real proofs use the batch environment of tests/workflows (a did:web host, a DNS
server, a fresh database)."""

from tests.workflows.conftest import batch_didweb, batch_dns, batch_env

__all__ = ["batch_didweb", "batch_dns", "batch_env"]
