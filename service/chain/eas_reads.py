"""``EasReads``: one EAS deployment's contract reads — EIP-712 domain (version found by matching
``getDomainSeparator()``), ``getNonce``, ``getAttestation`` (single and batched, decoded to ``AttestationRecord``) —
and the typed data a reviewer signs. Nothing is read from the node until first needed; all RPC goes through ``lock``
when one is given (the embedded chain needs it).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import HTTPProvider, Web3
from web3.types import RPCEndpoint

from service.chain import deploy
from service.chain.addresses import checksum_cached
from service.chain.delegation import DelegatedRequest, EasDomain, attest_typed_data
from service.chain.identity import ChainIdentity, read_identity
from service.chain.node_reads import NodeReads
from service.domain import USER_REVIEW_SCHEMA_UID, Reason
from service.errors import ChainRejected, ChainUnavailable
from service.http11 import BadResponse, ConnectionPool
from service.lookup_limits import LookupLimiter

# Candidate EIP-712 versions, newest first; the contract's version() is tried first. Base/OP-stack EAS reports
# "1.4.x" from version() but signs with "1.3.0" — so the separator, not version(), decides.
DOMAIN_VERSION_CANDIDATES = ("1.4.0", "1.3.0", "1.2.0", "1.1.0", "1.0.3", "1.0.2", "1.0.1", "1.0.0", "0.26")
_ZERO32 = b"\x00" * 32
log = logging.getLogger("omatrust.rpc")


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


_GET_ATTESTATION = keccak(text="getAttestation(bytes32)")[:4]
_GET_NONCE = keccak(text="getNonce(address)")[:4]
_ATTESTATION_TUPLE = "(bytes32,bytes32,uint64,uint64,uint64,bytes32,address,address,bool,bytes)"


def _address_bytes(address: str) -> bytes:
    """The 20 bytes of a 0x address. Raises ValueError for anything else."""
    raw = bytes.fromhex(address.removeprefix("0x"))
    if len(raw) != 20:
        raise ValueError(f"not an address: {address!r}")
    return raw


def _record(raw: bytes) -> AttestationRecord | None:
    """Decode ``getAttestation``'s return data; None for the all-zero struct of an unknown UID.
    Raises ChainUnavailable when the node returned something that is not that struct."""
    try:
        (t,) = decode([_ATTESTATION_TUPLE], raw)
    except Exception as exc:  # eth_abi raises several types for short/garbled data
        raise ChainUnavailable(Reason.RPC_FAILED, f"getAttestation returned {len(raw)} undecodable bytes") from exc
    return _from_struct(t)


def _from_struct(t: Sequence[Any]) -> AttestationRecord | None:
    """An ``Attestation`` struct's fields as a record; None for the all-zero struct of an unknown UID."""
    if bytes(t[0]) == _ZERO32:
        return None
    return AttestationRecord(
        uid="0x" + bytes(t[0]).hex(),
        schema="0x" + bytes(t[1]).hex(),
        time=int(t[2]),
        expiration_time=int(t[3]),
        revocation_time=int(t[4]),
        ref_uid="0x" + bytes(t[5]).hex(),
        recipient=checksum_cached(t[6]),
        attester=checksum_cached(t[7]),
        revocable=bool(t[8]),
        data=bytes(t[9]),
    )


