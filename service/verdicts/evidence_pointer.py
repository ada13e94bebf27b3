"""PURE rules of the OMATrust ``evidence-pointer`` proof in a User Review (proofs spec §5.3.5; choices in
docs/authorization.md).

* **wrapper** — ``{"proofType": "evidence-pointer", "proofPurpose": "shared-control", "proofObject": {"url": …}}``;
  the purpose is required and must be ``shared-control``; ``url`` an absolute ``https`` URL (``http`` only for the
  development hosts the fetcher allows) without credentials.
* **subject controls the URL** — the review's subject must be a ``did:web`` and the URL's host (and port, the
  scheme's default omitted) must be exactly the DID's ``host[:port]``: only a document the service itself serves
  counts. Checked before anything is fetched, so a review can only make the service fetch from the host it reviews.
* **record** — the fetched body is the evidence string itself, a JSON string, or a JSON object whose ``evidence``
  field is the string. Fields are ``key=value`` separated by ``;`` or whitespace, in any order; other tokens and
  unknown keys are ignored. ``v=1`` is required; every ``controller=`` value must be a DID and there must be at
  least one (several form a co-controller set).
* **controller binding** — one controller must name the review's attester: ``did:pkh:eip155:<any chain>:<address>``
  with the attester's address (case-insensitive). Otherwise the proof is ``unauthorized``
  (``evidence-controller-mismatch``): a valid statement by the service, about someone else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from service.dids import did_web_host
from service.domain import ProofStatus, Reason
from service.errors import MalformedInput

PURPOSE = "shared-control"
_DEFAULT_PORTS = {"https": 443, "http": 80}
_DID = re.compile(r"^did:[a-z0-9]+:[A-Za-z0-9._:%\-]+$")
_FIELD_SPLIT = re.compile(r"[;\s]+")


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """A parsed ``v=1;controller=<DID>`` evidence string."""

    version: str
    controllers: tuple[str, ...]


def parse_pointer(raw: str) -> str:
    """The URL of an ``evidence-pointer`` proof wrapper (JSON text).

    Raises:
        MalformedInput: MALFORMED_JSON (not JSON), MISSING_FIELD (no proofObject / url / proofPurpose),
            BAD_FIELD_VALUE (purpose is not ``shared-control``, url is not an absolute http(s) URL or has
            credentials).
    """
    try:
        wrapper: Any = json.loads(raw)
    except ValueError as exc:
        raise MalformedInput(Reason.MALFORMED_JSON, "evidence-pointer proof is not JSON") from exc
    obj = wrapper.get("proofObject") if isinstance(wrapper, dict) else None
    if not isinstance(obj, dict):
        raise MalformedInput(Reason.MISSING_FIELD, "evidence-pointer proof without a proofObject")
    purpose = wrapper.get("proofPurpose")
    if purpose is None:
        raise MalformedInput(Reason.MISSING_FIELD, "evidence-pointer proof without a proofPurpose")
    if purpose != PURPOSE:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "evidence-pointer proofPurpose must be shared-control")
    url = obj.get("url")
    if not isinstance(url, str) or not url:
        raise MalformedInput(Reason.MISSING_FIELD, "evidence-pointer proofObject without a url")
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or len(url) > 2048:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "evidence-pointer url must be an absolute https URL")
    if parts.username is not None or parts.password is not None:
        raise MalformedInput(Reason.BAD_FIELD_VALUE, "evidence-pointer url must not carry credentials")
    return url


def url_on_subject_host(*, url: str, subject: str) -> bool:
    """True when ``url`` is served by the host of the did:web ``subject`` (same host, same port; the scheme's
    default port may be written or omitted). Never true for other DID methods."""
    if not subject.startswith("did:web:"):
        return False
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    return host == did_web_host(subject)


def parse_evidence(body: bytes) -> EvidenceRecord:
    """The evidence record in a fetched document (raw string, JSON string, or JSON object with ``evidence``).

    Raises:
        MalformedInput: EVIDENCE_RECORD_MALFORMED — not UTF-8, no evidence string, ``v`` missing or not 1, no
            ``controller``, or a controller that is not a DID.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedInput(Reason.EVIDENCE_RECORD_MALFORMED, "the evidence document is not UTF-8") from exc
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = text
    if isinstance(parsed, dict):
        parsed = parsed.get("evidence")
    if not isinstance(parsed, str):
        raise MalformedInput(Reason.EVIDENCE_RECORD_MALFORMED, "no evidence string in the document")
    versions: list[str] = []
    controllers: list[str] = []
    for token in _FIELD_SPLIT.split(parsed.strip()):
        key, sep, value = token.partition("=")
        if not sep:
            continue  # prose around the record (a profile bio) is not a field
        key = key.strip().lower()
        if key == "v":
            versions.append(value)
        elif key == "controller":
            controllers.append(value)
    if versions != ["1"]:
        raise MalformedInput(Reason.EVIDENCE_RECORD_MALFORMED, "the evidence string needs exactly one v=1")
    if not controllers:
        raise MalformedInput(Reason.EVIDENCE_RECORD_MALFORMED, "the evidence string names no controller")
    for controller in controllers:
        if not _DID.match(controller) or len(controller) > 512:
            raise MalformedInput(Reason.EVIDENCE_RECORD_MALFORMED, f"controller {controller[:80]!r} is not a DID")
    return EvidenceRecord(version="1", controllers=tuple(controllers))


def names_attester(*, controller: str, attester: str) -> bool:
    """True when ``controller`` is ``did:pkh:eip155:<any chain>:<attester's address>``."""
    parts = controller.split(":")
    return (
        len(parts) == 5
        and parts[:3] == ["did", "pkh", "eip155"]
        and parts[3].isdigit()
        and parts[4].lower() == attester.lower()
    )


def judge_evidence(*, record: EvidenceRecord, attester: str, url: str) -> tuple[ProofStatus, Reason | None, str]:
    """(status, reason, detail) of a fetched, parsed evidence record for a review by ``attester``."""
    if any(names_attester(controller=c, attester=attester) for c in record.controllers):
        return ProofStatus.VERIFIED, None, f"{url} names the reviewer as a controller"
    named = ", ".join(c[:80] for c in record.controllers[:3])
    return ProofStatus.UNAUTHORIZED, Reason.EVIDENCE_CONTROLLER_MISMATCH, f"{url} names {named}, not the reviewer"
