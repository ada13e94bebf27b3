"""OMATrust authorization on real parts: anvil with EAS and every anchored schema registered (UIDs equal to the
trust anchors), a fresh database, the loopback HTTPS did:web host and DNS server. Attestations are sent by
impersonated accounts (anvil), so any address can be an attester without a key."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from service.api.app import create_app
from service.chain import omatrust_codec as oc
from service.chain.codec import encode_review, schema_uid
from service.chain.deploy import bootstrap, register_schema, schema_registered
from service.chain.eas_relayer import EasClient
from service.chain.embedded import EAS_ADDRESS, SCHEMA_REGISTRY_ADDRESS
from service.chain.indexer import ReviewIndexer
from service.chain.rpc import connect
from service.cli.demo_kit import Merchant
from service.config import Settings
from service.dids import did_address
from service.domain import Review
from service.identity.dns import ControllerResolver
from service.identity.fetcher import SafeFetcher
from service.identity.resolver import DidResolver
from service.store.engine import make_engine
from service.store.migrate import upgrade
from service.store.tables import OmatrustAttestationRow, ProofRow, ReviewRow
from service.trust_anchors import load_trust_anchors
from service.verdicts import ReviewPolicy
from service.verdicts.anchors import TrustAnchors, parse_trust_anchors
from service.wiring import Wired
from service.workflows.runtime import Runtime
from service.workflows.sync import SyncReport, sync_chain
from tests.support.anvil import ANVIL_DEV_KEY_0, AnvilNode, anvil_fixture
from tests.support.db import fresh_database_url
from tests.support.didweb_host import DidWebHost
from tests.support.dns_server import LoopbackDns

anvil_node = anvil_fixture()
ZERO32 = b"\x00" * 32
_ATTEST = keccak(text="attest((bytes32,(address,uint64,bool,bytes32,bytes,uint256)))")[:4]
_REVOKE = keccak(text="revoke((bytes32,(bytes32,uint256)))")[:4]
NEW_SCHEMAS = (  # (name, schema string, revocable)
    ("key-binding", oc.KEY_BINDING_SCHEMA, True),
    ("controller-witness", oc.CONTROLLER_WITNESS_SCHEMA, False),
    ("linked-identifier", oc.LINKED_IDENTIFIER_SCHEMA, True),
    ("user-review-response", oc.REVIEW_RESPONSE_SCHEMA, False),
)


@pytest.fixture(scope="module")
def chain(anvil_node: AnvilNode) -> AnvilNode:
    w3 = connect(rpc_url=anvil_node.url)
    payer = Account.from_key(ANVIL_DEV_KEY_0)
    bootstrap(w3=w3, eas_address=EAS_ADDRESS, registry_address=SCHEMA_REGISTRY_ADDRESS, payer=payer)
    default = load_trust_anchors()
    for name, schema, revocable in NEW_SCHEMAS:
        register_schema(w3=w3, registry_address=SCHEMA_REGISTRY_ADDRESS, payer=payer, schema=schema,
                        revocable=revocable)  # fmt: skip
        uid = schema_uid(schema, revocable=revocable)
        assert schema_registered(w3=w3, registry_address=SCHEMA_REGISTRY_ADDRESS, uid=uid)
        assert uid == default.current_uid(name=name)  # registered on anvil under exactly the anchored UID
    return anvil_node


def anchors_for(witness: str) -> TrustAnchors:
    """The built-in anchors plus anvil's chain and ``witness`` as an approved controller witness."""
    raw = json.loads((Path(__file__).parents[2] / "service" / "omatrust_trust_anchors.json").read_text())
    (entry,) = raw["chains"].values()
    raw["chains"]["eip155:31337"] = {**entry, "name": "anvil", "easContract": EAS_ADDRESS}
    raw["registries"][0]["issuers"].append({"address": witness, "label": "test witness",
                                            "schemas": ["controller-witness"]})  # fmt: skip
    return parse_trust_anchors(data=json.dumps(raw))


@dataclass
class Landed:
    uid: str
    time: int


