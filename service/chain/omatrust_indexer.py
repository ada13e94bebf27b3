"""Indexer of the OMATrust attestations besides User Reviews: ``Attested`` and ``Revoked`` events of the anchored
schema UIDs (current and prior) → ``getAttestation`` → decoded with the exact schema string.

``Revoked(address indexed recipient, address indexed attester, bytes32 uid, bytes32 indexed schemaUID)`` has the
same layout as ``Attested``; the revocation time is read from the attestation itself (``revocationTime``).
Anyone can attest under a public schema: undecodable data comes out with ``error`` set (stored as a reject).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils.crypto import keccak

from service.chain.calls import ATTESTED_TOPIC
from service.chain.eas_relayer import EasClient
from service.chain.omatrust_codec import VERSIONS, Record, decode_attestation
from service.domain import Reason
from service.errors import MalformedInput

REVOKED_TOPIC = keccak(text="Revoked(address,address,bytes32,bytes32)")


@dataclass(frozen=True, slots=True)
class IndexedAttestation:
    uid: str
    schema_uid: str
    kind: str  # anchored schema name ("" when the schema has no codec)
    attester: str
    recipient: str
    time: int
    revocation_time: int
    ref_uid: str
    block_number: int
    block_hash: str
    record: Record | None
    error: Reason | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class OmatrustScan:
    attestations: tuple[IndexedAttestation, ...]
    revocations: dict[str, int]  # uid → revocation time, for Revoked events in the range
    revocation_blocks: dict[int, str] = field(default_factory=dict)  # number → hash of blocks holding those events


def _logs(client: EasClient, *, topic0: bytes, schema_uids: Sequence[str], from_block: int, to_block: int) -> list[Any]:
    topics = ["0x" + topic0.hex(), None, None, [u.lower() for u in schema_uids]]
    return list(
        client.fetch_logs(
            address=client.eas_address,
            topics=topics,
            from_block=from_block,
            to_block=to_block,
            chunk_blocks=client.log_chunk_blocks,
        )
    )


def scan_omatrust(
    *, client: EasClient, schema_uids: Sequence[str], kinds: dict[str, str], from_block: int, to_block: int
) -> OmatrustScan:
    """Attestations and revocations under ``schema_uids`` in [from_block, to_block]; ``kinds`` maps a schema UID to
    its anchored name.

    Raises:
        ChainUnavailable: RPC failure.
    """
    if not schema_uids:
        return OmatrustScan((), {})
    attested = _logs(client, topic0=ATTESTED_TOPIC, schema_uids=schema_uids, from_block=from_block, to_block=to_block)
    revoked = _logs(client, topic0=REVOKED_TOPIC, schema_uids=schema_uids, from_block=from_block, to_block=to_block)
    uids = ["0x" + bytes(log["data"])[:32].hex() for log in attested]
    records = client.get_attestations(uids=uids)
    found: list[IndexedAttestation] = []
    for log, uid, rec in zip(attested, uids, records, strict=True):
        if rec is None:  # reorged away between getLogs and this call
            continue
        schema = rec.schema.lower()
        record: Record | None = None
        error: Reason | None = None
        detail = ""
        try:
            record = decode_attestation(schema_uid=schema, data=rec.data)
        except MalformedInput as exc:
            error, detail = exc.reason, exc.detail
        except Exception as exc:  # anyone can attest: whatever the data makes the decoder raise is a reject
            error, detail = Reason.JUDGE_FAILED, f"decoding raised {type(exc).__name__}"
        found.append(IndexedAttestation(
            uid=uid, schema_uid=schema, kind=kinds.get(schema, VERSIONS[schema].name if schema in VERSIONS else ""),
            attester=rec.attester.lower(), recipient=rec.recipient.lower(), time=rec.time,
            revocation_time=rec.revocation_time, ref_uid=rec.ref_uid.lower(), block_number=int(log["blockNumber"]),
            block_hash="0x" + bytes(log["blockHash"]).hex(), record=record, error=error, detail=detail,
        ))  # fmt: skip
    revoked_uids = ["0x" + bytes(log["data"])[:32].hex() for log in revoked]
    revocations = {
        uid: rec.revocation_time
        for uid, rec in zip(revoked_uids, client.get_attestations(uids=revoked_uids), strict=True)
        if rec is not None and rec.revocation_time
    }
    blocks = {int(log["blockNumber"]): "0x" + bytes(log["blockHash"]).hex() for log in revoked}
    return OmatrustScan(tuple(found), revocations, blocks)