def _nonce_of(answer: Any) -> int:
    """The nonce in a JSON-RPC answer to ``getNonce``.

    Raises:
        ChainUnavailable: an error answer or not one 32-byte word.
    """
    result = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(result, str) or "error" in answer:
        log.warning("RPC getNonce answered an error: %r", answer)
        raise ChainUnavailable(Reason.RPC_FAILED, "getNonce: the chain node answered an error")
    try:
        raw = bytes.fromhex(result.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ChainUnavailable(Reason.RPC_FAILED, f"getNonce returned {len(raw)} bytes")
    return int.from_bytes(raw, "big")


BATCH_CALLS = 32  # calls per JSON-RPC batch (nodes and providers cap batch sizes)
BATCHES_OFF_SECONDS = 300  # after a refused batch (a node without them, or a passing limit), before trying again


class BatchRefused(BadResponse):
    """The node does not take JSON-RPC batches, or not of this size (a single error object, an HTTP 4xx, or fewer
    answers than calls with an invalid-request error)."""


def _refuses_batch(answer: object) -> bool:
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        return False
    return error.get("code") in (-32600, -32601) or "batch" in str(error.get("message", "")).lower()


class DirectRpc:
    """JSON-RPC calls posted straight to the node over kept-alive connections (``service.http11``; thread-safe). For
    the per-submission ``getNonce``: web3's ``HTTPProvider`` goes through ``requests`` (session, environment and
    proxy merging, adapters), which cost several times the round trip."""

    def __init__(self, *, rpc_url: str, timeout: float, limiter: LookupLimiter | None = None) -> None:
        """Raises ValueError for a URL that is not http(s)."""
        try:
            self._pool = ConnectionPool(url=rpc_url, timeout=timeout)
        except ValueError:
            raise ValueError("not an http(s) JSON-RPC URL") from None
        self.timeout = timeout
        self.limiter = limiter
        # when the node last refused a batch (time.monotonic): reads go one call at a time for BATCHES_OFF_SECONDS
        self.refused_batch_at: float | None = None

    @property
    def batches(self) -> bool:
        """Whether to send batches now (not within ``BATCHES_OFF_SECONDS`` of a refusal)."""
        at = self.refused_batch_at
        return at is None or time.monotonic() - at >= BATCHES_OFF_SECONDS

    def call(self, method: str, params: list[Any]) -> Any:
        """The JSON answer of one call.

        Raises:
            OSError: transport failure (callers map it inside ``rpc_errors``).
            BadResponse: an answer that is not HTTP this client can frame, or an HTTP error status.
            ValueError: a body that is not JSON.
            LookupSaturated: too many calls in flight to the node (with a limiter).
        """
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        if self.limiter is None:
            response = self._pool.post(body)
        else:
            with self.limiter.slot(host=self._pool.host, what="JSON-RPC call"):
                response = self._pool.post(body)
        if response.status != 200:
            raise BadResponse(f"HTTP {response.status}")
        return json.loads(response.body)

    def call_many(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """The JSON answers of several calls sent as one JSON-RPC batch (one round trip), in the order given.

        Raises:
            BatchRefused: the node answered the batch with one object (an error), not a list: it takes no batches.
            the errors of :meth:`call`; BadResponse also when the batch answer does not hold one answer per call.
        """
        batch = [{"jsonrpc": "2.0", "id": k, "method": m, "params": params} for k, (m, params) in enumerate(calls)]
        body = json.dumps(batch).encode()
        if self.limiter is None:
            response = self._pool.post(body)
        else:
            with self.limiter.slot(host=self._pool.host, what="JSON-RPC batch"):
                response = self._pool.post(body)
        if 400 <= response.status < 500:  # a gateway that takes no batches, or not this big (400, 413)
            raise BatchRefused(f"HTTP {response.status}")
        if response.status != 200:
            raise BadResponse(f"HTTP {response.status}")
        answers = json.loads(response.body)
        if not isinstance(answers, list):
            raise BatchRefused(f"a batch answered with {type(answers).__name__}")
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        if sorted(by_id, key=str) != sorted(range(len(calls)), key=str):
            if any(_refuses_batch(a) for a in answers):  # e.g. geth: [{"id": 0, "error": "batch too large"}]
                raise BatchRefused(f"a batch of {len(calls)} calls answered by {len(answers)} answers")
            raise BadResponse("a JSON-RPC batch answer without one answer per call")
        return [by_id[k] for k in range(len(calls))]

    def close(self) -> None:
        self._pool.close()


class EasReads(NodeReads):
    """Reads of one EAS contract for ``schema_uid``. Construct freely: nothing is read until first needed."""

    def __init__(
        self,
        *,
        w3: Web3,
        eas_address: str,
        lock: threading.RLock | None = None,
        schema_uid: str = USER_REVIEW_SCHEMA_UID,
        log_chunk_blocks: int = 2_000,
    ) -> None:
        self.w3 = w3
        self.eas_address = to_checksum_address(eas_address)
        self.schema_uid = schema_uid.lower()
        self.log_chunk_blocks = log_chunk_blocks
        self._lock = lock
        self._contract = deploy.eas_contract(w3=w3, address=self.eas_address)
        self._direct: DirectRpc | None = None

    def post_reads_directly(self, *, rpc_url: str, timeout: float, limiter: LookupLimiter | None = None) -> None:
        """Send ``getNonce`` (once per submission of a new reviewer) to the JSON-RPC node at ``rpc_url`` over kept-alive
        connections instead of through web3's provider (see :class:`DirectRpc`). ``limiter``: the
        cap on calls in flight that the provider applies too.

        Raises:
            ValueError: ``rpc_url`` is not http(s).
        """
        self._direct = DirectRpc(rpc_url=rpc_url, timeout=timeout, limiter=limiter)

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

    def share_direct_reads(self, *, source: EasReads) -> None:
        """Post reads the way ``source`` does (its :class:`DirectRpc`, if any): clients of one node share one."""
        self._direct = source._direct

    def get_nonces(self, *, attesters: Sequence[str]) -> dict[str, int]:
        """:meth:`get_nonce` of each attester (keys as given): in JSON-RPC batches when reads go straight to a node
        that takes them, else one call each.

        Raises:
            ChainUnavailable: RPC failure or an error answer.
            ValueError: an attester is not a 0x address.
        """
        wanted = list(dict.fromkeys(attesters))
        calls = [("eth_call", [self._nonce_call(a), "latest"]) for a in wanted]
        answers = self._batched(calls, what="getNonce") if len(wanted) > 1 else None
        if answers is None:
            return {a: self.get_nonce(attester=a) for a in wanted}
        return {a: _nonce_of(answer) for a, answer in zip(wanted, answers, strict=True)}

    def block_hashes(self, *, numbers: Sequence[int]) -> dict[int, str | None]:
        """:meth:`block_hash` of each block number (None beyond the head): in JSON-RPC batches when reads go straight
        to a node that takes them (the publisher's reorg watch reads every block it recorded in its window).

        Raises:
            ChainUnavailable: RPC failure or an error answer.
        """
        wanted = sorted(set(numbers))
        calls: list[tuple[str, list[Any]]] = [("eth_getBlockByNumber", [hex(n), False]) for n in wanted]
        answers = self._batched(calls, what="eth_getBlockByNumber")
        if answers is None:
            return {n: self.block_hash(number=n) for n in wanted}
        out: dict[int, str | None] = {}
        for number, answer in zip(wanted, answers, strict=True):
            ok = isinstance(answer, dict) and "error" not in answer and "result" in answer
            block = answer["result"] if ok else False
            if block is None:
                out[number] = None
            elif isinstance(block, dict) and isinstance(block.get("hash"), str):
                out[number] = block["hash"].lower()
            else:
                log.warning("RPC eth_getBlockByNumber answered %r", answer)
                raise ChainUnavailable(Reason.RPC_FAILED, "eth_getBlockByNumber: the chain node answered an error")
        return out

    def _batched(self, calls: list[tuple[str, list[Any]]], *, what: str) -> list[Any] | None:
        """The answers of ``calls`` in batches of at most ``BATCH_CALLS``, or None when they must go one by one (no
        direct reads, nothing to ask, or a node that refused a batch — remembered for ``BATCHES_OFF_SECONDS``).

        Raises:
            ChainUnavailable: the node could not be reached or answered a batch badly.
        """
        direct = self._direct
        if direct is None or not direct.batches or not calls:
            return None
        answers: list[Any] = []
        with self._rpc(what):
            try:
                for k in range(0, len(calls), BATCH_CALLS):
                    answers += direct.call_many(calls[k : k + BATCH_CALLS])
            except BatchRefused as exc:
                log.info("the chain node refused a JSON-RPC batch (%s): reading one call at a time for %d s", exc,
                         BATCHES_OFF_SECONDS)  # fmt: skip
                direct.refused_batch_at = time.monotonic()
                return None
            except (BadResponse, ValueError) as exc:  # not OSError (rpc_errors maps those)
                log.warning("RPC %s batch failed: %r", what, exc)
                raise ChainUnavailable(Reason.RPC_FAILED, f"{what}: the chain node could not be reached") from exc
        return answers

    def _nonce_call(self, attester: str) -> dict[str, str]:
        return {"to": self.eas_address, "data": "0x" + (_GET_NONCE + bytes(12) + _address_bytes(attester)).hex()}

    def get_nonce(self, *, attester: str) -> int:
        """EAS's delegated-signature nonce of ``attester`` (next one to be consumed).

        Raises:
            ChainUnavailable: RPC failure or an error answer.
            ValueError: ``attester`` is not a 0x address.
        """
        direct = self._direct
        if direct is None and not isinstance(self.w3.provider, HTTPProvider):  # in-process chain: web3 fills it
            with self._rpc("getNonce"):
                return int(self._contract.functions.getNonce(to_checksum_address(attester)).call())
        # A JSON-RPC node: pre-encoded calldata straight to the node. This runs once per submission of a new
        # reviewer, and web3's contract-call path (ABI lookup, validation and formatting middleware) costs ~4x the
        # round trip itself.
        call = self._nonce_call(attester)
        with self._rpc("getNonce"):
            if direct is None:
                answer = self.w3.provider.make_request(RPCEndpoint("eth_call"), [call, "latest"])
            else:
                try:
                    answer = direct.call("eth_call", [call, "latest"])
                except (BadResponse, ValueError) as exc:  # not OSError (rpc_errors maps those)
                    log.warning("RPC getNonce failed: %r", exc)
                    raise ChainUnavailable(Reason.RPC_FAILED, "getNonce: the chain node could not be reached") from exc
        return _nonce_of(answer)

    def get_attestation(self, *, uid: str | bytes) -> AttestationRecord | None:
        """``getAttestation(uid)``; None for an unknown UID (EAS returns an all-zero struct).

        Raises:
            ChainUnavailable: RPC failure.
        """
        uid_b = bytes.fromhex(uid.removeprefix("0x")) if isinstance(uid, str) else bytes(uid)
        with self._rpc("getAttestation"):
            raw = self._contract.functions.getAttestation(uid_b).call()
        return _from_struct(raw)

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