@dataclass
class Env:
    node: AnvilNode
    engine: Engine
    rt: Runtime
    host: DidWebHost
    dns: LoopbackDns
    merchant_host: str
    witness: str  # an approved controller witness (its key: ``witness_key``)
    witness_key: LocalAccount

    @property
    def subject(self) -> str:
        return "did:web:" + self.merchant_host.replace(":", "%3A")

    def merchant(self) -> Merchant:
        """A signer for the subject whose key is in no did.json and no DNS record."""
        return Merchant(host=self.merchant_host)

    def fund(self, address: str) -> None:
        self.node.rpc("anvil_impersonateAccount", [address])
        self.node.rpc("anvil_setBalance", [address, hex(10**20)])

    def _send(self, sender: str, data: bytes) -> dict[str, Any]:
        self.fund(sender)
        tx = self.node.rpc("eth_sendTransaction", [{"from": sender, "to": EAS_ADDRESS, "data": "0x" + data.hex(),
                                                     "gas": hex(3_000_000)}])  # fmt: skip
        mined = connect(rpc_url=self.node.url).eth.wait_for_transaction_receipt(tx, timeout=30, poll_latency=0.02)
        assert mined["status"] == 1, mined
        return self.node.rpc("eth_getTransactionReceipt", [tx])  # JSON form (hex strings)

    def _block_time(self, receipt: dict[str, Any]) -> int:
        return int(self.node.rpc("eth_getBlockByNumber", [receipt["blockNumber"], False])["timestamp"], 16)

    def attest(self, sender: str, *, uid: str, data: bytes, recipient: str, revocable: bool,
               ref_uid: str = "") -> Landed:  # fmt: skip
        ref = bytes.fromhex(ref_uid.removeprefix("0x")) if ref_uid else ZERO32
        args = (bytes.fromhex(uid[2:]), (recipient, 0, revocable, ref, data, 0))
        receipt = self._send(sender, _ATTEST + encode(["(bytes32,(address,uint64,bool,bytes32,bytes,uint256))"],
                                                      [args]))  # fmt: skip
        (log,) = [lg for lg in receipt["logs"] if lg["address"].lower() == EAS_ADDRESS.lower()]
        return Landed("0x" + log["data"][2:66], self._block_time(receipt))

    def revoke(self, sender: str, *, schema: str, uid: str) -> int:
        args = (bytes.fromhex(schema[2:]), (bytes.fromhex(uid[2:]), 0))
        receipt = self._send(sender, _REVOKE + encode(["(bytes32,(bytes32,uint256))"], [args]))
        return self._block_time(receipt)

    def now(self) -> int:
        return int(self.node.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    # -- OMATrust attestations
    def key_binding(self, sender: str, *, subject: str, key_id: str, purposes: tuple[str, ...] = ("assertionMethod",),
                    effective_at: int = 0, expires_at: int = 0) -> Landed:  # fmt: skip
        values = [subject, key_id, "", list(purposes), [], effective_at, effective_at, expires_at]
        data = oc.encode_record(schema=oc.KEY_BINDING_SCHEMA, values=values)
        return self.attest(sender, uid=schema_uid(oc.KEY_BINDING_SCHEMA, revocable=True), data=data,
                           recipient=did_address(subject), revocable=True)  # fmt: skip

    def witness_attest(self, sender: str, *, subject: str, controller: str, observed_at: int,
                       method: str = "dns-txt") -> Landed:  # fmt: skip
        data = oc.encode_record(schema=oc.CONTROLLER_WITNESS_SCHEMA, values=[subject, controller, method, observed_at])
        return self.attest(sender, uid=schema_uid(oc.CONTROLLER_WITNESS_SCHEMA), data=data,
                           recipient=did_address(subject), revocable=False)  # fmt: skip

    def link(self, sender: str, *, subject: str, linked_id: str, effective_at: int = 0) -> Landed:
        data = oc.encode_record(schema=oc.LINKED_IDENTIFIER_SCHEMA, values=[subject, linked_id, [], effective_at,
                                                                            effective_at, 0])  # fmt: skip
        return self.attest(sender, uid=schema_uid(oc.LINKED_IDENTIFIER_SCHEMA, revocable=True), data=data,
                           recipient=did_address(subject), revocable=True)  # fmt: skip

    def review(self, sender: str, *, proofs: list[dict[str, Any]]) -> Landed:
        review = Review(subject=self.subject, version="", rating_value=5, review_body="ok", screenshot_urls=(),
                        proofs=tuple(json.dumps(p, separators=(",", ":")) for p in proofs))  # fmt: skip
        return self.attest(sender, uid=schema_uid(
            "string subject, string version, uint256 ratingValue, string reviewBody, string[] screenshotUrls, "
            "string[] proofs"), data=encode_review(review=review), recipient=did_address(self.subject),
            revocable=False)  # fmt: skip

    def response(self, sender: str, *, review_uid: str, body: str) -> Landed:
        data = oc.encode_record(schema=oc.REVIEW_RESPONSE_SCHEMA, values=[self.subject, review_uid, body])
        return self.attest(sender, uid=schema_uid(oc.REVIEW_RESPONSE_SCHEMA), data=data,
                           recipient=did_address(self.subject), revocable=False, ref_uid=review_uid)  # fmt: skip

    # -- running and reading back
    def sync(self) -> SyncReport:
        return sync_chain(rt=self.rt, indexer=ReviewIndexer(client=self.rt.eas))

    def proof(self, review_uid: str) -> tuple[ReviewRow, ProofRow]:
        with Session(self.engine) as s:
            row = s.exec(select(ReviewRow).where(ReviewRow.attestation_uid == review_uid)).one()
            proof = s.exec(select(ProofRow).where(ProofRow.review_id == row.id)).one()
        return row, proof

    def stored(self, uid: str) -> OmatrustAttestationRow:
        with Session(self.engine) as s:
            row = s.get(OmatrustAttestationRow, uid)
            assert row is not None
            return row


@pytest.fixture(scope="module")
def _loopback() -> Iterator[tuple[DidWebHost, LoopbackDns]]:
    host = DidWebHost().start()
    with LoopbackDns() as dns:
        yield host, dns
    host.stop()


@pytest.fixture
def env(chain: AnvilNode, _loopback: tuple[DidWebHost, LoopbackDns], tmp_path: Path) -> Iterator[Env]:
    host, dns = _loopback
    host.clear()
    dns.clear()
    witness_key = Account.create()
    witness = witness_key.address
    with fresh_database_url(tmp_path) as url:
        engine = make_engine(url=url)
        upgrade(engine=engine)
        fetcher = SafeFetcher(timeout=3.0, insecure_hosts=frozenset({host.host}), ca_file=host.ca_pem_path)
        client = EasClient(w3=connect(rpc_url=chain.url), eas_address=EAS_ADDRESS, relayer=None)
        start = int(chain.rpc("eth_blockNumber"), 16)
        rt = Runtime(
            engine=engine,
            eas=client,
            resolver=DidResolver(fetcher=fetcher, ttl=0),
            controllers=ControllerResolver(nameservers=(dns.nameserver,), timeout=1.0, ttl=0),
            policy=ReviewPolicy(receipt_max_age=7 * 24 * 3600, clock_skew=300),
            clock=time.time,
            anchors=anchors_for(witness),
        )
        # The subject's did.json lists only a key none of the tests' signers has: live look-ups answer "not listed".
        host.set_document(Merchant(host=host.host).did_document())
        environment = Env(chain, engine, rt, host, dns, host.host, witness, witness_key)
        _skip_history(environment, start)
        yield environment
        engine.dispose()


@pytest.fixture
def api(env: Env) -> Iterator[TestClient]:
    env.fund(env.witness)
    eas = EasClient(w3=connect(rpc_url=env.node.url), eas_address=EAS_ADDRESS, relayer=env.witness_key,
                    poll_interval=0.02)  # fmt: skip
    runtime = dataclasses.replace(env.rt, eas=eas)  # the service's own attesting key = the approved witness
    app = create_app(Settings(rate_limit_per_minute=1000), wired=Wired(runtime=runtime, publisher=None))
    with TestClient(app) as client:
        yield client


def _skip_history(env: Env, block: int) -> None:
    """Start both checkpoints at ``block``: earlier tests' attestations on this node are not this test's."""
    from service.store.batch import advance_indexer_checkpoint
    from service.store.engine import session_scope
    from service.workflows.omatrust_sync import CHECKPOINT
    from service.workflows.sync import CHECKPOINT as REVIEWS

    with session_scope(env.engine) as s:
        for name in (CHECKPOINT, REVIEWS):
            advance_indexer_checkpoint(s, name=name, block=block, now=int(time.time()))
