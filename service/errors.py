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
