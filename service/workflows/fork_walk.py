"""Where an indexer resumes after a reorg: the one fork walk shared by every indexer (User Reviews, OMATrust
attestations, ERC-8004 feedback).

Each indexer keeps, with its checkpoint, the hashes of the blocks it stored something from. When the checkpoint's
block hash no longer matches the chain, the kept hashes are walked from the highest down to the first one the chain
still has: the fork point. Each indexer then undoes, in its own way, what it stored from blocks above the fork point
and rewinds its checkpoint there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.store.chains import progress_row, recent_blocks


class BlockHashes(Protocol):
    def block_hash(self, *, number: int) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Fork:
    """A reorg below the checkpoint: everything stored from blocks above ``block`` is orphaned."""

    checkpoint: int  # the block the indexer had reached
    block: int  # the highest block still canonical (-1: none of the kept ones)
    block_hash: str | None  # its hash, when it is one the indexer kept


@dataclass(frozen=True, slots=True)
class Resume:
    checkpoint: int | None  # None: the indexer never ran
    fork: Fork | None = None  # set when the chain reorganized below ``checkpoint``


def find_fork(*, engine: Engine, name: str, chain: BlockHashes) -> Resume:
    """Where the indexer ``name`` stands against the chain now. Reads only; the caller undoes and rewinds.

    Raises:
        ChainUnavailable: RPC failure.
    """
    with Session(engine) as session:
        progress = progress_row(session, name=name)
        blocks = recent_blocks(session, name=name)
    if progress is None:
        return Resume(checkpoint=None)
    checkpoint = int(progress.last_block)
    if progress.block_hash is None and not blocks:
        return Resume(checkpoint=checkpoint)  # written before block hashes were kept
    if progress.block_hash is not None and chain.block_hash(number=checkpoint) == progress.block_hash:
        return Resume(checkpoint=checkpoint)
    for number, block_hash in blocks:  # highest first
        if number <= checkpoint and chain.block_hash(number=number) == block_hash:
            return Resume(checkpoint=checkpoint, fork=Fork(checkpoint=checkpoint, block=number, block_hash=block_hash))
    # Deeper than every hash kept: start over below the oldest one.
    lowest = (min(n for n, _ in blocks) - 1) if blocks else checkpoint - 1
    return Resume(checkpoint=checkpoint, fork=Fork(checkpoint=checkpoint, block=max(-1, lowest), block_hash=None))
