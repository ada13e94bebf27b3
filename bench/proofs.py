"""Proof verification throughput on one core: Python (service.proofs) vs raw `cryptography` vs the x402 TS SDK.

    python -m bench.proofs [--seconds 2] [--ts-n 3000] [--rounds 3] [--no-ts] [--json]

Artifacts are signed once by our issuer; the very same envelopes are then verified by Python in this process and by
the TS SDK (``node tests/interop/peer.mjs bench``) in a child process, both single-threaded. Every figure is the
best short slice (Python: measured round-robin; Python and TS rounds alternate), so ratios compare like with like
on a shared machine.

* EIP-712 receipt: parse + digest + recover + compare with the expected signer (the TS SDK's
  ``verifyReceiptSignatureEIP712`` also parses, hashes and recovers).
* JWS ES256 / ES256K / EdDSA: parse + verify against an already resolved key (keys are cached in production).
  The SDK resolves the kid on every call; did:jwk kids keep that local and cheap.
* raw ES256: ``cryptography`` verifying the same signature over the same signing input (DER-converted once) — the
  floor our JWS path is compared against.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from eth_account import Account

from service.domain import ReceiptPayload, VerificationKey
from service.proofs import (
    generate_private_jwk,
    parse_artifact,
    recover_eip712_signer,
    sign_receipt_eip712,
    sign_receipt_jws,
    verify_jws,
)

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT / "tests" / "interop" / "peer.mjs"

GOAL_JWS_OVER_RAW = 1.5  # our JWS ES256 at most 1.5x the time of a raw cryptography verify
GOAL_PY_OVER_TS = 20.0  # Python EIP-712 at least 20x the TS SDK
GOAL_EIP712_PER_S = 5000.0


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _jwk(alg: str) -> dict[str, str]:
    return generate_private_jwk(crv={"ES256": "P-256", "ES256K": "secp256k1", "EdDSA": "Ed25519"}[alg])


def _public(jwk: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in jwk.items() if k != "d"}


def _did_jwk_kid(jwk: dict[str, str]) -> str:
    return "did:jwk:" + _b64url(json.dumps(_public(jwk), separators=(",", ":")).encode()) + "#0"


def _receipt(now: int) -> ReceiptPayload:
    return ReceiptPayload(
        version=1,
        network="eip155:8453",
        resource_url="https://api.example.com/weather?city=Paris",
        payer="0x857b06519E91e3A54538791bDbb0E22373e36b66",
        issued_at=now,
        transaction="0x" + "ab" * 32,
    )


def _rates(fns: dict[str, Callable[[], None]], seconds: float) -> dict[str, float]:
    """Calls per second of each function: the best ~50 ms slice, slices taken round-robin for ``seconds`` each.

    Round-robin, so that a ratio between two of them compares slices taken at the same moments; best-of (like
    ``timeit``), because the slow slices measure the other processes on the machine, not the function.
    """
    best = dict.fromkeys(fns, 0.0)
    for fn in fns.values():
        for _ in range(20):
            fn()
    deadline = time.perf_counter() + seconds * len(fns)
    while time.perf_counter() < deadline:
        for name, fn in fns.items():
            calls, start = 0, time.perf_counter()
            while True:
                for _ in range(25):
                    fn()
                calls += 25
                elapsed = time.perf_counter() - start
                if elapsed >= 0.05:
                    break
            best[name] = max(best[name], calls / elapsed)
    return best


def _ts_ready() -> bool:
    return shutil.which("node") is not None and (PEER.parent / "node_modules" / "@x402" / "extensions").exists()


def _ts_bench(envelopes: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    proc = subprocess.run(
        ["node", str(PEER), "bench"],
        input=json.dumps({"artifacts": [{"artifact": e, "kind": "receipt"} for e in envelopes], "n": n}).encode(),
        capture_output=True,
        cwd=PEER.parent,
        timeout=600,
        check=True,
    )
    results: list[dict[str, Any]] = json.loads(proc.stdout)["results"]
    for result in results:
        if not result.get("ok"):
            raise RuntimeError(f"TS SDK did not verify a bench artifact: {result}")
    return results


def run(*, seconds: float, ts_n: int, with_ts: bool, rounds: int = 3) -> dict[str, Any]:
    now = int(time.time())
    payload = _receipt(now)
    account = Account.create()
    eip712 = sign_receipt_eip712(payload=payload, private_key=bytes(account.key))
    expected = account.address

    def eip712_verify() -> None:
        if recover_eip712_signer(artifact=parse_artifact(data=eip712)) != expected:
            raise AssertionError("wrong signer")

    fns: dict[str, Callable[[], None]] = {"eip712": eip712_verify}
    jws: dict[str, dict[str, Any]] = {}
    for alg in ("ES256", "ES256K", "EdDSA"):
        jwk = _jwk(alg)
        kid = _did_jwk_kid(jwk)
        envelope = sign_receipt_jws(payload=payload, private_jwk=jwk, kid=kid)
        key = VerificationKey(id=kid, controller=kid.split("#")[0], jwk=_public(jwk))
        jws[alg] = {"envelope": envelope, "jwk": jwk}

        def jws_verify(envelope: dict[str, Any] = envelope, key: VerificationKey = key) -> None:
            verify_jws(artifact=parse_artifact(data=envelope), key=key)

        fns[f"jws-{alg}"] = jws_verify

    # The same ES256 signature through cryptography alone: the floor for our JWS path.
    jwk = jws["ES256"]["jwk"]
    header_b64, payload_b64, sig_b64 = jws["ES256"]["envelope"]["signature"].split(".")
    signing_input = f"{header_b64}.{payload_b64}".encode()
    raw_sig = _unb64(sig_b64)
    der = encode_dss_signature(int.from_bytes(raw_sig[:32], "big"), int.from_bytes(raw_sig[32:], "big"))
    public_key = ec.EllipticCurvePublicNumbers(
        int.from_bytes(_unb64(jwk["x"]), "big"), int.from_bytes(_unb64(jwk["y"]), "big"), ec.SECP256R1()
    ).public_key()
    algorithm = ec.ECDSA(hashes.SHA256())
    fns["raw-ES256"] = lambda: public_key.verify(der, signing_input, algorithm)

    # Python and TS rounds alternate, so both sides see the same machine (best of each over all rounds).
    rows = dict.fromkeys(fns, 0.0)
    ts: dict[str, float] = {}
    names = ("eip712", "jws-ES256", "jws-ES256K", "jws-EdDSA")
    envelopes = [eip712] + [jws[alg]["envelope"] for alg in ("ES256", "ES256K", "EdDSA")]
    for _ in range(rounds):
        for name, rate in _rates(fns, seconds / rounds).items():
            rows[name] = max(rows[name], rate)
        if with_ts and _ts_ready():
            for name, result in zip(names, _ts_bench(envelopes, ts_n // rounds), strict=True):
                ts[name] = max(ts.get(name, 0.0), float(result["bestPerSecond"]))
    return {"python": rows, "ts": ts, "seconds": seconds, "tsN": ts_n, "rounds": rounds}


def _table(report: dict[str, Any]) -> str:
    py, ts = report["python"], report["ts"]
    labels = {
        "eip712": "EIP-712 receipt (parse+recover+compare)",
        "jws-ES256": "JWS ES256 receipt (parse+verify)",
        "jws-ES256K": "JWS ES256K receipt (parse+verify)",
        "jws-EdDSA": "JWS EdDSA receipt (parse+verify)",
        "raw-ES256": "raw cryptography ES256 verify",
    }
    lines = [f"{'benchmark (1 core)':42} {'Python/s':>10} {'us/op':>8} {'TS SDK/s':>10} {'Py/TS':>7}"]
    for key, label in labels.items():
        rate = py[key]
        ts_rate = ts.get(key)
        ts_cell = f"{ts_rate:10,.0f}" if ts_rate else f"{'-':>10}"
        ratio = f"{rate / ts_rate:6.1f}x" if ts_rate else f"{'-':>7}"
        lines.append(f"{label:42} {rate:10,.0f} {1e6 / rate:8.1f} {ts_cell} {ratio}")
    lines.append("")
    jws_over_raw = py["raw-ES256"] / py["jws-ES256"]
    checks = [
        (
            f"JWS ES256 time / raw ES256 time = {jws_over_raw:.2f}x",
            f"goal <= {GOAL_JWS_OVER_RAW}x",
            jws_over_raw <= GOAL_JWS_OVER_RAW,
        ),
        (
            f"EIP-712 receipt verifications/s = {py['eip712']:,.0f}",
            f"goal >= {GOAL_EIP712_PER_S:,.0f}/s",
            py["eip712"] >= GOAL_EIP712_PER_S,
        ),
    ]
    if "eip712" in ts:
        ratio = py["eip712"] / ts["eip712"]
        ok = ratio >= GOAL_PY_OVER_TS
        checks.append((f"EIP-712 Python / TS SDK = {ratio:.1f}x", f"goal >= {GOAL_PY_OVER_TS:.0f}x", ok))
    else:
        checks.append(("EIP-712 Python / TS SDK: not measured (node or tests/interop/node_modules missing)", "", True))
    for text, goal, ok in checks:
        lines.append(f"{text:62} {goal:16} {'met' if ok else 'NOT MET'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proofs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="Python wall time per benchmark (all rounds)")
    parser.add_argument("--ts-n", type=int, default=3000, help="TS SDK verifications per artifact (all rounds)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating Python / TS rounds")
    parser.add_argument("--no-ts", action="store_true", help="skip the TS SDK run")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    args = parser.parse_args(argv)
    report = run(seconds=args.seconds, ts_n=args.ts_n, with_ts=not args.no_ts, rounds=max(1, args.rounds))
    print(json.dumps(report, indent=2) if args.json else _table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
