"""``omatrust reverify`` through the real store, a real did:web host and a real DNS server on loopback.

Reviews are stored by the real submit workflow; the world then changes (keys rotated, documents gone, DNS records
removed, rows tampered with) and the batch run must judge every proof as of its receipt's issuedAt, never
downgrade on a failed look-up, and record every change.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
from sqlmodel import Session, select

from service.cli.demo_kit import Merchant, Reviewer
from service.cli.main import main
from service.dids import normalize_did
from service.domain import ArtifactKind, ReceiptPayload
from service.proofs import evm_address, generate_evm_private_key, proof_wrapper, sign_receipt_eip712
from service.scoring import DEFAULT_PARAMS, aggregate_reviews
from service.store.tables import ReviewRow
from service.workflows.aggregates import scored
from service.workflows.partition import Partition
from service.workflows.reverify import IF_ANY, LATEST, ResumeError, ReverifyOptions, reverify
from tests.workflows.conftest import BatchEnv, Clock, forge, forge_eip712, forge_jws

LATER = 3600  # seconds the re-verification runs after the reviews were submitted


def later(env: BatchEnv, seconds: float = LATER) -> Clock:
    clock = Clock()
    clock.offset = env.clock.offset + seconds
    return clock


def assert_aggregate_matches_reviews(env: BatchEnv, subject: str) -> None:
    """The incrementally maintained aggregate equals one rebuilt from the stored reviews (scoring core)."""
    subject_normalized = normalize_did(subject)
    with Session(env.engine) as s:
        rows = list(s.exec(select(ReviewRow).where(ReviewRow.subject_normalized == subject_normalized)))
    rebuilt = aggregate_reviews(reviews=[scored(r) for r in rows], params=DEFAULT_PARAMS)
    stored = env.aggregate(subject_normalized)
    assert stored["counts"] == list(rebuilt.counts)
    assert stored["superseded"] == rebuilt.superseded
    for a, b in zip(stored["decaySums"], rebuilt.decay_sums, strict=True):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_key_rotation_keeps_receipts_verified_as_of_issued_at(batch_env: BatchEnv) -> None:
    env = batch_env
    old_eip712 = env.verified_review(fmt="eip712")
    old_jws = env.verified_review(fmt="jws")
    # The merchant rotates both keys: the old EVM address and the old JWS key-1 leave did.json.
    rotated = Merchant(host=env.host.host)
    env.host.set_document(rotated.did_document())
    env.merchant = rotated
    new_receipt = env.verified_review(fmt="eip712")
    fetches_before = len(env.host.requests_for())

    report = env.reverify(clock=later(env))

    assert len(env.host.requests_for()) - fetches_before == 1  # one fetch of did.json for the whole run
    assert report.exit_code() == 0
    assert report.indeterminate == 0
    assert report.changed == 0
    assert not env.history()
    for review_id in (old_eip712, old_jws, new_receipt):
        (proof,) = env.proofs(review_id)
        assert (proof.status, proof.reason, proof.tier, proof.bound) == ("verified", None, "did-document", True)
        assert env.review(review_id).verified_purchase is True
    # The old receipts are held by the evidence observed when they were checked, the new one by today's document.
    old_hash = env.proofs(old_eip712)[0].evidence_hash
    assert env.proofs(old_jws)[0].evidence_hash == old_hash
    assert env.proofs(new_receipt)[0].evidence_hash != old_hash
    assert {s.snapshot_hash for s in env.snapshots()} >= {old_hash, env.proofs(new_receipt)[0].evidence_hash}


def test_evidence_older_than_the_receipt_does_not_keep_it(batch_env: BatchEnv) -> None:
    env = batch_env
    review_id = env.verified_review(issued_ago=3600)
    (proof,) = env.proofs(review_id)
    assert proof.issued_at is not None
    # Pretend our evidence was observed long before the receipt was issued: it says nothing about issuedAt.
    env.set_proof_columns(review_id, 0, checked_at=proof.issued_at - 301)
    env.host.set_document(Merchant(host=env.host.host).did_document())  # the signer is gone today

    report = env.reverify(clock=later(env))

    (after,) = env.proofs(review_id)
    assert (after.status, after.reason) == ("unauthorized", "signer-not-authorized")
    (change,) = env.history(review_id)
    assert (change.before_status, change.after_status, change.run_id) == ("verified", "unauthorized", report.run_id)
    assert env.review(review_id).verified_purchase is False
    assert env.review(review_id).evidence == "unauthorized"
    assert_aggregate_matches_reviews(env, env.merchant.did)


def test_document_gone_is_indeterminate_and_keeps_stored_verdicts(
    cli_env: BatchEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = cli_env
    ids = [env.verified_review(fmt="eip712"), env.verified_review(fmt="jws")]
    env.host.set("/.well-known/did.json", b"gone", status=404)
    report_path = tmp_path / "report.json"

    code = main(["reverify", "--json", str(report_path), "--workers", "2"])

    out = capsys.readouterr()
    assert code == 3, out.err
    for review_id in ids:
        (proof,) = env.proofs(review_id)
        assert (proof.status, proof.tier, proof.bound) == ("verified", "did-document", True)
        assert env.review(review_id).verified_purchase is True
    assert not env.history()
    attempts = env.attempts()
    assert sorted(a.review_id for a in attempts) == sorted(ids)
    assert {(a.kept_status, a.reason) for a in attempts} == {("verified", "fetch-http-status")}
    report = json.loads(report_path.read_text())
    assert report["indeterminate"] == 2
    assert report["changes"] == []
    assert {(t["before"], t["after"], t["proofs"]) for t in report["transitions"]} == {("verified", "indeterminate", 2)}
    assert "could not check" in out.out
    assert "reverify: 2/2 reviews (100.0%)" in out.err  # not a terminal: plain progress lines
    (run,) = env.runs()
    assert run.state == "done"
    assert run.reviews_checked == 2

    # The document is back: everything checks again, exit 0.
    env.host.set_document(env.merchant.did_document())
    assert main(["reverify", "--status", "verified"]) == 0


def test_dns_controllers_record_removed(batch_env: BatchEnv) -> None:
    env = batch_env
    signer_key = generate_evm_private_key()
    signer = evm_address(private_key=signer_key)
    record = f"_controllers.{env.host.host.split(':')[0]}"
    env.dns.set_txt(record, f"v=1;controller=did:pkh:eip155:1:{signer}")
    reviewer = Reviewer()
    payload = ReceiptPayload(version=1, network="eip155:8453", resource_url=env.merchant.url(), payer=reviewer.address,
                             issued_at=int(env.clock()) - 600, transaction="")  # fmt: skip
    receipt = proof_wrapper(artifact=sign_receipt_eip712(payload=payload, private_key=signer_key),
                            kind=ArtifactKind.RECEIPT)  # fmt: skip
    review_id = env.submit(reviewer, proofs=[receipt])
    (proof,) = env.proofs(review_id)
    assert (proof.status, proof.tier) == ("verified", "dns-txt")
    assert any(s.kind == "dns-txt" for s in env.snapshots())

    env.dns.set_nxdomain(record)  # the controller is removed from DNS
    report = env.reverify(clock=later(env))
    assert report.exit_code() == 0
    (proof,) = env.proofs(review_id)
    assert (proof.status, proof.tier) == ("verified", "dns-txt")  # authorized as of issuedAt
    assert env.dns.queries_for(record) >= 1

    env.dns.hang = True  # DNS dead: nothing can be checked, nothing is downgraded
    report = env.reverify(clock=later(env))
    env.dns.hang = False
    assert report.exit_code() == 3
    assert env.proofs(review_id)[0].status == "verified"
    assert env.attempts()[-1].reason == "dns-failed"

    # Evidence observed before the receipt was issued cannot vouch for it.
    env.set_proof_columns(review_id, 0, checked_at=payload.issued_at - 1000)
    env.reverify(clock=later(env))
    assert (env.proofs(review_id)[0].status, env.review(review_id).evidence) == ("unauthorized", "unauthorized")
    assert [(h.before_status, h.after_status) for h in env.history(review_id)] == [("verified", "unauthorized")]


def test_forged_receipts_planted_in_the_database_are_caught(batch_env: BatchEnv) -> None:
    env = batch_env
    jws_id = env.verified_review(fmt="jws")
    eip_id = env.verified_review(fmt="eip712")
    honest = env.verified_review(fmt="eip712")
    jws_wrapper = json.loads(env.review(jws_id).proofs_json[0])
    eip_wrapper = json.loads(env.review(eip_id).proofs_json[0])
    env.replace_proof(jws_id, 0, forge_jws(jws_wrapper, transaction="0x" + "11" * 32))
    env.replace_proof(eip_id, 0, forge_eip712(eip_wrapper, transaction="0x" + "22" * 32))

    report = env.reverify(clock=later(env))

    assert report.exit_code() == 0
    jws_proof = env.proofs(jws_id)[0]
    assert (jws_proof.status, jws_proof.reason, jws_proof.signature_valid) == ("invalid", "signature-invalid", False)
    eip_proof = env.proofs(eip_id)[0]
    assert (eip_proof.status, eip_proof.reason) == ("unauthorized", "signer-not-authorized")
    assert eip_proof.signer is not None
    assert eip_proof.signer.lower() != env.merchant.address.lower()
    history = {(h.review_id, h.before_status, h.after_status, h.run_id) for h in env.history()}
    assert history == {
        (jws_id, "verified", "invalid", report.run_id),
        (eip_id, "verified", "unauthorized", report.run_id),
    }
    assert (env.review(jws_id).verified_purchase, env.review(jws_id).evidence) == (False, "none")
    assert (env.review(eip_id).verified_purchase, env.review(eip_id).evidence) == (False, "unauthorized")
    assert env.review(honest).verified_purchase is True
    assert_aggregate_matches_reviews(env, env.merchant.did)
    assert {c["reviewId"] for c in report.to_json()["reviewChanges"]} == {jws_id, eip_id}

    # A second run finds nothing more to change.
    again = env.reverify(clock=later(env))
    assert again.changed == 0
    assert len(env.history()) == 2


def test_report_lists_are_bounded_and_every_change_is_still_counted_and_recorded(batch_env: BatchEnv) -> None:
    """The report keeps ``report_limit`` entries per list (its memory does not grow with a run's changes); the
    count, the exit code and the history rows cover every change."""
    env = batch_env
    forged = []
    for n in range(3):
        review_id = env.verified_review(fmt="jws")
        wrapper = json.loads(env.review(review_id).proofs_json[0])
        env.replace_proof(review_id, 0, forge_jws(wrapper, transaction="0x" + f"{n + 1:02x}" * 32))
        forged.append(review_id)
    env.verified_review()

    report = env.reverify(clock=later(env), report_limit=1, chunk_size=2)

    out = report.to_json()
    assert report.changed == out["changed"] == 3
    assert len(out["changes"]) == len(out["reviewChanges"]) == 1
    assert out["omitted"] == {"changes": 2, "reviewChanges": 2}
    assert report.review_changes.total == 3
    assert {h.review_id for h in env.history()} == set(forged)  # all recorded, whatever the report lists
    assert out["changes"][0]["reviewId"] in forged
    unlimited = env.reverify(clock=later(env), dry_run=True)
    assert unlimited.to_json()["omitted"] == {}


def _table_dump(env: BatchEnv) -> dict[str, list[tuple[object, ...]]]:
    from sqlalchemy import MetaData
    from sqlalchemy import select as sa_select

    meta = MetaData()
    meta.reflect(bind=env.engine)
    dump: dict[str, list[tuple[object, ...]]] = {}
    with env.engine.connect() as conn:
        for name, table in meta.tables.items():
            if name == "alembic_version":
                continue
            dump[name] = sorted((tuple(map(repr, row)) for row in conn.execute(sa_select(table))), key=repr)
    return dump


def test_dry_run_writes_nothing(batch_env: BatchEnv) -> None:
    env = batch_env
    review_id = env.verified_review(fmt="jws")
    env.verified_review()
    env.replace_proof(review_id, 0, forge_jws(json.loads(env.review(review_id).proofs_json[0]), payer="0x" + "ab" * 20))
    env.host.set_document(Merchant(host=env.host.host).did_document())  # rotation: the other one stays "as of"
    before = _table_dump(env)

    report = env.reverify(clock=later(env), dry_run=True)

    assert _table_dump(env) == before
    assert report.dry_run
    assert report.finished
    assert [(c["reviewId"], c["after"]["status"]) for c in report.proof_changes] == [(review_id, "invalid")]
    assert [c["reviewId"] for c in report.review_changes] == [review_id]


def test_resume_after_a_crash_checks_every_review_exactly_once(batch_env: BatchEnv) -> None:
    env = batch_env
    ids = []
    for i in range(23):
        env.clock.offset = i  # distinct review times: a stable order to reason about
        ids.append(env.verified_review(fmt="jws" if i % 3 == 0 else "eip712"))
    env.clock.offset = 0
    with Session(env.engine) as s:
        order = [r.id for r in s.exec(select(ReviewRow).order_by(ReviewRow.subject_normalized, ReviewRow.review_time,
                                                                  ReviewRow.id))]  # fmt: skip
    forged = order[12]  # in the third chunk of five
    env.replace_proof(forged, 0, forge(json.loads(env.review(forged).proofs_json[0]), transaction="0x" + "33" * 32))

    committed: list[list[str]] = []

    def crash_on_third(chunk: list[str]) -> None:
        if len(committed) == 2:
            raise RuntimeError("power cut")  # inside the chunk's transaction: chunk 3 is rolled back
        committed.append(chunk)

    options = {"chunk_size": 5, "task_size": 2, "workers": 2}
    with pytest.raises(RuntimeError, match="power cut"):
        reverify(engine=env.engine, resolver=env.rt.resolver, controllers=env.rt.controllers, policy=env.rt.policy,
                 clock=later(env), options=ReverifyOptions(**options), on_chunk=crash_on_third)  # fmt: skip
    assert [r.state for r in env.runs()] == ["running"]
    assert env.runs()[0].reviews_checked == 10
    assert not env.history(forged)

    report = reverify(engine=env.engine, resolver=env.rt.resolver, controllers=env.rt.controllers,
                      policy=env.rt.policy, clock=later(env), options=ReverifyOptions(resume=LATEST, **options),
                      on_chunk=committed.append)  # fmt: skip

    flat = [rid for chunk in committed for rid in chunk]
    assert flat == order  # every review once, in order, across the crash
    assert report.resumed
    assert report.run_id == env.runs()[0].run_id
    (run,) = env.runs()
    assert (run.state, run.reviews_checked) == ("done", 23)
    assert sum(report.transitions.values()) == 23
    assert [h.before_status for h in env.history(forged)] == ["verified"]  # one change, recorded once
    assert env.history(forged)[0].after_status in ("invalid", "unauthorized")
    assert report.to_json()["changes"][0]["reviewId"] == forged
    with pytest.raises(ResumeError):
        env.reverify(resume=LATEST, chunk_size=5)
    fresh = env.reverify(resume=IF_ANY, chunk_size=5)  # nothing to resume: a new run over everything
    assert not fresh.resumed
    assert fresh.reviews == 23


def test_partitions_cover_every_review_exactly_once(batch_env: BatchEnv) -> None:
    env = batch_env
    reviewers = [Reviewer() for _ in range(3)]
    for i in range(24):
        env.submit(reviewers[i % 3], proofs=[], subject=f"did:web:shop{i % 12}.example")
    env.verified_review()
    with Session(env.engine) as s:
        subject_of = {r.id: r.subject_normalized for r in s.exec(select(ReviewRow))}

    seen_by_partition: list[list[str]] = []
    for k in range(3):
        seen: list[str] = []
        report = reverify(engine=env.engine, resolver=env.rt.resolver, controllers=env.rt.controllers,
                          policy=env.rt.policy, on_chunk=seen.extend,
                          options=ReverifyOptions(partition=Partition(k, 3), chunk_size=4, workers=0))  # fmt: skip
        assert report.finished
        assert report.reviews == len(seen)
        seen_by_partition.append(seen)

    assert sorted(rid for seen in seen_by_partition for rid in seen) == sorted(subject_of)  # all, none twice
    for k, seen in enumerate(seen_by_partition):
        for rid in seen:  # the documented rule, computed independently
            digest = hashlib.sha256(subject_of[rid].encode()).digest()
            assert int.from_bytes(digest[:8], "big") % 3 == k
    assert sum(1 for seen in seen_by_partition if seen) >= 2


def test_usage_errors_exit_2(cli_env: BatchEnv, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reverify", "--partition", "3/3"]) == 2
    assert main(["reverify", "--since", "yesterday"]) == 2
    assert main(["reverify", "--resume"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["reverify", "--status", "great"])
    assert exc.value.code == 2
    assert "omatrust reverify" in capsys.readouterr().err
