"""``EasClient``: the relayer on one EAS deployment — pre-checks, gas planning, relayer nonces, signing and
sending ``attestByDelegation`` / ``multiAttestByDelegation`` (and direct ``attest``), receipts.

Two ways of writing:

* **Delegated** (the normal mode): the reviewer signs EAS's ``Attest`` typed data; the relayer key pays gas through
  ``attestByDelegation`` / ``multiAttestByDelegation`` and the reviewer is the on-chain ``attester``.
* **Platform attester** (:meth:`EasClient.attest_direct`): the service key calls ``attest`` itself and *is* the
  attester. Only for data the service vouches for on its own behalf — never for user reviews.

Every request is checked off-chain (:meth:`EasClient.check_delegated`) before any gas is spent. Gas limits are
computed from the data size (no ``eth_estimateGas``: 6–10× slower than the transaction on py-evm) and every
transaction stays under ``gas_cap`` (2^24). Thread safety: all RPC goes through ``lock`` when one is given (the
embedded chain needs it); the relayer's transaction nonce is handed out under its own lock. Contract reads live in
``service.chain.eas_reads``, landed-attestation look-ups in ``service.chain.eas_landed``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3RPCError

from service.chain import deploy
from service.chain.calls import ATTESTED_TOPIC, GAS_CAP, attest_calldata, delegated_calldata, gas_for
from service.chain.codec import decode_review, review_recipient
from service.chain.delegation import DelegatedRequest, check_deadline
from service.chain.eas_landed import Landed, LandedSearch
from service.domain import USER_REVIEW_SCHEMA_UID, Reason, Review
from service.errors import ChainRejected, ChainUnavailable, MalformedInput


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A relayer transaction signed but maybe not yet broadcast. ``tx_hash`` is known before sending, so it can be
    persisted first."""

    tx_hash: str
    raw: bytes
    nonce: int
    gas: int
    requests: tuple[DelegatedRequest, ...]


class StaleRelayerNonce(ChainUnavailable):
    """The node refused the transaction because the relayer nonce it carries is already used (``nonce too low``,
    ``replacement underpriced``). The transaction can never land; the nonce counter has been resynced."""


class EasClient(LandedSearch):
    """Client for one EAS contract: its reads (``EasReads``), landed look-ups (``LandedSearch``) and the relayer.
    Construct freely: nothing is read from the node until first needed."""

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
        super().__init__(
            w3=w3, eas_address=eas_address, lock=lock, schema_uid=schema_uid, log_chunk_blocks=log_chunk_blocks
        )
        self.relayer = relayer
        self.preflight = preflight
        self.receipt_timeout = receipt_timeout
        self.poll_interval = poll_interval
        self.gas_cap = gas_cap
        self._nonce_lock = threading.Lock()
        self._next_nonce: int | None = None

    def check_delegated(
        self, *, request: DelegatedRequest, now: int, expected_nonce: int | None = None, review: Review | None = None
    ) -> None:
        """Refuse, before any gas is spent, what EAS would revert (or what we must not publish).

        ``expected_nonce`` defaults to ``getNonce(attester)``; a batch passes ``getNonce + k`` for the attester's
        k-th request in it. A deadline of 0 (EAS: "never expires") is refused too: we only relay bounded requests.
        ``review``: the request's data already decoded by the caller (not decoded again).

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
                review = review or decode_review(data=request.data)
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
