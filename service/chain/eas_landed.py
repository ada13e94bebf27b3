"""Finding attestations that landed: matching a receipt's ``Attested`` logs to the requests it carried, and
searching ``Attested`` logs after the fact (after a crash, or a resend that reverted because the EAS nonce was
already consumed)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address

from service.chain.calls import ATTESTED_TOPIC, address_topic
from service.chain.delegation import DelegatedRequest
from service.chain.eas_reads import EasReads


@dataclass(frozen=True, slots=True)
class Landed:
    """One attestation that is on chain."""

    uid: str
    attester: str
    recipient: str
    tx_hash: str
    block_number: int
    block_hash: str | None = None


class LandedSearch(EasReads):
    """``EasReads`` plus the look-ups that tell whether (and where) a request landed."""

    def landed_from_receipt(self, *, receipt: Any, requests: Sequence[DelegatedRequest]) -> list[Landed | None]:
        """Match ``Attested`` logs of a successful receipt to ``requests``: EAS emits them in request order, so each
        request takes the next unused log with its (attester, recipient)."""
        logs = [
            log
            for log in receipt["logs"]
            if to_checksum_address(log["address"]) == self.eas_address
            and len(log["topics"]) == 4
            and bytes(log["topics"][0]) == ATTESTED_TOPIC
            and "0x" + bytes(log["topics"][3]).hex() == self.schema_uid.lower()
        ]
        used: set[int] = set()
        out: list[Landed | None] = []
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        for request in requests:
            match: Landed | None = None
            for i, log in enumerate(logs):
                if i in used:
                    continue
                recipient = to_checksum_address(bytes(log["topics"][1])[-20:])
                attester = to_checksum_address(bytes(log["topics"][2])[-20:])
                if (attester, recipient) == (request.attester, request.recipient):
                    used.add(i)
                    match = Landed(
                        uid="0x" + bytes(log["data"])[:32].hex(),
                        attester=attester,
                        recipient=recipient,
                        tx_hash=tx_hash,
                        block_number=int(receipt["blockNumber"]),
                        block_hash="0x" + bytes(receipt["blockHash"]).hex(),
                    )
                    break
            out.append(match)
        return out

    # ------------------------------------------------------------------ finding attestations after the fact
    def attested_logs(
        self, *, from_block: int, to_block: int, recipient: str | None = None, attester: str | None = None
    ) -> Iterator[Any]:
        """``Attested`` logs of this schema in [from_block, to_block], fetched in chunks of ``log_chunk_blocks``.

        Raises:
            ChainUnavailable: RPC failure.
        """
        topics: list[Any] = [
            "0x" + ATTESTED_TOPIC.hex(),
            address_topic(recipient) if recipient else None,
            address_topic(attester) if attester else None,
            self.schema_uid.lower(),
        ]
        yield from self.fetch_logs(
            address=self.eas_address,
            topics=topics,
            from_block=from_block,
            to_block=to_block,
            chunk_blocks=self.log_chunk_blocks,
        )

    def find_landed(self, *, request: DelegatedRequest, from_block: int) -> Landed | None:
        """Find an attestation of exactly ``request`` made at or after ``from_block`` (used after a crash or after a
        resend reverted because the EAS nonce was consumed). A candidate needs the same attester, recipient, schema
        and data; one whose transaction input carries this request's signature (r‖s) wins. Without such a
        transaction (e.g. relayed through a contract), a data match is accepted only when it is the only one and the
        attester's EAS nonce has moved past ``request.nonce``.

        Raises:
            ChainUnavailable: RPC failure.
        """
        head = self.block_number()
        candidates: list[Landed] = []
        for log in self.attested_logs(
            from_block=from_block, to_block=head, recipient=request.recipient, attester=request.attester
        ):
            uid = "0x" + bytes(log["data"])[:32].hex()
            record = self.get_attestation(uid=uid)
            if record is None or record.data != request.data:
                continue
            landed = Landed(
                uid=uid,
                attester=record.attester,
                recipient=record.recipient,
                tx_hash="0x" + bytes(log["transactionHash"]).hex(),
                block_number=int(log["blockNumber"]),
                block_hash="0x" + bytes(log["blockHash"]).hex(),
            )
            with self._rpc("eth_getTransactionByHash"):
                tx_input = bytes(self.w3.eth.get_transaction(log["transactionHash"])["input"])
            if request.signature[:64] in tx_input:
                return landed
            candidates.append(landed)
        if len(candidates) == 1 and self.get_nonce(attester=request.attester) > request.nonce:
            return candidates[0]
        return None
