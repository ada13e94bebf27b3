"""The cheap (network, transaction) taken from a proof's text to start its chain read early agrees with the full
parse on every receipt the full parse accepts, and reads nothing out of text it cannot read."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from service.cli.demo_kit import Merchant
from service.domain import ArtifactKind, ReceiptPayload
from service.errors import OmaTrustError
from service.proofs import parse_artifact
from service.verdicts.payment_reads import TX_HASH, chain_read_of
from service.verdicts.tx_interaction import parse_tx_proof

ROOT = Path(__file__).resolve().parents[2]
TX = "0x" + "Ab" * 32
PAYER = "0x857b06519E91e3A54538791bDbb0E22373e36b66"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _corpus() -> list[tuple[str, str]]:
    texts = []
    for path in sorted((ROOT / "tests" / "proofs" / "assets").glob("*.json")):
        asset = json.loads(path.read_text(encoding="utf-8"))
        texts.append((path.stem, asset["input_text"] if "input_text" in asset else json.dumps(asset["input"])))
    for path in sorted((ROOT / "fuzz" / "corpus" / "artifact").iterdir()):
        texts.append((f"fuzz-{path.name}", path.read_bytes().decode("utf-8", "replace")))
    return texts


def _with_transaction(text: str, transaction: str) -> str | None:
    """The same proof naming ``transaction`` (EIP-712 ``payload`` or the JWS payload segment; the signature is not
    made again: neither reader checks it), or None when there is no payload to put it in."""
    try:
        data: Any = json.loads(text)
    except ValueError:
        return None
    wrapper = data if isinstance(data, dict) and "proofType" in data else None
    envelope: Any = wrapper.get("proofObject") if wrapper is not None else data
    as_text = isinstance(envelope, str)
    if as_text:
        try:
            envelope = json.loads(envelope)
        except ValueError:
            return None
    if not isinstance(envelope, dict):
        return None
    if isinstance(envelope.get("payload"), dict):
        envelope["payload"] = {**envelope["payload"], "transaction": transaction}
    elif isinstance(envelope.get("signature"), str) and envelope["signature"].count(".") == 2:
        head, body, sig = envelope["signature"].split(".")
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            return None
        if not isinstance(payload, dict):
            return None
        envelope["signature"] = f"{head}.{_b64(json.dumps({**payload, 'transaction': transaction}).encode())}.{sig}"
    else:
        return None
    if wrapper is None:
        return json.dumps(envelope)
    return json.dumps({**wrapper, "proofObject": json.dumps(envelope) if as_text else envelope})


def _full(text: str) -> tuple[str, str] | OmaTrustError | None:
    """What the full parse says the proof asks to read (the error when it refuses the proof)."""
    try:
        artifact = parse_artifact(data=text)
    except OmaTrustError as exc:
        return exc
    receipt = artifact.payload
    if (
        artifact.kind is ArtifactKind.RECEIPT
        and isinstance(receipt, ReceiptPayload)
        and TX_HASH.match(receipt.transaction)
    ):
        return receipt.network, receipt.transaction
    return None


def _named(text: str) -> set[tuple[str, str]]:
    """Every (network, transaction) pair the text's payload holds, however it is wrapped."""
    out = set()
    candidates: list[Any] = [text]
    while candidates:
        item = candidates.pop()
        if isinstance(item, str):
            try:
                candidates.append(json.loads(item))
            except ValueError:
                if item.count(".") == 2:
                    body = item.split(".")[1]
                    with contextlib.suppress(ValueError):
                        candidates.append(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode())
        elif isinstance(item, dict):
            if isinstance(item.get("network"), str) and isinstance(item.get("transaction"), str):
                out.add((item["network"], item["transaction"]))
            candidates.extend(item.values())
    return out


CASES = [(name, text) for name, text in _corpus()] + [
    (f"{name}+tx", variant) for name, text in _corpus() if (variant := _with_transaction(text, TX)) is not None
]


@pytest.mark.parametrize(("name", "text"), CASES, ids=[name for name, _ in CASES])
def test_the_cheap_read_agrees_with_the_full_parse(name: str, text: str) -> None:
    full = _full(text)
    cheap = chain_read_of(raw=text)
    if not isinstance(full, OmaTrustError):
        assert cheap == full
    else:  # refused by the full parse: at most a guess at what the proof itself names (a cached read, no more)
        assert cheap is None or cheap in _named(text)


