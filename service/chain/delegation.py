"""EIP-712 delegated-attestation requests for EAS: typed data, digest, signer recovery, the request value type.

No RPC here: the EIP-712 domain is passed in (``EasClient`` derives it from the node). The digest is computed
directly (typeHash + ABI-encoded fields, as ``EIP1271Verifier._verifyAttest`` does); tests check it against
eth-account's ``encode_typed_data`` and the on-chain contract.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import coincurve
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from service.chain.addresses import checksum_cached
from service.domain import USER_REVIEW_SCHEMA_UID, Reason
from service.errors import ChainRejected, MalformedInput

ATTEST_TYPE = (
    "Attest(address attester,bytes32 schema,address recipient,uint64 expirationTime,bool revocable,bytes32 refUID,"
    "bytes data,uint256 value,uint256 nonce,uint64 deadline)"
)
ATTEST_TYPEHASH = keccak(text=ATTEST_TYPE)
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
DOMAIN_TYPEHASH = keccak(text=DOMAIN_TYPE)

# secp256k1 group order; OpenZeppelin's ECDSA (used by EAS) rejects s > n/2 and v ∉ {27, 28}.
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_ZERO32 = b"\x00" * 32

_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Attest": [
        {"name": "attester", "type": "address"},
        {"name": "schema", "type": "bytes32"},
        {"name": "recipient", "type": "address"},
        {"name": "expirationTime", "type": "uint64"},
        {"name": "revocable", "type": "bool"},
        {"name": "refUID", "type": "bytes32"},
        {"name": "data", "type": "bytes"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint64"},
    ],
}


@dataclass(frozen=True, slots=True)
class EasDomain:
    """The EIP-712 domain an EAS deployment signs with. ``version`` is the *signing* version (Base: "1.3.0")."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str  # checksummed

    def separator(self) -> bytes:
        """The EIP-712 domain separator (computed once per domain: it is on every request's hot path)."""
        return _separator(self)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


def _b32(hex_or_bytes: str | bytes) -> bytes:
    raw = bytes.fromhex(hex_or_bytes.removeprefix("0x")) if isinstance(hex_or_bytes, str) else bytes(hex_or_bytes)
    if len(raw) != 32:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "expected 32 bytes")
    return raw


def attest_digest(
    *, domain: EasDomain, attester: str, recipient: str, data: bytes, nonce: int, deadline: int, schema_uid: str
) -> bytes:
    """The 32-byte EIP-712 digest EAS verifies for a delegated attest (expirationTime 0, not revocable, no refUID,
    value 0 — the only shape this service signs).

    Every field of the struct is a static 32-byte word, so the ABI encoding is a plain concatenation: built by
    hand here (≈10× faster than ``eth_abi.encode``; the tests hold it equal to eth-account and to the contract).

    Raises:
        MalformedInput(BAD_FIELD_VALUE): an address, the schema UID, the nonce or the deadline is out of range.
    """
    if not (0 <= nonce < 2**256 and 0 <= deadline < 2**64):
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "deadline/nonce out of range")
    struct_hash = keccak(
        b"".join(
            (
                ATTEST_TYPEHASH,
                _address_word(attester),
                _schema_word(schema_uid),
                _address_word(recipient),
                _ZERO32,  # expirationTime
                _ZERO32,  # revocable = false
                _ZERO32,  # refUID
                keccak(data),
                _ZERO32,  # value
                nonce.to_bytes(32, "big"),
                deadline.to_bytes(32, "big"),
            )
        )
    )
    return keccak(b"\x19\x01" + domain.separator() + struct_hash)


def _address_word(address: str) -> bytes:
    try:
        raw = bytes.fromhex(address.removeprefix("0x"))
    except ValueError as exc:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, f"not an address: {address!r}") from exc
    if len(raw) != 20:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, f"not an address: {address!r}")
    return b"\x00" * 12 + raw


@functools.lru_cache(maxsize=16)
def _schema_word(schema_uid: str) -> bytes:
    return _b32(schema_uid)


@functools.lru_cache(maxsize=16)
def _separator(domain: EasDomain) -> bytes:
    return keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [DOMAIN_TYPEHASH, keccak(text=domain.name), keccak(text=domain.version), domain.chain_id,
             domain.verifying_contract],
        )
    )


def attest_typed_data(
    *, domain: EasDomain, attester: str, recipient: str, data: bytes, nonce: int, deadline: int, schema_uid: str
) -> dict[str, Any]:
    """The complete ``eth_signTypedData_v4`` message (types incl. EIP712Domain, primaryType, domain, message)."""
    return {
        "types": {name: [dict(f) for f in fields] for name, fields in _TYPES.items()},
        "primaryType": "Attest",
        "domain": domain.as_json(),
        "message": {
            "attester": checksum_cached(attester),
            "schema": "0x" + _b32(schema_uid).hex(),
            "recipient": checksum_cached(recipient),
            "expirationTime": 0,
            "revocable": False,
            "refUID": "0x" + _ZERO32.hex(),
            "data": "0x" + bytes(data).hex(),
            "value": 0,
            "nonce": nonce,
            "deadline": deadline,
        },
    }


