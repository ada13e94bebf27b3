"""One root error, two main branches.

``CheckFailed`` means the thing was checked and is bad (→ ``invalid``/``unauthorized``/``unsupported``).
``CouldNotCheck`` means a look-up (HTTP, DNS, RPC) failed, so nothing is known (→ ``indeterminate``).
Keeping them apart is what lets batch re-verification never downgrade a stored verdict on a network blip.
"""

from __future__ import annotations

from service.domain import ProofStatus, Reason


class OmaTrustError(Exception):
    """Root of every error this service raises on purpose."""

    status: ProofStatus = ProofStatus.INVALID

    def __init__(self, reason: Reason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)


class CheckFailed(OmaTrustError):
    """The input was examined and is not acceptable."""

    status = ProofStatus.INVALID


class MalformedInput(CheckFailed):
    """The bytes do not parse into the expected structure (missing field, wrong type, bad encoding)."""


class SignatureInvalid(CheckFailed):
    """The signature does not verify against the key, or the alg/key combination is not allowed."""


class Unauthorized(CheckFailed):
    """The signature is valid but the signer is not authorized for the service."""

    status = ProofStatus.UNAUTHORIZED


class BindingFailed(CheckFailed):
    """A valid, authorized receipt does not back this particular review (subject, payer, freshness, replay)."""


class Unsupported(CheckFailed):
    """A well-formed input of a kind this service does not verify (unknown proof type, DID method, format)."""

    status = ProofStatus.UNSUPPORTED


class CouldNotCheck(OmaTrustError):
    """A look-up failed (fetch, DNS, RPC): the verdict is unknown, never negative."""

    status = ProofStatus.INDETERMINATE


class FetchFailed(CouldNotCheck):
    """An HTTP fetch failed, was refused by the SSRF policy, or exceeded its bounds."""


class DnsFailed(CouldNotCheck):
    """A DNS query timed out or the server failed (NXDOMAIN/NoAnswer are *answers*, not this)."""


class ChainUnavailable(CouldNotCheck):
    """The JSON-RPC node could not be reached or answered with a transport error."""


class ChainRejected(OmaTrustError):
    """The chain (or an off-chain pre-check of what the chain would do) refused a transaction; not retryable."""


class ChainMismatch(OmaTrustError):
    """The store refers to attestations on another chain (chain id, genesis hash, EAS address) than the configured
    one: the service refuses to start (``detail`` names both chains and the ways out)."""


class ReceiptAlreadyClaimed(BindingFailed):
    """A receipt (by replay key) already backs another live review (answered 409 ``receipt-replayed``)."""

    def __init__(self, replay_key: str, review_id: str) -> None:
        super().__init__(Reason.RECEIPT_REPLAYED, f"this receipt already backs review {review_id}")
        self.replay_key = replay_key
        self.review_id = review_id


class BadCursor(MalformedInput, ValueError):
    """A pagination cursor this service did not issue (or issued for another listing or sort). Also a ValueError:
    what callers of a cursor decoder catch."""

    def __init__(self, detail: str = "cursor is not one this service issued") -> None:
        super().__init__(Reason.BAD_FIELD_VALUE, detail)


class ResumeError(OmaTrustError):
    """There is no unfinished re-verification run to resume (or the named run is unknown or already finished)."""

    def __init__(self, detail: str) -> None:
        super().__init__(Reason.RUN_NOT_RESUMABLE, detail)


class StaleAggregate(OmaTrustError):
    """A stored score aggregate was built under other scoring units (half-life or decay epoch changed). Never an
    answer: readers fall back to an exact computation and the aggregates are rebuilt in the background."""

    def __init__(self, detail: str = "aggregate stored under other scoring units") -> None:
        super().__init__(Reason.AGGREGATE_STALE, detail)


class PaymentRefused(Exception):
    """The x402 client would not pay (spend control, a malformed 402 or offer) or the payment produced no usable
    receipt. ``code`` is stable (``amount-too-high``, ``no-rpc``, ``not-eip3009``, ``offer-invalid``,
    ``no-receipt``, ``receipt-payer-mismatch``, ``payment-failed``, …); ``paid`` says whether money moved."""

    def __init__(self, code: str, detail: str, *, paid: bool = False) -> None:
        self.code = code
        self.detail = detail
        self.paid = paid
        super().__init__(f"{code}: {detail}")


class LookupSaturated(CouldNotCheck):
    """Too many look-ups (did:web, DNS, RPC) are in flight for one host or overall: not tried; retry later."""


class ReviewRefused(Exception):
    """The review service refused a review (``status`` and its problem+json body ``problem``)."""

    def __init__(self, status: int, problem: dict[str, object]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(f"HTTP {status}: {problem.get('code') or problem.get('title')}")


class KeyMaterialError(OmaTrustError, ValueError):
    """Key material that cannot be used (``service.identity.keys``); callers map it to the reason that fits their
    context. ``unsupported`` is True for well-formed keys of a type we do not verify. ``str()`` is the message."""

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(Reason.UNSUPPORTED_KEY_TYPE if unsupported else Reason.BAD_FIELD_VALUE, message)
        self.unsupported = unsupported
        self.status = ProofStatus.UNSUPPORTED if unsupported else ProofStatus.INVALID

    def __str__(self) -> str:
        return self.detail