def test_the_corpus_exercises_receipts_naming_a_transaction() -> None:
    accepted = [name for name, text in CASES if isinstance(_full(text), tuple)]
    assert any(name.startswith("good-jws") for name in accepted)
    assert any(name.startswith("good-eip712") for name in accepted)
    assert any(name.startswith("good-wrapper") for name in accepted)  # proofObject as JSON text


@pytest.mark.parametrize("fmt", ["eip712", "jws"])
def test_signed_receipts_wrapped_as_submitted(fmt: str) -> None:
    merchant = Merchant(host="shop.example", network="eip155:31337")
    wrapper = merchant.receipt(payer=PAYER, issued_at=1_700_000_000, fmt=fmt, transaction=TX)
    for text in (json.dumps(wrapper), json.dumps({**wrapper, "proofObject": json.dumps(wrapper["proofObject"])})):
        assert chain_read_of(raw=text) == ("eip155:31337", TX) == _full(text)
    without = merchant.receipt(payer=PAYER, issued_at=1_700_000_000, fmt=fmt)
    assert chain_read_of(raw=json.dumps(without)) is None is _full(json.dumps(without))


def test_a_tx_interaction_proof_reads_its_chain() -> None:
    proof = json.dumps({"proofType": "tx-interaction", "proofPurpose": "commercial-tx",
                        "proofObject": {"chainId": "eip155:8453", "txHash": TX}})  # fmt: skip
    assert chain_read_of(raw=proof) == parse_tx_proof(proof) == ("eip155:8453", TX.lower())
    bad = json.dumps({"proofType": "tx-interaction", "proofObject": {"chainId": "eip155:8453", "txHash": "0x12"}})
    assert chain_read_of(raw=bad) is None


def _eip712(payload: Any, **wrapper: Any) -> str:
    envelope = {"format": "eip712", "payload": payload, "signature": "0x" + "11" * 65}
    return json.dumps({"proofType": "x402-receipt", "proofObject": envelope, **wrapper})


def _jws(segment: str) -> str:
    return json.dumps({"proofType": "x402-receipt", "proofObject": {"format": "jws", "signature": f"e30.{segment}.AA"}})


RECEIPT = {"version": 1, "network": "eip155:8453", "resourceUrl": "https://a.example/", "payer": PAYER,
           "issuedAt": 1, "transaction": TX}  # fmt: skip


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not json",
        "[]",
        "null",
        "{}",
        '{"proofType": "x402-receipt", "proofObject": "{}"}',
        '{"proofType": "x402-receipt", "proofObject": 7}',
        '{"proofType": "x402-receipt", "proofObject": "not json"}',
        '{"proofType": "x402-receipt"}',
        '{"proofType": "x402-offer", "proofObject": ' + json.dumps({"format": "eip712", "payload": RECEIPT}) + "}",
        '{"proofType": "evidence-pointer", "proofObject": {"url": "https://a.example/"}}',
        _eip712(RECEIPT, proofType="x402-receipt").replace('"eip712"', '"eip-712"'),
        _eip712([RECEIPT]),
        _eip712({**RECEIPT, "transaction": TX[:-1]}),
        _eip712({**RECEIPT, "transaction": TX + "00"}),
        _eip712({**RECEIPT, "transaction": 1}),
        _eip712({**RECEIPT, "network": 8453}),
        _eip712({k: v for k, v in RECEIPT.items() if k != "network"}),
        _eip712({**RECEIPT, "amount": "1"}),  # offer and receipt members mixed
        _jws(_b64(json.dumps(RECEIPT).encode())).replace(".AA", ""),  # two parts
        _jws("not*base64url"),
        _jws(_b64(b"not json")),
        _jws(_b64(b"\xff\xfe\x00")),
        _jws(_b64(json.dumps([RECEIPT]).encode())),
        _jws(_b64(b"[" * 40 + b"]" * 40)),
        "[" * 100_000 + "]" * 100_000,  # deeper than any artifact: never handed to the C JSON scanner
        '{"proofType": "x402-receipt", "proofObject": "' + "[" * 5000 + '"}',
    ],
)
def test_text_it_cannot_read_gives_none(raw: str) -> None:
    assert chain_read_of(raw=raw) is None


def test_a_valid_receipt_built_here_is_read() -> None:  # the shape the malformed cases above are mutations of
    assert chain_read_of(raw=_eip712(RECEIPT)) == ("eip155:8453", TX)
    assert chain_read_of(raw=_jws(_b64(json.dumps(RECEIPT).encode()))) == ("eip155:8453", TX)
