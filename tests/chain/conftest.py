from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.chain.eas import EasClient
from service.chain.embedded import EmbeddedChain, start_embedded_chain


@pytest.fixture(scope="module")
def chain() -> EmbeddedChain:
    """One embedded chain per test module (≈ 50 ms after the first)."""
    return start_embedded_chain()


@pytest.fixture
def client(chain: EmbeddedChain) -> Iterator[EasClient]:
    yield chain.client()
