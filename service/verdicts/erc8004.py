"""PURE ERC-8004 rules (PROTOCOLS.md §9): feedback files, registration files, proof of payment, the evidence summary.

An ERC-8004 ``giveFeedback`` is client-asserted: the contract only stops the agent's owner/operator from rating its
own agent at the time of the call. Everything else — that the off-chain file is the one committed to, that it
describes this feedback, that the client really paid the agent — is checked here, on bytes and observations read
elsewhere. Each feedback ends with one ``status`` and, unless verified, a stable ``reason``:

* ``payment-verified``: file hash-checked (or IPFS), consistent with the event, ``proofOfPayment`` shows a mined,
  successful transaction with an ERC-20 ``Transfer`` from the client to one of the agent's wallets;
* ``unverified``: a file without ``proofOfPayment`` or no file at all (``no-proof-of-payment``), or a proof that does
  not hold (``payment-*`` reasons, ``network-not-configured``);
* ``rejected``: the file cannot be trusted (``feedback-hash-mismatch``, ``feedback-file-invalid``,
  ``feedback-file-mismatch``, ``fetch-*``): its rating still counts as on-chain feedback, its payment claim does not.
* ``self-feedback`` is a flag (owner/operator of the agent at the feedback's block), not a status: such feedback is
  kept and reported, and left out of the evidence summary.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from service.dids import did_web_for_url, is_did
from service.domain import Reason, TxObservation
from service.errors import MalformedInput
from service.proofs.hashing import keccak256
from service.verdicts.payment import transfers

ZERO_HASH = "0x" + "00" * 32
STARRED_TAGS = frozenset({"starred", "rating", "stars"})  # tags whose value is a rating (normalized mean)
MAX_FILE_BYTES = 64 * 1024  # feedback and registration files
RATING_SCALE_MAX = 100  # ``starred`` values are 0–100; our own files map 1–5★ to 0, 25, 50, 75, 100


class FeedbackStatus(StrEnum):
    PAYMENT_VERIFIED = "payment-verified"
    UNVERIFIED = "unverified"
    REJECTED = "rejected"


class FeedbackReason(StrEnum):
    NO_FILE = "no-feedback-file"
    NO_PROOF = "no-proof-of-payment"
    HASH_MISMATCH = "feedback-hash-mismatch"
    FILE_INVALID = "feedback-file-invalid"
    FILE_MISMATCH = "feedback-file-mismatch"
    PAYMENT_NOT_FOUND = "payment-not-found"
    PAYMENT_PENDING = "payment-pending"
    PAYMENT_REVERTED = "payment-reverted"
    PAYMENT_WRONG_PAYER = "payment-wrong-payer"
    PAYMENT_WRONG_PAYEE = "payment-wrong-payee"
    PAYMENT_NO_TRANSFER = "payment-no-transfer"
    PAYMENT_NETWORK_NOT_CONFIGURED = "network-not-configured"


# Unverified for now: a later look at the chain can settle it (the payment was not visible yet, or could not be read).
RECHECKABLE_REASONS = frozenset({
    FeedbackReason.PAYMENT_PENDING.value, FeedbackReason.PAYMENT_NOT_FOUND.value,
    FeedbackReason.PAYMENT_NETWORK_NOT_CONFIGURED.value, Reason.RPC_FAILED.value, Reason.LOOKUP_SATURATED.value,
})  # fmt: skip
# What the payment network said for good about a mined transaction.
FINAL_PAYMENT_REASONS = frozenset({
    FeedbackReason.PAYMENT_REVERTED.value, FeedbackReason.PAYMENT_WRONG_PAYER.value,
    FeedbackReason.PAYMENT_WRONG_PAYEE.value, FeedbackReason.PAYMENT_NO_TRANSFER.value,
})  # fmt: skip


def recheck_replaces(*, old_status: str, old_reason: str | None, new_status: str, new_reason: str | None) -> bool:
    """A re-check's verdict replaces the stored one only when the stored one was open (unverified with a
    re-checkable reason) and the new one settles it: payment-verified, or a final payment reason of a mined
    transaction. Anything else — the node down again, the file unreachable now, still pending — keeps the stored
    verdict: a re-check never downgrades."""
    if old_status != FeedbackStatus.UNVERIFIED or old_reason not in RECHECKABLE_REASONS:
        return False
    if new_status == FeedbackStatus.PAYMENT_VERIFIED:
        return True
    return new_status == FeedbackStatus.UNVERIFIED and new_reason in FINAL_PAYMENT_REASONS


@dataclass(frozen=True, slots=True)
class ProofOfPayment:
    from_address: str
    to_address: str
    chain_id: int
    tx_hash: str

    @property
    def network(self) -> str:
        return f"eip155:{self.chain_id}"


@dataclass(frozen=True, slots=True)
class FeedbackFile:
    agent_registry: str
    agent_id: int
    client_address: str  # lower-case 0x address (the CAIP-10 account part)
    created_at: str
    value: int
    value_decimals: int
    proof_of_payment: ProofOfPayment | None


@dataclass(frozen=True, slots=True)
class Registration:
    """What an agent's registration file says about the services it is."""

    dids: tuple[str, ...]  # services[name=DID] endpoints that are DIDs
    web_dids: tuple[str, ...]  # did:web of the host of each ``web`` endpoint (to be confirmed)
    wallets: tuple[str, ...]  # agentWallet services (CAIP-10 → lower-case address)
    registrations: tuple[tuple[str, int], ...]  # (agentRegistry, agentId)


