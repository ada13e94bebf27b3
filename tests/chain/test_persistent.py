"""The persistent embedded chain: a chain file survives restarts with every block, nonce and UID; contracts and
schema are placed once; an interrupted first start is redone; the file path follows the database URL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from eth_account import Account

from service.chain.embedded import MEMORY, EmbeddedChain, chain_path_for, start_embedded_chain

from .helpers import attested_count, make_review, sign_request


def _publish(chain: EmbeddedChain, reviewer, i: int) -> str:
    request, _ = sign_request(chain.client(), reviewer, make_review(i))
    [landed] = chain.client().submit(requests=[request])
    return landed.uid


def test_restart_keeps_blocks_nonces_and_uids(tmp_path: Path) -> None:
    path = tmp_path / "omatrust.chain"
    created: list[str] = []
    first = start_embedded_chain(path=path, on_first_creation=[lambda c: created.append(c.genesis_hash)])
    assert first.created
    assert not first.ephemeral
    reviewer = Account.create()
    uids = [_publish(first, reviewer, i) for i in range(3)]
    head, genesis = first.w3.eth.block_number, first.genesis_hash
    first.close()

    again = start_embedded_chain(path=path, on_first_creation=[lambda c: created.append("again")])
    assert not again.created
    assert not again.ephemeral
    assert created == [genesis]  # the first-creation hook ran once
    assert again.genesis_hash == genesis
    assert again.w3.eth.block_number == head  # nothing placed or registered again
    client = again.client()
    assert client.get_nonce(attester=reviewer.address) == 3
    for uid in uids:
        record = client.get_attestation(uid=uid)
        assert record is not None
        assert record.attester == reviewer.address
    assert attested_count(client, attester=reviewer.address) == 3
    # the next review signs with nonce 3 and lands after the old blocks
    uid = _publish(again, reviewer, 9)
    assert uid not in uids
    assert again.w3.eth.block_number == head + 1
    again.close()


def test_interrupted_first_start_is_created_again(tmp_path: Path) -> None:
    path = tmp_path / "c.chain"

    def boom(_chain: EmbeddedChain) -> None:
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        start_embedded_chain(path=path, on_first_creation=[boom])
    chain = start_embedded_chain(path=path)
    assert chain.created
    assert chain.w3.eth.block_number == 1  # block 1: the schema registration, once
    chain.close()


def test_other_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.chain"
    start_embedded_chain(path=path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE name = 'format'")
    from service.errors import ChainRejected

    with pytest.raises(ChainRejected, match="format"):
        start_embedded_chain(path=path)


def test_memory_chain_is_ephemeral() -> None:
    a, b = start_embedded_chain(), start_embedded_chain(path=MEMORY)
    assert a.ephemeral
    assert b.ephemeral
    assert a.created
    assert a.genesis_hash != b.genesis_hash  # each chain has its own identity, even within the same second


@pytest.mark.parametrize(
    ("url", "configured", "expected"),
    [
        ("sqlite:///./omatrust.db", "", "omatrust.chain"),
        ("sqlite:////var/lib/oma/store.sqlite3?timeout=5", "", "/var/lib/oma/store.chain"),
        ("sqlite://", "", MEMORY),
        ("sqlite:///:memory:", "", MEMORY),
        ("postgresql+psycopg://u@h/db", "", "omatrust.chain"),
        ("sqlite:///./omatrust.db", "/data/x.chain", "/data/x.chain"),
        ("sqlite:///./omatrust.db", MEMORY, MEMORY),
    ],
)
def test_chain_path_for(url: str, configured: str, expected: str) -> None:
    assert chain_path_for(database_url=url, configured=configured) == expected


def test_a_second_process_opens_the_file_read_only(tmp_path: Path) -> None:
    path = tmp_path / "c.chain"
    writer = start_embedded_chain(path=path)
    reader = start_embedded_chain(path=path)  # the same file while the writer holds it (as another process would)
    assert writer.writable
    assert not reader.writable
    assert reader.genesis_hash == writer.genesis_hash
    request, _ = sign_request(reader.client(), Account.create(), make_review(1))
    from service.errors import ChainUnavailable

    with pytest.raises(ChainUnavailable, match="another process"):
        reader.client().submit(requests=[request])
    reader.close()
    head = writer.w3.eth.block_number
    writer.close()
    again = start_embedded_chain(path=path)
    assert again.writable  # the lock went with the writer
    assert again.w3.eth.block_number == head  # nothing the reader tried was written
    again.close()
