"""Review field rules of OMATrust schema userreview 1.3.0 (JSON level; the EAS schema itself only fixes types)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from service.dids import is_did
from service.domain import Reason, Review
from service.errors import MalformedInput

MAX_BODY_CHARS = 500
MAX_SCREENSHOTS = 10
MAX_URL_CHARS = 256
MAX_PROOFS = 8
MAX_PROOF_CHARS = 16 * 1024
_SERVICE_VERSION = re.compile(r"^\d+(\.\d+){0,2}$")


def validate_review(*, review: Review) -> None:
    """Check a review against the schema rules.

    Raises:
        MalformedInput: with INVALID_SUBJECT, INVALID_RATING, REVIEW_BODY_TOO_LONG, INVALID_SCREENSHOTS,
            INVALID_SERVICE_VERSION or INVALID_REVIEW (too many / too large proofs).
    """
    if not is_did(review.subject):
        raise MalformedInput(Reason.INVALID_SUBJECT, "subject must be a DID (did:<method>:<id>, at most 256 chars)")
    if not 1 <= review.rating_value <= 5:
        raise MalformedInput(Reason.INVALID_RATING, "ratingValue must be an integer from 1 to 5")
    if len(review.review_body) > MAX_BODY_CHARS:
        raise MalformedInput(Reason.REVIEW_BODY_TOO_LONG, f"reviewBody is limited to {MAX_BODY_CHARS} characters")
    if review.version and not _SERVICE_VERSION.match(review.version):
        raise MalformedInput(Reason.INVALID_SERVICE_VERSION, "version must be empty or like 1, 1.2 or 1.2.3")
    if len(review.screenshot_urls) > MAX_SCREENSHOTS:
        raise MalformedInput(Reason.INVALID_SCREENSHOTS, f"at most {MAX_SCREENSHOTS} screenshotUrls")
    for url in review.screenshot_urls:
        parts = urlsplit(url)
        if (
            len(url) > MAX_URL_CHARS
            or parts.scheme not in ("https", "http", "ipfs", "ar")
            or not (parts.netloc or parts.path)
        ):
            raise MalformedInput(Reason.INVALID_SCREENSHOTS, f"not an acceptable screenshot URI: {url[:80]!r}")
    if len(review.proofs) > MAX_PROOFS:
        raise MalformedInput(Reason.INVALID_REVIEW, f"at most {MAX_PROOFS} proofs per review")
    if any(len(p) > MAX_PROOF_CHARS for p in review.proofs):
        raise MalformedInput(Reason.INVALID_REVIEW, f"each proof is limited to {MAX_PROOF_CHARS} characters")
