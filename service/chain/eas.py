"""``EasClient``: one EAS deployment seen through web3 — domain, nonces, delegated typed data, pre-checks,
relayer transactions, receipts, attestation look-ups.

Two ways of writing:

* **Delegated** (the normal mode): the reviewer signs EAS's ``Attest`` typed data; the relayer key pays gas through
  ``attestByDelegation`` / ``multiAttestByDelegation`` and the reviewer is the on-chain ``attester``.
* **Platform attester** (:meth:`EasClient.attest_direct`): the service key calls ``attest`` itself and *is* the
  attester. Only for data the service vouches for on its own behalf — never for user reviews.

Every request is checked off-chain (:meth:`check_delegated`) before any gas is spent. Gas limits are computed from
the data size (no ``eth_estimateGas``: 6–10× slower than the transaction on py-evm) and every transaction stays under
``gas_cap`` (2^24). Thread safety: all RPC goes through ``lock`` when one is given (the embedded chain needs it); the
relayer's transaction nonce is handed out under its own lock.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import BlockNotFound, TransactionNotFound, Web3RPCError

from service.chain import deploy
from service.chain.calls import (
    ATTESTED_TOPIC,
    GAS_CAP,
    address_topic,
    attest_calldata,
    delegated_calldata,
    gas_for,
)
from service.chain.codec import decode_review, review_recipient
from service.chain.delegation import DelegatedRequest, EasDomain, attest_typed_data, check_deadline
from service.chain.identity import ChainIdentity, read_identity
from service.chain.rpc import maybe_locked, rpc_errors
from service.domain import USER_REVIEW_SCHEMA_UID, Reason
from service.errors import ChainRejected, ChainUnavailable, MalformedInput

# Candidate EIP-712 versions, newest first; the contract's version() is tried first. Base/OP-stack EAS reports
# "1.4.x" from version() but signs with "1.3.0" — so the separator, not version(), decides.
DOMAIN_VERSION_CANDIDATES = ("1.4.0", "1.3.0", "1.2.0", "1.1.0", "1.0.3", "1.0.2", "1.0.1", "1.0.0", "0.26")
_ZERO32 = b"\x00" * 32


@dataclass(frozen=True, slots=True)
class AttestationRecord:
    """EAS ``Attestation`` struct as returned by ``getAttestation``."""

    uid: str
    schema: str
    time: int
    expiration_time: int
    revocation_time: int
    ref_uid: str
    recipient: str
    attester: str
    revocable: bool
    data: bytes


@dataclass(frozen=True, slots=True)
class Landed:
    """One attestation that is on chain."""

    uid: str
    attester: str
    recipient: str
    tx_hash: str
    block_number: int
    block_hash: str | None = None


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A relayer transaction signed but maybe not yet broadcast. ``tx_hash`` is known before sending, so it can be
    persisted first."""

    tx_hash: str
    raw: bytes
    nonce: int
    gas: int
    requests: tuple[DelegatedRequest, ...]


_GET_ATTESTATION = keccak(text="getAttestation(bytes32)")[:4]
_ATTESTATION_TUPLE = "(bytes32,bytes32,uint64,uint64,uint64,bytes32,address,address,bool,bytes)"


def _record(raw: bytes) -> AttestationRecord | None:
    """Decode ``getAttestation``'s return data; None for the all-zero struct of an unknown UID.
    Raises ChainUnavailable when the node returned something that is not that struct."""
    try:
        (t,) = decode([_ATTESTATION_TUPLE], raw)
    except Exception as exc:  # eth_abi raises several types for short/garbled data
        raise ChainUnavailable(Reason.RPC_FAILED, f"getAttestation returned {len(raw)} undecodable bytes") from exc
    if bytes(t[0]) == _ZERO32:
        return None
    return AttestationRecord(
        uid="0x" + bytes(t[0]).hex(),
        schema="0x" + bytes(t[1]).hex(),
        time=int(t[2]),
        expiration_time=int(t[3]),
        revocation_time=int(t[4]),
        ref_uid="0x" + bytes(t[5]).hex(),
        recipient=to_checksum_address(t[6]),
        attester=to_checksum_address(t[7]),
        revocable=bool(t[8]),
        data=bytes(t[9]),
    )


