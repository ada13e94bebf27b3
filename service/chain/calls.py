"""ABI encoding of the EAS calls the relayer makes, the ``Attested`` topic, and the gas model. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from service.chain.delegation import DelegatedRequest

ATTESTED_TOPIC = keccak(text="Attested(address,address,bytes32,bytes32)")
GAS_CAP = 2**24  # per transaction, well under every block gas limit we target

_REQ_DATA = "(address,uint64,bool,bytes32,bytes,uint256)"  # AttestationRequestData
_SIG = "(uint8,bytes32,bytes32)"  # Signature
_DELEGATED_ARG = f"(bytes32,{_REQ_DATA},{_SIG},address,uint64)"  # DelegatedAttestationRequest
_MULTI_DELEGATED_ARG = f"(bytes32,{_REQ_DATA}[],{_SIG}[],address,uint64)[]"  # MultiDelegatedAttestationRequest[]
_ATTEST_ARG = f"(bytes32,{_REQ_DATA})"  # AttestationRequest
_SEL_ATTEST_BY_DELEGATION = keccak(text=f"attestByDelegation({_DELEGATED_ARG})")[:4]
_SEL_MULTI_BY_DELEGATION = keccak(text=f"multiAttestByDelegation({_MULTI_DELEGATED_ARG})")[:4]
_SEL_ATTEST = keccak(text=f"attest({_ATTEST_ARG})")[:4]
_ZERO32 = b"\x00" * 32

# Gas model, an upper bound calibrated on py-evm (EAS 1.4.0, Prague rules): measured single attestByDelegation
# ≈ 154k + 22.95k per 32-byte word of data (the SSTOREs of the data dominate), each extra item of a
# multiAttestByDelegation ≈ 137k + 22.95k per word. Margins ≈ +10%; tests/chain check the bound on both chains.
_GAS_TX_BASE = 50_000
_GAS_PER_ATTESTATION = 170_000
_GAS_PER_WORD = 24_500


def gas_for(*, data_lengths: Sequence[int]) -> int:
    """Gas limit for one transaction attesting data of these sizes (an upper bound, see the calibration test)."""
    words = sum((n + 31) // 32 for n in data_lengths)
    return _GAS_TX_BASE + _GAS_PER_ATTESTATION * len(data_lengths) + _GAS_PER_WORD * words


def address_topic(address: str) -> str:
    """An address as a 32-byte log topic (left-padded), 0x-hex."""
    return "0x" + "00" * 12 + address.lower().removeprefix("0x")


def _data_tuple(r: DelegatedRequest) -> tuple[Any, ...]:
    return (r.recipient, 0, False, _ZERO32, r.data, 0)  # never expires, not revocable, no refUID, no value


def delegated_calldata(*, requests: Sequence[DelegatedRequest]) -> bytes:
    """``attestByDelegation`` for one request; ``multiAttestByDelegation`` for several, with one
    ``MultiDelegatedAttestationRequest`` per run of consecutive requests sharing (schema, attester, deadline) —
    EAS verifies each run's signatures against that attester's increasing nonces."""
    if len(requests) == 1:
        r = requests[0]
        args = (bytes.fromhex(r.schema_uid[2:]), _data_tuple(r), r.signature_tuple(), r.attester, r.deadline)
        return _SEL_ATTEST_BY_DELEGATION + encode([_DELEGATED_ARG], [args])
    groups: list[list[DelegatedRequest]] = []
    for r in requests:
        last = groups[-1][-1] if groups else None
        if last and (last.schema_uid, last.attester, last.deadline) == (r.schema_uid, r.attester, r.deadline):
            groups[-1].append(r)
        else:
            groups.append([r])
    multi = [
        (
            bytes.fromhex(g[0].schema_uid[2:]),
            [_data_tuple(r) for r in g],
            [r.signature_tuple() for r in g],
            g[0].attester,
            g[0].deadline,
        )
        for g in groups
    ]
    return _SEL_MULTI_BY_DELEGATION + encode([_MULTI_DELEGATED_ARG], [multi])


def attest_calldata(*, schema_uid: str, recipient: str, data: bytes) -> bytes:
    """``attest`` (the caller is the attester: platform attester mode)."""
    args = (bytes.fromhex(schema_uid.removeprefix("0x")), (to_checksum_address(recipient), 0, False, _ZERO32, data, 0))
    return _SEL_ATTEST + encode([_ATTEST_ARG], [args])