def normalize_signature(signature: str | bytes) -> bytes:
    """65-byte r‖s‖v in the form EAS accepts: v ∈ {27, 28} and low-s (a high-s signature is flipped — same signer,
    same digest, so this is not a change of meaning).

    Raises:
        MalformedInput(SIGNATURE_ENCODING | SIGNATURE_BAD_V): not 65 bytes / bad hex / r or s out of range / bad v.
    """
    try:
        raw = bytes.fromhex(signature.removeprefix("0x")) if isinstance(signature, str) else bytes(signature)
    except ValueError as exc:
        raise MalformedInput(Reason.SIGNATURE_ENCODING, "signature is not hex") from exc
    if len(raw) != 65:
        raise MalformedInput(Reason.SIGNATURE_ENCODING, f"signature must be 65 bytes, got {len(raw)}")
    r, s, v = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    if v in (0, 1):
        v += 27
    if v not in (27, 28):
        raise MalformedInput(Reason.SIGNATURE_BAD_V, f"v={raw[64]}")
    if not (0 < r < _N and 0 < s < _N):
        raise MalformedInput(Reason.SIGNATURE_ENCODING, "r or s out of range")
    if s > _N // 2:
        s, v = _N - s, 55 - v  # 27 ↔ 28
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])


def recover_signer(*, digest: bytes, signature: bytes) -> str:
    """Checksummed address that produced ``signature`` (normalized, 65 bytes) over ``digest``.

    Raises:
        MalformedInput(SIGNATURE_ENCODING): no public key recovers from it.
    """
    sig = normalize_signature(signature)
    try:
        pub = coincurve.PublicKey.from_signature_and_message(sig[:64] + bytes([sig[64] - 27]), digest, hasher=None)
    except ValueError as exc:
        raise MalformedInput(Reason.SIGNATURE_ENCODING, "signature does not recover") from exc
    return checksum_cached("0x" + keccak(pub.format(compressed=False)[1:])[-20:].hex())  # usually the attester's


@dataclass(frozen=True, slots=True)
class DelegatedRequest:
    """A reviewer-signed EAS delegated attest, ready for the relayer.

    All fields are plain values so a store can persist them as is. Construction normalizes: addresses are
    checksummed, ``signature`` (0x-hex or bytes) becomes 65 bytes r‖s‖v with v 27/28 and low-s.
    :meth:`content_key` = keccak256(EIP-712 digest): identical signed content (same domain, fields, nonce) shares it
    whatever the signature bytes, so it is the idempotency key of the outbox.

    Raises (on construction):
        MalformedInput: bad address, signature encoding, or out-of-range deadline/nonce.
    """

    attester: str
    data: bytes
    recipient: str
    deadline: int
    nonce: int
    signature: bytes
    schema_uid: str = USER_REVIEW_SCHEMA_UID
    # digest per domain: the submit path asks for the content key and then the signer of the same request
    _digests: dict[EasDomain, bytes] = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        try:
            attester, recipient = checksum_cached(self.attester), checksum_cached(self.recipient)
        except (ValueError, TypeError) as exc:
            raise MalformedInput(Reason.BAD_FIELD_VALUE, f"bad address: {exc}") from exc
        if not (0 <= self.deadline < 2**64 and 0 <= self.nonce < 2**256):
            raise MalformedInput(Reason.BAD_FIELD_VALUE, "deadline/nonce out of range")
        # frozen dataclass: normalized values are set once, here
        object.__setattr__(self, "attester", attester)
        object.__setattr__(self, "recipient", recipient)
        object.__setattr__(self, "data", bytes(self.data))
        object.__setattr__(self, "signature", normalize_signature(self.signature))
        object.__setattr__(self, "schema_uid", "0x" + _b32(self.schema_uid).hex())

    def digest(self, *, domain: EasDomain) -> bytes:
        """The EIP-712 digest the attester signed (computed from the fields once per domain; never stored)."""
        digest = self._digests.get(domain)
        if digest is None:
            digest = self._digests[domain] = attest_digest(
                domain=domain,
                attester=self.attester,
                recipient=self.recipient,
                data=self.data,
                nonce=self.nonce,
                deadline=self.deadline,
                schema_uid=self.schema_uid,
            )
        return digest

    def content_key(self, *, domain: EasDomain) -> str:
        """keccak256 of the EIP-712 digest, 0x-hex (66 chars)."""
        return "0x" + keccak(self.digest(domain=domain)).hex()

    def signer(self, *, domain: EasDomain) -> str:
        """Address recovered from the signature over this request's digest (may differ from ``attester``).

        Raises:
            MalformedInput(SIGNATURE_ENCODING): nothing recovers from the signature.
        """
        return recover_signer(digest=self.digest(domain=domain), signature=self.signature)

    def signature_tuple(self) -> tuple[int, bytes, bytes]:
        """``(v, r, s)`` as EAS's ``Signature`` struct wants it."""
        return self.signature[64], self.signature[:32], self.signature[32:64]


def check_deadline(*, deadline: int, now: int) -> None:
    """The delegated request's deadline rule (EAS refuses ``deadline < now`` at mining time; we refuse one that is not
    in the future, and 0 — "never expires" — because we only relay bounded requests). Used at prepare and submit.

    Raises:
        ChainRejected: DELEGATION_EXPIRED.
    """
    if deadline <= now:
        raise ChainRejected(Reason.DELEGATION_EXPIRED, f"deadline {deadline} <= now {now}")