class StaleRelayerNonce(ChainUnavailable):
    """The node refused the transaction because the relayer nonce it carries is already used (``nonce too low``,
    ``replacement underpriced``). The transaction can never land; the nonce counter has been resynced."""


class EasClient:
    """Client for one EAS contract. Construct freely: nothing is read from the node until first needed."""

    def __init__(
        self,
        *,
        w3: Web3,
        eas_address: str,
        relayer: LocalAccount | None,
        lock: threading.RLock | None = None,
        schema_uid: str = USER_REVIEW_SCHEMA_UID,
        preflight: bool = True,
        receipt_timeout: float = 60.0,
        poll_interval: float = 0.05,
        gas_cap: int = GAS_CAP,
        log_chunk_blocks: int = 2_000,
    ) -> None:
        self.w3 = w3
        self.eas_address = to_checksum_address(eas_address)
        self.relayer = relayer
        self.schema_uid = schema_uid.lower()
        self.preflight = preflight
        self.receipt_timeout = receipt_timeout
        self.poll_interval = poll_interval
        self.gas_cap = gas_cap
        self.log_chunk_blocks = log_chunk_blocks
        self._lock = lock
        self._contract = deploy.eas_contract(w3=w3, address=self.eas_address)
        self._nonce_lock = threading.Lock()
        self._next_nonce: int | None = None

    # ------------------------------------------------------------------ reads
    @contextlib.contextmanager
    def _rpc(self, what: str) -> Iterator[None]:
        """Hold the chain lock (if any) and map errors (see ``rpc_errors``)."""
        with maybe_locked(self._lock), rpc_errors(what):
            yield

    @functools.cached_property
    def chain_id(self) -> int:
        """Read from the node once (never assumed). Raises ChainUnavailable."""
        with self._rpc("eth_chainId"):
            return int(self.w3.eth.chain_id)

    @functools.cached_property
    def identity(self) -> ChainIdentity:
        """Chain id, genesis block hash and EAS address, read once. Raises ChainUnavailable."""
        return read_identity(w3=self.w3, eas_address=self.eas_address, lock=self._lock)

    @functools.cached_property
    def domain(self) -> EasDomain:
        """The EIP-712 domain this EAS verifies signatures with, version found by matching ``getDomainSeparator()``.

        Raises:
            ChainUnavailable: RPC failure.
            ChainRejected(TX_REVERTED): no code at the address, or no candidate version matches.
        """
        with self._rpc("EAS domain"):
            if not self.w3.eth.get_code(self.eas_address):
                raise ChainRejected(Reason.TX_REVERTED, f"no contract at {self.eas_address}")
            actual = bytes(self._contract.functions.getDomainSeparator().call())
            reported = str(self._contract.functions.version().call())
        try:
            with self._rpc("getName"):
                name = str(self._contract.functions.getName().call()) or "EAS"
        except ChainRejected:  # older deployments have no getName(); they all sign as "EAS"
            name = "EAS"
        for version in dict.fromkeys((reported, *DOMAIN_VERSION_CANDIDATES)):
            domain = EasDomain(name=name, version=version, chain_id=self.chain_id, verifying_contract=self.eas_address)
            if domain.separator() == actual:
                return domain
        raise ChainRejected(Reason.TX_REVERTED, f"EAS at {self.eas_address} uses an unknown EIP-712 domain version")

    def attestation_config(self) -> dict[str, Any]:
        """What a client needs to sign: ``{chainId, eas, schemaUid, domain:{name,version,chainId,verifyingContract}}``.

        Raises:
            ChainUnavailable, ChainRejected: see :attr:`domain`.
        """
        return {
            "chainId": self.chain_id,
            "eas": self.eas_address,
            "schemaUid": self.schema_uid,
            "domain": self.domain.as_json(),
        }

    def get_nonce(self, *, attester: str) -> int:
        """EAS's delegated-signature nonce of ``attester`` (next one to be consumed). Raises ChainUnavailable."""
        with self._rpc("getNonce"):
            return int(self._contract.functions.getNonce(to_checksum_address(attester)).call())

    def block_number(self) -> int:
        """Latest block number. Raises ChainUnavailable."""
        with self._rpc("eth_blockNumber"):
            return int(self.w3.eth.block_number)

    def block_hash(self, *, number: int) -> str | None:
        """Hash of the canonical block at ``number`` (None beyond the head). Raises ChainUnavailable."""
        with self._rpc("eth_getBlockByNumber"):
            try:
                block = self.w3.eth.get_block(number)
            except BlockNotFound:
                return None
        return "0x" + bytes(block["hash"]).hex()

    def get_attestation(self, *, uid: str | bytes) -> AttestationRecord | None:
        """``getAttestation(uid)``; None for an unknown UID (EAS returns an all-zero struct).

        Raises:
            ChainUnavailable: RPC failure.
        """
        uid_b = bytes.fromhex(uid.removeprefix("0x")) if isinstance(uid, str) else bytes(uid)
        with self._rpc("getAttestation"):
            raw = self._contract.functions.getAttestation(uid_b).call()
        if bytes(raw[0]) == _ZERO32:
            return None
        return AttestationRecord(
            uid="0x" + bytes(raw[0]).hex(),
            schema="0x" + bytes(raw[1]).hex(),
            time=int(raw[2]),
            expiration_time=int(raw[3]),
            revocation_time=int(raw[4]),
            ref_uid="0x" + bytes(raw[5]).hex(),
            recipient=to_checksum_address(raw[6]),
            attester=to_checksum_address(raw[7]),
            revocable=bool(raw[8]),
            data=bytes(raw[9]),
        )

    def get_attestations(self, *, uids: Sequence[str], batch_size: int = 200) -> list[AttestationRecord | None]:
        """``getAttestation`` for many UIDs: JSON-RPC batches of ``batch_size`` ``eth_call``s when the provider
        can batch (HTTP), else one call each with pre-encoded calldata (in-process chains: no round trip to save).
        Same answers as :meth:`get_attestation`, in order.

        Raises:
            ChainUnavailable: RPC failure (or an error answer inside a batch).
        """
        calls = [
            {"to": self.eas_address, "data": "0x" + (_GET_ATTESTATION + bytes.fromhex(u.removeprefix("0x"))).hex()}
            for u in uids
        ]
        raw: list[bytes] = []
        batcher = getattr(self.w3.provider, "make_batch_request", None)
        if batcher is not None and len(calls) > 1:
            for start in range(0, len(calls), batch_size):
                part = calls[start : start + batch_size]
                with self._rpc("eth_call batch"):
                    answers = batcher([("eth_call", [c, "latest"]) for c in part])
                if not isinstance(answers, list) or len(answers) != len(part):
                    raise ChainUnavailable(Reason.RPC_FAILED, f"eth_call batch: {answers!r:.200}")
                for answer in answers:
                    if "error" in answer or "result" not in answer:
                        raise ChainUnavailable(Reason.RPC_FAILED, f"eth_call batch: {answer.get('error')!r:.200}")
                    raw.append(bytes.fromhex(str(answer["result"]).removeprefix("0x")))
        else:
            for call in calls:
                with self._rpc("getAttestation"):
                    raw.append(bytes(self.w3.eth.call(call)))  # type: ignore[arg-type]
        return [_record(r) for r in raw]

    # ------------------------------------------------------------------ delegated requests
    def build_attest_typed_data(
        self, *, attester: str, data: bytes, recipient: str, deadline: int, nonce: int | None = None
    ) -> dict[str, Any]:
        """The full ``eth_signTypedData_v4`` message for the reviewer to sign (nonce read from ``getNonce`` unless
        given: pass ``nonce`` explicitly when the attester has requests still waiting in the outbox).

        Raises:
            ChainUnavailable, ChainRejected: reading the domain / nonce failed.
        """
        if nonce is None:
            nonce = self.get_nonce(attester=attester)
        return attest_typed_data(
            domain=self.domain,
            attester=attester,
            recipient=recipient,
            data=data,
            nonce=nonce,
            deadline=deadline,
            schema_uid=self.schema_uid,
        )

    def content_key(self, *, request: DelegatedRequest) -> str:
        """The request's idempotency key under this deployment's domain. Raises ChainUnavailable/ChainRejected."""
        return request.content_key(domain=self.domain)

    def check_delegated(self, *, request: DelegatedRequest, now: int, expected_nonce: int | None = None) -> None:
        """Refuse, before any gas is spent, what EAS would revert (or what we must not publish).

        ``expected_nonce`` defaults to ``getNonce(attester)``; a batch passes ``getNonce + k`` for the attester's
        k-th request in it. A deadline of 0 (EAS: "never expires") is refused too: we only relay bounded requests.

        Raises:
            ChainRejected(SCHEMA_MISMATCH): request for another schema.
            ChainRejected(ATTESTATION_DATA_INVALID): data is not a User Review encoding.
            ChainRejected(RECIPIENT_MISMATCH): recipient is not the DID Address of the review's subject.
            ChainRejected(DELEGATION_SIGNER_MISMATCH): the signature does not recover to ``attester`` for this
                domain (or the content key was derived for another domain).
            ChainRejected(DELEGATION_EXPIRED): ``deadline <= now``.
            ChainRejected(DELEGATION_NONCE): nonce ≠ the expected nonce.
            ChainUnavailable: reading the domain or nonce failed.
        """
        if request.schema_uid.lower() != self.schema_uid.lower():
            raise ChainRejected(Reason.SCHEMA_MISMATCH, f"schema {request.schema_uid}")
        if self.schema_uid.lower() == USER_REVIEW_SCHEMA_UID:
            try:
                review = decode_review(data=request.data)
            except MalformedInput as exc:
                raise ChainRejected(Reason.ATTESTATION_DATA_INVALID, exc.detail) from exc
            if request.recipient.lower() != review_recipient(subject=review.subject).lower():
                raise ChainRejected(Reason.RECIPIENT_MISMATCH, f"recipient is not the DID Address of {review.subject}")
        domain = self.domain
        try:
            signer = request.signer(domain=domain)
        except MalformedInput as exc:
            raise ChainRejected(Reason.DELEGATION_SIGNER_MISMATCH, exc.detail) from exc
        if signer != request.attester:
            raise ChainRejected(Reason.DELEGATION_SIGNER_MISMATCH, f"signed by {signer}, attester {request.attester}")
        check_deadline(deadline=request.deadline, now=now)
        expected = self.get_nonce(attester=request.attester) if expected_nonce is None else expected_nonce
        if request.nonce != expected:
            raise ChainRejected(Reason.DELEGATION_NONCE, f"nonce {request.nonce}, expected {expected}")

    # ------------------------------------------------------------------ building transactions
    def plan(self, *, requests: Sequence[DelegatedRequest]) -> list[list[DelegatedRequest]]:
        """Split requests (kept in order) into transactions whose estimated gas stays under ``gas_cap``."""
        batches: list[list[DelegatedRequest]] = []
        current: list[DelegatedRequest] = []
        for request in requests:
            candidate = [*current, request]
            if current and gas_for(data_lengths=[len(r.data) for r in candidate]) > self.gas_cap:
                batches.append(current)
                candidate = [request]
            current = candidate
        if current:
            batches.append(current)
        return batches

    @staticmethod
    def calldata(*, requests: Sequence[DelegatedRequest]) -> bytes:
        """Calldata carrying ``requests`` (see ``service.chain.calls.delegated_calldata``)."""
        return delegated_calldata(requests=requests)

    def _need_relayer(self) -> LocalAccount:
        if self.relayer is None:
            raise ChainRejected(Reason.TX_REVERTED, "no relayer key configured")
        return self.relayer

    def _reserve_nonce(self) -> int:
        relayer = self._need_relayer()
        with self._nonce_lock:
            if self._next_nonce is None:
                with self._rpc("eth_getTransactionCount"):
                    self._next_nonce = int(self.w3.eth.get_transaction_count(relayer.address, "pending"))
            nonce = self._next_nonce
            self._next_nonce += 1
            return nonce

    def resync_nonce(self) -> None:
        """Forget the local relayer nonce; the next transaction re-reads it from the node (``pending``)."""
        with self._nonce_lock:
            self._next_nonce = None

    def _sign(self, *, data: bytes, gas: int, requests: tuple[DelegatedRequest, ...]) -> SignedTx:
        relayer = self._need_relayer()
        with self._rpc("fees"):
            fees = deploy.fee_fields(w3=self.w3)
        nonce = self._reserve_nonce()
        tx: dict[str, Any] = {
            "to": self.eas_address,
            "data": "0x" + data.hex(),
            "value": 0,
            "gas": gas,
            "nonce": nonce,
            "chainId": self.chain_id,
            **fees,
        }
        signed = relayer.sign_transaction(tx)
        return SignedTx(
            tx_hash="0x" + bytes(signed.hash).hex(),
            raw=bytes(signed.raw_transaction),
            nonce=nonce,
            gas=gas,
            requests=requests,
        )

    def sign_delegated(self, *, requests: Sequence[DelegatedRequest]) -> SignedTx:
        """Sign (don't send) one relayer transaction carrying ``requests`` (use :meth:`plan` first).

        Raises:
            ChainRejected: the batch exceeds the gas cap; no relayer key; or preflight ``eth_call`` reverted
                (reason from the selector).
            ChainUnavailable: RPC failure.
        """
        gas = gas_for(data_lengths=[len(r.data) for r in requests])
        if not requests or gas > self.gas_cap:
            raise ChainRejected(Reason.TX_REVERTED, f"batch of {len(requests)} needs {gas} gas > cap {self.gas_cap}")
        data = self.calldata(requests=requests)
        if self.preflight:
            self.call(data=data, gas=gas)
        return self._sign(data=data, gas=gas, requests=tuple(requests))

    def call(self, *, data: bytes, gas: int) -> bytes:
        """``eth_call`` the relayer transaction (a free dry run). Raises ChainRejected on revert, ChainUnavailable."""
        relayer = self._need_relayer()
        with self._rpc("eth_call"):
            return bytes(self.w3.eth.call({"from": relayer.address, "to": self.eas_address, "data": data, "gas": gas}))

    def broadcast(self, *, tx: SignedTx) -> None:
        """Send a signed transaction. "Already known" counts as sent.

        Raises:
            StaleRelayerNonce: its nonce is already used (the transaction can never land); nonce resynced.
            ChainUnavailable: transport failure (whether the node got it is unknown), or the node refused it for
                another reason (e.g. relayer out of funds); nonce resynced.
        """
        try:
            with self._rpc("eth_sendRawTransaction"):
                self.w3.eth.send_raw_transaction(tx.raw)
        except ChainUnavailable as exc:
            cause = exc.__cause__
            message = str(cause or exc).lower()
            self.resync_nonce()
            if isinstance(cause, Web3RPCError) and ("already known" in message or "known transaction" in message):
                return
            if isinstance(cause, Web3RPCError) and ("nonce too low" in message or "underpriced" in message):
                raise StaleRelayerNonce(Reason.RPC_FAILED, str(cause)) from cause
            raise
        except Exception as exc:  # eth-tester raises eth_utils.ValidationError instead of a JSON-RPC error
            self.resync_nonce()
            if "nonce" in str(exc).lower():
                raise StaleRelayerNonce(Reason.RPC_FAILED, str(exc)) from exc
            # e.g. "cannot afford txn gas": the relayer needs funds; retryable, not the request's fault
            raise ChainUnavailable(Reason.RPC_FAILED, f"transaction refused by the node: {exc}") from exc

    def receipt(self, *, tx_hash: str) -> Any | None:
        """The receipt, or None when the transaction is not mined (pending or unknown). Raises ChainUnavailable."""
        try:
            with self._rpc("eth_getTransactionReceipt"):
                return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except ChainUnavailable as exc:
            if isinstance(exc.__cause__, TransactionNotFound):
                return None
            raise

    def tx_known(self, *, tx_hash: str) -> bool:
        """True when the node knows the transaction (mined or in its mempool). Raises ChainUnavailable."""
        try:
            with self._rpc("eth_getTransactionByHash"):
                self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
            return True
        except ChainUnavailable as exc:
            if isinstance(exc.__cause__, TransactionNotFound):
                return False
            raise

    def wait_receipt(self, *, tx_hash: str, timeout: float | None = None) -> Any | None:
        """Poll for the receipt up to ``timeout`` (default ``receipt_timeout``); None when still not mined."""
        deadline = time.monotonic() + (self.receipt_timeout if timeout is None else timeout)
        while True:
            found = self.receipt(tx_hash=tx_hash)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(self.poll_interval)

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
        start = max(0, from_block)
        while start <= to_block:
            end = min(to_block, start + self.log_chunk_blocks - 1)
            with self._rpc("eth_getLogs"):
                logs = self.w3.eth.get_logs(
                    {"address": self.eas_address, "fromBlock": start, "toBlock": end, "topics": topics}
                )
            yield from logs
            start = end + 1

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

    # ------------------------------------------------------------------ one-shot helpers
    def submit(self, *, requests: Sequence[DelegatedRequest], now: int | None = None) -> list[Landed]:
        """Check, send and confirm ``requests`` synchronously (no outbox; the publisher is the durable path).
        Returns one ``Landed`` per request, in order.

        Raises:
            ChainRejected: a pre-check failed (nothing sent) or a transaction reverted.
            ChainUnavailable: RPC failure or no receipt within ``receipt_timeout``.
        """
        now = int(time.time()) if now is None else now
        expected: dict[str, int] = {}
        for request in requests:
            if request.attester not in expected:
                expected[request.attester] = self.get_nonce(attester=request.attester)
            self.check_delegated(request=request, now=now, expected_nonce=expected[request.attester])
            expected[request.attester] += 1
        landed: list[Landed] = []
        for batch in self.plan(requests=requests):
            tx = self.sign_delegated(requests=batch)
            landed.extend(self._send_and_confirm(tx))
        return landed

    def _send_and_confirm(self, tx: SignedTx) -> list[Landed]:
        self.broadcast(tx=tx)
        receipt = self.wait_receipt(tx_hash=tx.tx_hash)
        if receipt is None:
            raise ChainUnavailable(Reason.RPC_FAILED, f"no receipt for {tx.tx_hash} in {self.receipt_timeout}s")
        if receipt["status"] != 1:
            raise self.revert_reason(data=self.calldata(requests=tx.requests), block_number=int(receipt["blockNumber"]))
        found = self.landed_from_receipt(receipt=receipt, requests=tx.requests)
        if any(x is None for x in found):
            raise ChainRejected(Reason.TX_REVERTED, f"{tx.tx_hash}: Attested events missing")
        return [x for x in found if x is not None]

    def revert_reason(self, *, data: bytes, block_number: int) -> ChainRejected:
        """Why a mined relayer transaction with calldata ``data`` reverted: replays the call on the parent block's
        state and classifies the selector. Best effort, never raises: TX_REVERTED when the replay does not revert
        or the node cannot replay (pruned history, RPC failure)."""
        relayer = self._need_relayer()
        try:
            with self._rpc("eth_call(replay)"):
                self.w3.eth.call(
                    {"from": relayer.address, "to": self.eas_address, "data": data},
                    max(0, block_number - 1),
                )
        except ChainRejected as exc:
            return exc
        except ChainUnavailable as exc:
            return ChainRejected(Reason.TX_REVERTED, f"reverted (replay unavailable: {exc.detail})")
        return ChainRejected(Reason.TX_REVERTED, "reverted (the replay on the parent block did not)")

    def attest_direct(self, *, data: bytes, recipient: str, schema_uid: str | None = None) -> Landed:
        """PLATFORM ATTESTER MODE: the relayer key itself attests (it becomes the on-chain ``attester``), under
        ``schema_uid`` (default: this client's schema; the witness service attests Controller Witnesses).

        Raises:
            ChainRejected: no relayer key or the attest reverted.
            ChainUnavailable: RPC failure / no receipt in time.
        """
        relayer = self._need_relayer()
        calldata = attest_calldata(schema_uid=schema_uid or self.schema_uid, recipient=recipient, data=data)
        gas = gas_for(data_lengths=[len(data)])
        if self.preflight:
            self.call(data=calldata, gas=gas)
        tx = self._sign(data=calldata, gas=gas, requests=())
        self.broadcast(tx=tx)
        receipt = self.wait_receipt(tx_hash=tx.tx_hash)
        if receipt is None:
            raise ChainUnavailable(Reason.RPC_FAILED, f"no receipt for {tx.tx_hash}")
        if receipt["status"] != 1:
            raise self.revert_reason(data=calldata, block_number=int(receipt["blockNumber"]))
        for log in receipt["logs"]:
            if len(log["topics"]) == 4 and bytes(log["topics"][0]) == ATTESTED_TOPIC:
                return Landed(
                    uid="0x" + bytes(log["data"])[:32].hex(),
                    attester=relayer.address,
                    recipient=to_checksum_address(recipient),
                    tx_hash=tx.tx_hash,
                    block_number=int(receipt["blockNumber"]),
                )
        raise ChainRejected(Reason.TX_REVERTED, f"{tx.tx_hash}: no Attested event")

