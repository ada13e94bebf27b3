from __future__ import annotations

import pytest

from service.chain.eas_relayer import EasClient
from service.chain.embedded import EmbeddedChain, start_embedded_chain


@pytest.fixture(scope="module")
def chain() -> EmbeddedChain:
    """One embedded chain per test module (≈ 70 ms after the first)."""
    return start_embedded_chain()


@pytest.fixture
def client(chain: EmbeddedChain) -> EasClient:
    return chain.client()
