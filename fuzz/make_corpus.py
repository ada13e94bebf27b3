"""Write the seed corpus (``fuzz/corpus/<target>/``): valid encodings and artifacts, and a few hostile ones.

Run once and commit the files; rerunning rewrites them (JWS signatures are randomized, the rest is stable).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.chain.codec import encode_review
from service.cli.demo_kit import Merchant
from service.domain import Review

HERE = Path(__file__).resolve().parent
PAYER = "0x" + "11" * 20
ISSUED = 1_767_225_600  # 2026-01-01


def _write(target: str, data: bytes) -> None:
    folder = HERE / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha256(data).hexdigest()[:16]).write_bytes(data)


def main() -> None:
    merchant = Merchant(host="api.example.com", evm_key=bytes(range(1, 33)))
    artifacts = [
        merchant.receipt(payer=PAYER, issued_at=ISSUED),
        merchant.receipt(payer=PAYER, issued_at=ISSUED, fmt="jws"),
        merchant.offer(),
    ]
    for wrapper in artifacts:
        _write("artifact", json.dumps(wrapper, separators=(",", ":")).encode())
        _write("artifact", json.dumps(wrapper["proofObject"]).encode())
    _write("artifact", b'{"format":"jws","signature":"eyJhbGciOiJFUzI1NiJ9.e30.AA"}')
    _write("artifact", b'{"payload":{"resourceUrl":"http://localhost:%31%38/w"},"signature":"0x00"}')
    _write("artifact", b"[" * 40 + b"]" * 40)

    proofs = tuple(json.dumps(a, separators=(",", ":")) for a in artifacts)
    for review in (
        Review("did:web:api.example.com", "", 5, "", (), ()),
        Review("did:web:api.example.com", "1.2.3", 4, "great API ☕", ("https://x.example/1.png",), proofs[:1]),
        Review("did:web:api.example.com%3A8443", "1", 1, "x" * 500, (), proofs),
    ):
        _write("review", encode_review(review=review))
    data = encode_review(review=Review("did:web:a.example", "", 3, "", (), ("p", "q")))
    _write("review", data[:-32])  # truncated
    aliased = bytearray(data)
    aliased[len(data) - 3 * 32 : len(data) - 2 * 32] = aliased[len(data) - 5 * 32 : len(data) - 4 * 32]
    _write("review", bytes(aliased))


if __name__ == "__main__":
    main()
