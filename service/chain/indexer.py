"""Indexer of OMATrust User Reviews on EAS: ``Attested`` events for the schema → ``getAttestation`` → decoded review.

Whoever made them (our publisher, another relayer, a reviewer calling ``attest`` directly), every attestation under
the User Review schema UID is found. ``Attested(address indexed recipient, address indexed attester, bytes32 uid,
bytes32 indexed schemaUID)``: topics are [signature, recipient, attester, schemaUID], the UID is in ``data``.

Resuming and reorgs: the caller stores the last processed block (the ``checkpoint`` of each yielded chunk) after it
has stored the chunk's reviews. :meth:`ReviewIndexer.sync` then restarts at ``checkpoint + 1 - rewind``, re-reading
the last ``rewind`` blocks, and never reads past ``head - confirmations``. Re-read attestations come out again: the
caller dedupes by ``uid`` (an attestation UID is unique; a reorg that changes the block time changes the UID, so
a re-included review shows up with a new UID and the orphaned one simply stops being confirmed on chain).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from service.chain.addresses import checksum_cached
from service.chain.codec import decode_review
from service.chain.eas_relayer import EasClient
from service.domain import Reason, Review
from service.errors import MalformedInput


@dataclass(frozen=True, slots=True)
class IndexedReview:
    """One User Review attestation found on chain. ``review`` is None (and ``error`` set) when ``data`` does not
    decode under the schema — anyone can attest garbage under a public schema; callers keep it out of scores."""

    uid: str
    attester: str
    recipient: str
    time: int
    block_number: int
    tx_hash: str
    log_index: int
    review: Review | None
    data: bytes
    revocation_time: int = 0
    error: Reason | None = None
    block_hash: str = ""


@dataclass(frozen=True, slots=True)
class IndexedChunk:
    """Reviews found in blocks [from_block, to_block]; store them, then store ``to_block`` as the checkpoint."""

    from_block: int
    to_block: int
    reviews: tuple[IndexedReview, ...]

    @property
    def checkpoint(self) -> int:
        return self.to_block


class ReviewIndexer:
    """Reads User Review attestations through an ``EasClient`` (its ``schema_uid`` selects the schema)."""

    def __init__(
        self, *, client: EasClient, chunk_blocks: int = 2_000, confirmations: int = 0, rewind: int | None = None
    ) -> None:
        self.client = client
        self.chunk_blocks = chunk_blocks
        self.confirmations = confirmations
        self.rewind = confirmations if rewind is None else rewind

    def start_block(self, *, checkpoint: int | None, start_block: int = 0) -> int:
        """First block to read given the stored checkpoint (None = never synced: ``start_block``)."""
        if checkpoint is None:
            return start_block
        return max(start_block, checkpoint + 1 - self.rewind)

    def sync(
        self, *, checkpoint: int | None, start_block: int = 0, recipient: str | None = None
    ) -> Iterator[IndexedChunk]:
        """Chunks from the checkpoint up to ``head - confirmations`` (empty chunks included, so the checkpoint
        advances). ``recipient`` restricts to one DID Address.

        Raises:
            ChainUnavailable: RPC failure (already yielded chunks stay valid; resume from their checkpoint).
        """
        safe_head = self.client.block_number() - self.confirmations
        start = self.start_block(checkpoint=checkpoint, start_block=start_block)
        while start <= safe_head:
            end = min(safe_head, start + self.chunk_blocks - 1)
            yield IndexedChunk(start, end, tuple(self.scan(from_block=start, to_block=end, recipient=recipient)))
            start = end + 1

    def scan(self, *, from_block: int, to_block: int, recipient: str | None = None) -> Iterator[IndexedReview]:
        """Every User Review attestation in [from_block, to_block], in log order.

        Raises:
            ChainUnavailable: RPC failure.
        """
        logs = list(self.client.attested_logs(from_block=from_block, to_block=to_block, recipient=recipient))
        uids = ["0x" + bytes(log["data"])[:32].hex() for log in logs]
        records = self.client.get_attestations(uids=uids)  # batched: one round trip per batch, not per event
        for log, uid, record in zip(logs, uids, records, strict=True):
            if record is None:  # the log's block was reorged away between getLogs and this call
                continue
            review: Review | None
            error: Reason | None = None
            try:
                review = decode_review(data=record.data)
            except MalformedInput as exc:
                review, error = None, exc.reason
            yield IndexedReview(
                uid=uid,
                attester=record.attester,
                recipient=checksum_cached(record.recipient),  # few subjects: a cache hit, not a keccak
                time=record.time,
                block_number=int(log["blockNumber"]),
                block_hash="0x" + bytes(log["blockHash"]).hex(),
                tx_hash="0x" + bytes(log["transactionHash"]).hex(),
                log_index=int(log["logIndex"]),
                review=review,
                data=record.data,
                revocation_time=record.revocation_time,
                error=error,
            )