def _address(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    tail = value.rsplit(":", 1)[-1]  # CAIP-10 eip155:<chain>:0x… or a bare address
    if len(tail) == 42 and tail[:2].lower() == "0x" and all(c in "0123456789abcdefABCDEF" for c in tail[2:]):
        return tail.lower()
    return None


def _int(value: object, *, field: str) -> int:
    if isinstance(value, bool):
        raise MalformedInput(Reason.MALFORMED_ARTIFACT, f"{field} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise MalformedInput(Reason.MALFORMED_ARTIFACT, f"{field} must be an integer")


def _object(data: bytes) -> Mapping[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedInput(Reason.MALFORMED_ARTIFACT, "not JSON") from exc
    if not isinstance(doc, dict):
        raise MalformedInput(Reason.MALFORMED_ARTIFACT, "not a JSON object")
    return doc


def parse_feedback_file(data: bytes) -> FeedbackFile:
    """The spec's required fields (agentRegistry, agentId, clientAddress, createdAt, value, valueDecimals) and the
    optional ``proofOfPayment``.

    Raises:
        MalformedInput(malformed-artifact): a required field is missing or mistyped.
    """
    doc = _object(data)
    for name in ("agentRegistry", "agentId", "clientAddress", "createdAt", "value", "valueDecimals"):
        if name not in doc:
            raise MalformedInput(Reason.MALFORMED_ARTIFACT, f"{name} is required")
    client = _address(doc["clientAddress"])
    if not isinstance(doc["agentRegistry"], str) or client is None or not isinstance(doc["createdAt"], str):
        raise MalformedInput(Reason.MALFORMED_ARTIFACT, "bad agentRegistry/clientAddress/createdAt")
    decimals = _int(doc["valueDecimals"], field="valueDecimals")
    if not 0 <= decimals <= 18:
        raise MalformedInput(Reason.MALFORMED_ARTIFACT, "valueDecimals must be 0..18")
    proof = None
    raw = doc.get("proofOfPayment")
    if raw is not None:
        if not isinstance(raw, dict):
            raise MalformedInput(Reason.MALFORMED_ARTIFACT, "proofOfPayment must be an object")
        sender, recipient, tx = _address(raw.get("fromAddress")), _address(raw.get("toAddress")), raw.get("txHash")
        if sender is None or recipient is None or not isinstance(tx, str) or len(tx) != 66:
            raise MalformedInput(Reason.MALFORMED_ARTIFACT, "bad proofOfPayment")
        proof = ProofOfPayment(sender, recipient, _int(raw.get("chainId"), field="chainId"), tx.lower())
    return FeedbackFile(
        agent_registry=doc["agentRegistry"],
        agent_id=_int(doc["agentId"], field="agentId"),
        client_address=client,
        created_at=doc["createdAt"],
        value=_int(doc["value"], field="value"),
        value_decimals=decimals,
        proof_of_payment=proof,
    )


def hash_matches(*, uri: str, data: bytes, feedback_hash: str) -> bool:
    """keccak256(file) == feedbackHash; an IPFS URI needs no hash (content-addressed), so a zero hash passes
    there. Any other URI with a zero hash fails: nothing commits to the file's content."""
    if uri.startswith("ipfs://") and feedback_hash.lower() == ZERO_HASH:
        return True
    return "0x" + keccak256(data).hex() == feedback_hash.lower()


def file_consistent(
    file: FeedbackFile, *, agent_registry: str, agent_id: int, client: str, value: int, decimals: int
) -> bool:
    """The file describes this feedback: same registry, agent, client and value as the event."""
    return (
        file.agent_registry.lower() == agent_registry.lower()
        and file.agent_id == agent_id
        and file.client_address == client.lower()
        and (file.value, file.value_decimals) == (value, decimals)
    )


def judge_payment(
    *, proof: ProofOfPayment, client: str, payees: Iterable[str], observation: TxObservation
) -> FeedbackReason | None:
    """None when the transaction proves that ``client`` paid one of ``payees`` (PROTOCOLS.md §6: mined, status 1,
    an ERC-20 ``Transfer`` from the client to a payee); else the reason. ``fromAddress``/``toAddress`` are the
    client's assertions: they must agree with the event's client and the agent's wallets too."""
    wallets = {p.lower() for p in payees}
    if proof.from_address != client.lower():
        return FeedbackReason.PAYMENT_WRONG_PAYER
    if proof.to_address not in wallets:
        return FeedbackReason.PAYMENT_WRONG_PAYEE
    if not observation.known:
        return FeedbackReason.PAYMENT_NOT_FOUND
    if not observation.mined:
        return FeedbackReason.PAYMENT_PENDING
    if observation.status != 1:
        return FeedbackReason.PAYMENT_REVERTED
    moves = transfers(observation.logs)
    if any(t.sender == proof.from_address and t.recipient in wallets and t.value > 0 for t in moves):
        return None
    if any(t.sender == proof.from_address for t in moves):
        return FeedbackReason.PAYMENT_WRONG_PAYEE
    return FeedbackReason.PAYMENT_NO_TRANSFER


def parse_registration(data: bytes) -> Registration:
    """Service identities named by a registration file (``services``: ``DID`` → the DID, ``web`` → did:web of the
    endpoint's host, ``agentWallet`` → address; unknown entries ignored).

    Raises:
        MalformedInput(malformed-artifact): not a JSON object, or ``services`` is not a list.
    """
    doc = _object(data)
    services = doc.get("services", doc.get("endpoints", []))
    if not isinstance(services, list):
        raise MalformedInput(Reason.MALFORMED_ARTIFACT, "services must be a list")
    dids: list[str] = []
    webs: list[str] = []
    wallets: list[str] = []
    for entry in services:
        if not isinstance(entry, dict) or not isinstance(entry.get("endpoint"), str):
            continue
        name, endpoint = str(entry.get("name", "")).lower(), entry["endpoint"]
        if name == "did" and is_did(endpoint):
            dids.append(endpoint)
        elif name == "web" and endpoint.startswith("https://"):
            try:
                webs.append(did_web_for_url(endpoint))
            except MalformedInput:
                continue
        elif name == "agentwallet" and (address := _address(endpoint)) is not None:
            wallets.append(address)
    regs: list[tuple[str, int]] = []
    for reg in doc.get("registrations", []) if isinstance(doc.get("registrations"), list) else []:
        if isinstance(reg, dict) and isinstance(reg.get("agentRegistry"), str):
            try:
                regs.append((reg["agentRegistry"].lower(), _int(reg.get("agentId"), field="agentId")))
            except MalformedInput:
                continue
    return Registration(tuple(dids), tuple(webs), tuple(wallets), tuple(regs))


def confirms(registration: Registration, *, agent_registry: str, agent_id: int) -> bool:
    """A domain's ``/.well-known/agent-registration.json`` lists this agent."""
    return (agent_registry.lower(), agent_id) in registration.registrations


@dataclass(frozen=True, slots=True)
class FeedbackSummary:
    """The ERC-8004 evidence stream of one service (never part of the OMATrust score unless a scoring parameter
    says so). ``mean`` is the mean of value/10^decimals over rating-tagged feedback; None without any."""

    count: int
    rated: int
    mean: float | None
    payment_verified: int
    self_feedback: int
    revoked: int

    @property
    def payment_verified_share(self) -> float | None:
        return None if self.count == 0 else self.payment_verified / self.count

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "rated": self.rated,
            "normalizedMean": None if self.mean is None else round(self.mean, 6),
            "paymentVerified": self.payment_verified,
            "paymentVerifiedShare": (
                None if self.payment_verified_share is None else round(self.payment_verified_share, 6)
            ),
            "selfFeedbackExcluded": self.self_feedback,
            "revokedExcluded": self.revoked,
        }


@dataclass(frozen=True, slots=True)
class FeedbackFacts:
    value: int
    decimals: int
    tag1: str
    status: str
    self_feedback: bool
    revoked: bool
    client: str = ""
    position: tuple[int, int] = (0, 0)  # (block number, log index): chain order


def rating_unit(*, value: int, decimals: int, tag1: str) -> float | None:
    """A rating-tagged feedback's ``value / 10^decimals`` on ERC-8004's 0–100 ``starred`` scale, as a unit in
    [0, 1] (100 → 1.0); None when the tag is not a rating or the value is off that scale."""
    if tag1.lower() not in STARRED_TAGS or not 0 <= decimals <= 18:
        return None
    normalized = float(value) / float(10**decimals)
    if not (math.isfinite(normalized) and 0 <= normalized <= RATING_SCALE_MAX):
        return None
    return normalized / RATING_SCALE_MAX


def score_units(items: Iterable[FeedbackFacts]) -> tuple[float, ...]:
    """The ERC-8004 evidence a score may use (``ScoringParams.erc8004_weight``): live, non-self, payment-verified
    rating feedback on the 0–100 scale, one per client (its latest, in chain order), as units in [0, 1]."""
    latest: dict[str, tuple[tuple[int, int], float]] = {}
    for item in items:
        if item.revoked or item.self_feedback or item.status != FeedbackStatus.PAYMENT_VERIFIED:
            continue
        unit = rating_unit(value=item.value, decimals=item.decimals, tag1=item.tag1)
        if unit is None:
            continue
        seen = latest.get(item.client)
        if seen is None or item.position > seen[0]:
            latest[item.client] = (item.position, unit)
    return tuple(unit for _, unit in sorted(latest.values()))


def summarize(items: Iterable[FeedbackFacts]) -> FeedbackSummary:
    """Counts over live (not revoked), non-self feedback; the normalized mean over rating-tagged ones."""
    count = rated = verified = selfs = revoked = 0
    total = 0.0
    for item in items:
        if item.revoked:
            revoked += 1
            continue
        if item.self_feedback:
            selfs += 1
            continue
        count += 1
        verified += item.status == FeedbackStatus.PAYMENT_VERIFIED
        if item.tag1.lower() in STARRED_TAGS:
            value = item.value / 10**item.decimals
            if math.isfinite(value):
                rated += 1
                total += value
    return FeedbackSummary(count, rated, total / rated if rated else None, verified, selfs, revoked)


def rating_feedback_file(
    *,
    agent_registry: str,
    agent_id: int,
    client_address: str,
    created_at: str,
    rating: int,
    proof: ProofOfPayment | None,
    attestation: str | None,
    review_url: str,
) -> bytes:
    """Our review as an ERC-8004 feedback file (canonical JSON bytes: sorted keys, no spaces; the bytes whose
    keccak256 is the ``feedbackHash``). A 1–5 rating becomes ``tag1=starred, valueDecimals=0`` and ``value`` on the
    0–100 scale: 1★ → 0, 2★ → 25, 3★ → 50, 4★ → 75, 5★ → 100 (the OMATrust score's own unit, times 100)."""
    chain = agent_registry.split(":")[1] if agent_registry.count(":") == 2 else "1"
    doc: dict[str, Any] = {
        "agentRegistry": agent_registry,
        "agentId": agent_id,
        "clientAddress": f"eip155:{chain}:{client_address}",
        "createdAt": created_at,
        "value": (rating - 1) * RATING_SCALE_MAX // 4,
        "valueDecimals": 0,
        "tag1": "starred",
        "omatrust": {"review": review_url, **({"attestation": attestation} if attestation else {})},
    }
    if proof is not None:
        doc["proofOfPayment"] = {
            "fromAddress": proof.from_address,
            "toAddress": proof.to_address,
            "chainId": str(proof.chain_id),
            "txHash": proof.tx_hash,
        }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
