"""``omatrust sync`` for ERC-8004: index a Reputation Registry's feedback, map agents to services, verify feedback.

Per chain, one unit: (Reputation Registry, its Identity Registry), checkpointed as ``erc8004:<chain>:<registry>``
in ``indexer_progress`` with the block hashes in ``indexer_blocks`` — the same bookkeeping as the EAS indexer.

* Reorgs: before reading on, the checkpoint block's hash is compared with the chain's; on a mismatch the recorded
  hashes are walked down to the fork point and everything from blocks above it is undone in one transaction
  (feedback deleted, revocations cleared, responses deleted), then those blocks are read again.
* Each chunk of blocks is stored in one transaction together with its checkpoint. Slow work (fetching files, reading
  the agent and the payment) happens before that transaction, outside it.
* ``NewFeedback`` → a row with its verdict (``service.verdicts.erc8004``): status, reason, self-feedback flag.
  ``FeedbackRevoked`` → the row's ``revoked_block`` (it drops out of the evidence summary). ``ResponseAppended`` →
  kept for audit.
* Agents are resolved once per run (owner, wallet, approved operator, registration file → service DIDs) and stored,
  mapped or not: unmappable agents are reported by ``omatrust sync`` and never dropped.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.chain.erc8004 import (
    AgentFacts,
    FeedbackRevoked,
    FeedbackScanner,
    LogPlace,
    NewFeedback,
    RegistryClient,
    ResponseAppended,
)
from service.dids import did_web_host, normalize_did
from service.domain import Reason, TxObservation
from service.errors import ChainUnavailable, CouldNotCheck, FetchFailed, MalformedInput
from service.payments.reader import PaymentReader
from service.storable import unstorable
from service.store.batch import advance_indexer_checkpoint
from service.store.chains import remember_blocks, rewind_checkpoint
from service.store.engine import session_scope
from service.store.erc8004 import (
    add_response,
    known_feedback,
    mark_revoked,
    open_feedback,
    save_agent,
    settle_feedback,
    undo_after,
)
from service.store.tables import Erc8004AgentRow, Erc8004FeedbackRow, Erc8004ResponseRow
from service.verdicts.erc8004 import (
    RECHECKABLE_REASONS,
    FeedbackReason,
    FeedbackStatus,
    confirms,
    file_consistent,
    hash_matches,
    judge_payment,
    parse_feedback_file,
    parse_registration,
    recheck_replaces,
)
from service.workflows.erc8004_fetch import UriFetcher
from service.workflows.fork_walk import find_fork
from service.workflows.isolation import CHUNK_FAILURES, judge_isolated, store_isolated

log = logging.getLogger("omatrust.erc8004")
WELL_KNOWN = "/.well-known/agent-registration.json"


@dataclass
class Erc8004Deps:
    engine: Engine
    client: RegistryClient
    files: UriFetcher
    payments: PaymentReader | None
    clock: Callable[[], float] = time.time


@dataclass
class Erc8004Report:
    from_block: int | None = None
    to_block: int | None = None
    chunks: int = 0
    feedback: int = 0
    known: int = 0
    revoked: int = 0
    responses: int = 0
    payment_verified: int = 0
    self_feedback: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    unmapped_agents: list[str] = field(default_factory=list)
    reorg_fork: int | None = None
    undone: tuple[int, int, int] = (0, 0, 0)
    rechecked: int = 0
    upgraded: int = 0
    recheck_error: str | None = None


@dataclass(frozen=True)
class Agent:
    facts: AgentFacts
    row: Erc8004AgentRow
    operators: frozenset[str]  # lower-case addresses that count as the agent itself (owner, approved, wallet)
    approved_for_all: dict[str, bool] = field(default_factory=dict)  # isApprovedForAll(owner, client), per run
    file_wallets: frozenset[str] = frozenset()  # the registration file's agentWallet services
    wallet_at: dict[tuple[int, int | None], str | None] = field(default_factory=dict)  # at (block, log), per run


@dataclass(slots=True)
class FeedbackRecord:
    """One ``NewFeedback`` being judged: the columns of ``erc8004_feedback`` as a plain object (an ORM row costs
    ~0.5 ms to build; a chunk stores its records with one multi-row INSERT and builds rows only to isolate a bad one).
    """

    chain_id: int
    registry_address: str
    agent_id: str
    client: str
    feedback_index: int
    value: str
    value_decimals: int
    tag1: str
    tag2: str
    endpoint: str
    feedback_uri: str
    feedback_hash: str
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    status: str
    self_feedback: bool
    seen_at: int
    reason: str | None = None
    detail: str = ""
    payment_network: str | None = None
    payment_tx: str | None = None
    revoked_block: int | None = None

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _RECORD_FIELDS}

    def row(self) -> Erc8004FeedbackRow:
        return Erc8004FeedbackRow.model_validate(self.values())


_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(FeedbackRecord))


def checkpoint_after_reorgs(*, deps: Erc8004Deps, name: str, report: Erc8004Report) -> int | None:
    """The checkpoint to resume from, after undoing whatever orphaned blocks brought.

    Raises:
        ChainUnavailable: RPC failure (nothing changed).
    """
    resume = find_fork(engine=deps.engine, name=name, chain=deps.client)
    if resume.fork is None:
        return resume.checkpoint
    checkpoint, fork, fork_hash = resume.fork.checkpoint, resume.fork.block, resume.fork.block_hash
    reg = deps.client.registries
    with session_scope(deps.engine) as session:
        report.undone = undo_after(session, chain_id=reg.chain_id, registry=reg.reputation.lower(), block=fork)
        rewind_checkpoint(session, name=name, block=fork, block_hash=fork_hash, now=int(deps.clock()))
    report.reorg_fork = fork
    log.warning("erc8004 sync: reorg below block %d, forked after %d; undid %s (feedback, revocations, responses)",
                checkpoint, fork, report.undone)  # fmt: skip
    return fork


def resolve_agent(*, deps: Erc8004Deps, agent_id: int) -> Agent:
    """Read the agent on chain and map its registration file to service DIDs (never raises for a bad file).

    Raises:
        ChainUnavailable: RPC failure.
    """
    reg = deps.client.registries
    facts = deps.client.agent(agent_id=agent_id)
    row = Erc8004AgentRow(
        chain_id=reg.chain_id, registry_address=reg.reputation.lower(), agent_id=str(agent_id),
        identity_address=reg.identity.lower(), owner=facts.owner,
        wallet=facts.wallet, token_uri=facts.token_uri, status="unmapped", checked_at=int(deps.clock()),
    )  # fmt: skip
    operators = {a for a in (facts.owner, facts.approved, facts.wallet) if a}
    if facts.owner is None:
        row.reason = "agent-unknown"
        return Agent(facts, row, frozenset(operators))

    def failed(exc: Exception) -> None:
        row.status, row.service_dids = "unmapped", []
        row.reason, row.detail = Reason.JUDGE_FAILED.value, f"mapping the registration raised {type(exc).__name__}"

    file_wallets: list[str] = []
    judge_isolated(judge=lambda: _map_registration(deps=deps, agent_id=agent_id, facts=facts, row=row,
                                                   file_wallets=file_wallets),
                   reject=failed, what=f"agent {agent_id}", passthrough=(ChainUnavailable,))  # fmt: skip
    bad = unstorable([row.token_uri, row.detail, *row.wallets, *row.service_dids])
    if bad is not None:  # e.g. NUL in the on-chain tokenURI: kept, unmapped, with the reason
        row.token_uri, row.wallets, row.service_dids, row.status = "", [], [], "unmapped"
        row.reason, row.detail = Reason.VALUE_NOT_STORABLE.value, bad
    return Agent(facts, row, frozenset(operators), file_wallets=frozenset(file_wallets))


def _map_registration(
    *, deps: Erc8004Deps, agent_id: int, facts: AgentFacts, row: Erc8004AgentRow, file_wallets: list[str]
) -> None:
    reg = deps.client.registries
    try:
        registration = parse_registration(deps.files.fetch(uri=facts.token_uri))
    except FetchFailed as exc:
        row.reason, row.detail = exc.reason.value, exc.detail
        return
    except MalformedInput as exc:
        row.reason, row.detail = "registration-invalid", exc.detail
        return
    file_wallets.extend(registration.wallets)
    row.wallets = sorted({*registration.wallets, *([facts.wallet] if facts.wallet else [])})
    home = deps.files.url_for(facts.token_uri) or ""
    dids = [normalize_did(d) for d in registration.dids]
    refuted: list[str] = []
    for did in registration.web_dids:
        host = did_web_host(did)
        if home.startswith(f"https://{host}/"):
            dids.append(normalize_did(did))  # the registration file itself is served by that domain
            continue
        try:
            proof = parse_registration(deps.files.fetch(uri=f"https://{host}{WELL_KNOWN}"))
        except (FetchFailed, MalformedInput):
            dids.append(normalize_did(did))  # no domain proof published: the endpoint is taken as asserted
            continue
        if confirms(proof, agent_registry=reg.agent_registry, agent_id=agent_id):
            dids.append(normalize_did(did))
        else:
            refuted.append(did)  # the domain publishes a registration list without this agent
    row.service_dids = sorted(set(dids))
    if row.service_dids:
        row.status, row.reason = "mapped", None
    else:
        row.reason = "no-service-did"
    if refuted:
        row.detail = "domain proof does not list this agent: " + ", ".join(refuted)


def verify_feedback(*, deps: Erc8004Deps, event: NewFeedback, agent: Agent, fresh: bool = False) -> FeedbackRecord:
    """The stored row of one ``NewFeedback`` with its verdict (see ``service.verdicts.erc8004``); ``fresh`` reads
    the payment again rather than from the reader's cache (re-checks).

    Raises:
        ChainUnavailable: reading the operator status failed (the chunk is retried on the next run).
    """
    reg = deps.client.registries
    self_feedback = event.client in agent.operators
    if not self_feedback and agent.facts.owner is not None:
        if event.client not in agent.approved_for_all:
            operator = deps.client.is_operator(owner=agent.facts.owner, spender=event.client)
            agent.approved_for_all[event.client] = operator
        self_feedback = agent.approved_for_all[event.client]
    row = FeedbackRecord(
        chain_id=reg.chain_id, registry_address=reg.reputation.lower(), agent_id=str(event.agent_id),
        client=event.client, feedback_index=event.index, value=str(event.value), value_decimals=event.decimals,
        tag1=event.tag1, tag2=event.tag2, endpoint=event.endpoint, feedback_uri=event.uri,
        feedback_hash=event.hash, block_number=event.place.block_number, block_hash=event.place.block_hash,
        tx_hash=event.place.tx_hash, log_index=event.place.log_index, status=FeedbackStatus.UNVERIFIED.value,
        self_feedback=self_feedback, seen_at=int(deps.clock()),
    )  # fmt: skip
    bad = unstorable([row.tag1, row.tag2, row.endpoint, row.feedback_uri])
    if bad is not None:  # chain strings a database cannot hold (NUL): kept as a reject without them
        return failed_feedback(row, reason=Reason.VALUE_NOT_STORABLE.value, detail=bad)
    status, reason, detail = judge_isolated(
        judge=lambda: _judge(deps=deps, event=event, agent=agent, row=row, fresh=fresh),
        reject=lambda exc: (FeedbackStatus.REJECTED, Reason.JUDGE_FAILED.value, f"judging raised {type(exc).__name__}"),
        what=f"feedback {event.agent_id}/{event.client}/{event.index}",
        passthrough=(ChainUnavailable,),
    )
    row.status, row.reason, row.detail = status.value, reason, detail
    return row


def failed_feedback(row: FeedbackRecord, *, reason: str, detail: str) -> FeedbackRecord:
    """The reject stored in place of a feedback row: chain-sourced text dropped, only the key and place kept."""
    return dataclasses.replace(
        row, tag1="", tag2="", endpoint="", feedback_uri="", payment_network=None, payment_tx=None,
        status=FeedbackStatus.REJECTED.value, reason=reason, detail=detail[:500],
    )  # fmt: skip


def _judge(
    *, deps: Erc8004Deps, event: NewFeedback, agent: Agent, row: FeedbackRecord, fresh: bool
) -> tuple[FeedbackStatus, str | None, str]:
    if not event.uri:
        return FeedbackStatus.UNVERIFIED, FeedbackReason.NO_FILE.value, ""
    try:
        data = deps.files.fetch(uri=event.uri)
    except FetchFailed as exc:
        return FeedbackStatus.REJECTED, exc.reason.value, exc.detail
    except CouldNotCheck as exc:  # saturated: not the file's fault
        return FeedbackStatus.UNVERIFIED, exc.reason.value, exc.detail
    if not hash_matches(uri=event.uri, data=data, feedback_hash=event.hash):
        return FeedbackStatus.REJECTED, FeedbackReason.HASH_MISMATCH.value, "keccak256(file) != feedbackHash"
    try:
        file = parse_feedback_file(data)
    except MalformedInput as exc:
        return FeedbackStatus.REJECTED, FeedbackReason.FILE_INVALID.value, exc.detail
    registry = deps.client.registries.agent_registry
    if not file_consistent(
        file, agent_registry=registry, agent_id=event.agent_id, client=event.client, value=event.value,
        decimals=event.decimals,
    ):  # fmt: skip
        return FeedbackStatus.REJECTED, FeedbackReason.FILE_MISMATCH.value, "file does not describe this feedback"
    proof = file.proof_of_payment
    if proof is None:
        return FeedbackStatus.UNVERIFIED, FeedbackReason.NO_PROOF.value, ""
    row.payment_network, row.payment_tx = proof.network, proof.tx_hash
    if deps.payments is None:
        return FeedbackStatus.UNVERIFIED, FeedbackReason.PAYMENT_NETWORK_NOT_CONFIGURED.value, proof.network
    try:
        observation = deps.payments.observe(network=proof.network, transaction=proof.tx_hash, fresh=fresh)
    except CouldNotCheck as exc:
        return FeedbackStatus.UNVERIFIED, exc.reason.value, exc.detail
    payees = set(agent.file_wallets) | _wallets_then(deps=deps, agent=agent, event=event, observation=observation)
    verdict = judge_payment(proof=proof, client=event.client, payees=payees, observation=observation)
    if verdict is None:
        return FeedbackStatus.PAYMENT_VERIFIED, None, ""
    return FeedbackStatus.UNVERIFIED, verdict.value, ""


def _wallets_then(*, deps: Erc8004Deps, agent: Agent, event: NewFeedback, observation: TxObservation) -> set[str]:
    """The agent's on-chain wallet when the feedback was given and, when the payment is on this chain, when it was
    paid: a wallet changed later (or cleared by a transfer) still receives the payments made to it then.

    Raises:
        ChainUnavailable: RPC failure.
    """
    places: set[tuple[int, int | None]] = {(event.place.block_number, event.place.log_index)}
    if (
        observation.mined
        and observation.block_number is not None
        and observation.network == f"eip155:{deps.client.registries.chain_id}"
    ):
        places.add((observation.block_number, None))
    out: set[str] = set()
    for block, log_index in places:
        if (block, log_index) not in agent.wallet_at:
            wallet = deps.client.wallet_at(agent_id=event.agent_id, block=block, log_index=log_index)
            agent.wallet_at[(block, log_index)] = wallet
        found = agent.wallet_at[(block, log_index)]
        if found is not None:
            out.add(found)
    return out


def sync_erc8004(
    *, deps: Erc8004Deps, scanner: FeedbackScanner, from_block: int = 0, to_block: int | None = None
) -> Erc8004Report:
    """Index from the checkpoint (or ``from_block``) up to the safe head (or ``to_block``).

    Raises:
        ChainUnavailable: RPC failure (committed chunks are kept; run again to resume).
    """
    reg = deps.client.registries
    name, registry = reg.checkpoint_name, reg.reputation.lower()
    report = Erc8004Report()
    checkpoint = checkpoint_after_reorgs(deps=deps, name=name, report=report)
    agents: dict[int, Agent] = {}
    for chunk in scanner.sync(checkpoint=checkpoint, start_block=from_block, to_block=to_block):
        if report.from_block is None:
            report.from_block = chunk.from_block
        feedback_ids = {e.agent_id for e in chunk.events if isinstance(e, NewFeedback)}
        with Session(deps.engine) as session:
            known = known_feedback(session, chain_id=reg.chain_id, registry=registry, agent_ids=feedback_ids)
        rows: list[FeedbackRecord] = []
        for event in chunk.events:
            if not isinstance(event, NewFeedback):
                continue
            if (str(event.agent_id), event.client, event.index) in known:
                report.known += 1
                continue
            if event.agent_id not in agents:
                agents[event.agent_id] = resolve_agent(deps=deps, agent_id=event.agent_id)
            rows.append(verify_feedback(deps=deps, event=event, agent=agents[event.agent_id]))
        last_hash = deps.client.block_hash(number=chunk.to_block)
        hashes = {e.place.block_number: e.place.block_hash for e in chunk.events}
        with session_scope(deps.engine) as session:
            # The checkpoint first: a write opens the transaction (pysqlite begins lazily, before DML only), so the
            # per-item savepoints of _store_chunk nest inside it and the chunk stays atomic.
            advance_indexer_checkpoint(session, name=name, block=chunk.to_block, now=int(deps.clock()))
            _store_chunk(session, deps=deps, chunk_events=chunk.events, rows=rows, agents=agents, report=report)
            remember_blocks(
                session, name=name, hashes=hashes, last_block=chunk.to_block, last_hash=last_hash, chain_ref=None
            )
        report.chunks += 1
        report.to_block = chunk.to_block
    report.unmapped_agents = sorted(str(a) for a, agent in agents.items() if agent.row.status != "mapped")
    recheck_feedback(deps=deps, report=report, agents=agents)
    return report


RECHECK_LIMIT = 1000  # open feedback re-judged per run, oldest first


def recheck_feedback(
    *, deps: Erc8004Deps, report: Erc8004Report, agents: dict[int, Agent] | None = None, limit: int = RECHECK_LIMIT
) -> None:
    """Re-judge stored feedback whose payment check was left open (pending, not found yet, node unreachable,
    network not configured): the payment is read again (not from the cache) and the agent's wallet at the
    feedback's block too. The new verdict replaces the stored one only when it settles the question
    (``recheck_replaces``): a re-check never downgrades. Counts go to ``report.rechecked`` / ``report.upgraded``.

    Never raises for the chain: an RPC failure ends the re-check (``report.recheck_error``), stored verdicts kept.
    """
    reg = deps.client.registries
    with Session(deps.engine) as session:
        rows = open_feedback(session, chain_id=reg.chain_id, registry=reg.reputation.lower(),
                             reasons=RECHECKABLE_REASONS, limit=limit)  # fmt: skip
    known = {} if agents is None else agents
    for row in rows:
        event = NewFeedback(
            LogPlace(row.block_number, row.block_hash, row.tx_hash, row.log_index), int(row.agent_id), row.client,
            row.feedback_index, int(row.value), row.value_decimals, row.tag1, row.tag2, row.endpoint,
            row.feedback_uri, row.feedback_hash,
        )  # fmt: skip
        try:
            if event.agent_id not in known:
                known[event.agent_id] = resolve_agent(deps=deps, agent_id=event.agent_id)
            checked = verify_feedback(deps=deps, event=event, agent=known[event.agent_id], fresh=True)
        except ChainUnavailable as exc:
            report.recheck_error = f"{exc.reason.value}: {exc.detail}"
            log.warning("erc8004 re-check stopped (stored verdicts kept): %s", report.recheck_error)
            return
        report.rechecked += 1
        if not recheck_replaces(old_status=row.status, old_reason=row.reason, new_status=checked.status,
                                new_reason=checked.reason):  # fmt: skip
            continue
        with session_scope(deps.engine) as session:
            if settle_feedback(session, checked=checked.row(), old_reason=row.reason):
                report.upgraded += 1


def _store_chunk(
    session: Session,
    *,
    deps: Erc8004Deps,
    chunk_events: tuple[NewFeedback | FeedbackRevoked | ResponseAppended, ...],
    rows: list[FeedbackRecord],
    agents: dict[int, Agent],
    report: Erc8004Report,
) -> None:
    reg = deps.client.registries
    registry = reg.reputation.lower()
    for agent_id in sorted({int(r.agent_id) for r in rows}):
        agent_row = agents[agent_id].row

        def agent_failed(exc: Exception, agent_row: Erc8004AgentRow = agent_row) -> None:
            save_agent(session, row=Erc8004AgentRow(**agent_row.model_dump() | {
                "token_uri": "", "wallets": [], "service_dids": [], "status": "unmapped",
                "reason": Reason.JUDGE_FAILED.value, "detail": f"storing raised {type(exc).__name__}"}))  # fmt: skip
            session.flush()

        store_isolated(session, store=functools.partial(_save, session, agent_row.model_copy()),
                       reject=agent_failed, what=f"agent {agent_id}")  # fmt: skip
    for row in _store_feedback(session, rows=rows):
        report.feedback += 1
        report.payment_verified += row.status == FeedbackStatus.PAYMENT_VERIFIED
        report.self_feedback += row.self_feedback
        if row.reason:
            report.reasons[row.reason] = report.reasons.get(row.reason, 0) + 1
    session.flush()
    for event in chunk_events:  # in log order: a revocation after its feedback in the same chunk finds it
        if isinstance(event, FeedbackRevoked):
            revoked = [False]

            def revoke(event: FeedbackRevoked = event, revoked: list[bool] = revoked) -> None:
                revoked[0] = mark_revoked(
                    session, chain_id=reg.chain_id, registry=registry, agent_id=event.agent_id, client=event.client,
                    index=event.index, block=event.place.block_number,
                )  # fmt: skip
                session.flush()

            store_isolated(session, store=revoke, reject=lambda exc: None,  # an unknown index: nothing to mark
                           what=f"revocation {event.agent_id}/{event.client}/{event.index}")  # fmt: skip
            report.revoked += revoked[0]
        elif isinstance(event, ResponseAppended):
            response = Erc8004ResponseRow(
                chain_id=reg.chain_id, registry_address=registry, tx_hash=event.place.tx_hash,
                log_index=event.place.log_index, agent_id=str(event.agent_id), client=event.client,
                feedback_index=event.index, responder=event.responder,
                response_uri=event.uri if unstorable([event.uri]) is None else "",  # e.g. NUL: kept without it
                response_hash=event.hash, block_number=event.place.block_number,
            )  # fmt: skip

            def respond(response: Erc8004ResponseRow = response) -> None:
                add_response(session, row=response)
                session.flush()

            def response_failed(exc: Exception, response: Erc8004ResponseRow = response) -> None:
                # kept for audit without the text the database refused (the URI); its hash still identifies it
                add_response(session, row=Erc8004ResponseRow(**response.model_dump() | {"response_uri": ""}))
                session.flush()

            store_isolated(session, store=respond, reject=response_failed,
                           what=f"response {event.place.tx_hash}/{event.place.log_index}")  # fmt: skip
            report.responses += 1


def _save(session: Session, row: Erc8004AgentRow) -> None:
    save_agent(session, row=row)
    session.flush()


def _store_feedback(session: Session, *, rows: list[FeedbackRecord]) -> list[FeedbackRecord]:
    """Insert a chunk's feedback: one multi-row INSERT in a savepoint; if the database refuses it (a value it cannot
    hold, a bug), row by row, each in its own savepoint, a refused row stored as a reject. Returns what was stored.

    Raises:
        IntegrityError, OperationalError, InterfaceError: the chunk must be rolled back and retried.
    """
    if not rows:
        return []
    try:
        with session.begin_nested():
            session.execute(insert(Erc8004FeedbackRow), [r.values() for r in rows])
        return rows
    except CHUNK_FAILURES:
        raise
    except Exception:
        log.warning("erc8004 sync: the chunk's feedback insert failed; storing row by row", exc_info=True)
    stored_rows: list[FeedbackRecord] = []
    for row in rows:
        stored = [row]

        def feedback_failed(exc: Exception, stored: list[FeedbackRecord] = stored) -> None:
            stored[0] = failed_feedback(stored[0], reason=Reason.JUDGE_FAILED.value,
                                        detail=f"storing raised {type(exc).__name__}")  # fmt: skip
            session.add(stored[0].row())
            session.flush()

        store_isolated(session, store=functools.partial(_add, session, row), reject=feedback_failed,
                       what=f"feedback {row.agent_id}/{row.client}/{row.feedback_index}")  # fmt: skip
        stored_rows.append(stored[0])
    return stored_rows


def _add(session: Session, row: FeedbackRecord) -> None:
    session.add(row.row())
    session.flush()


def iter_reasons(report: Erc8004Report) -> Iterator[str]:
    for reason, count in sorted(report.reasons.items()):
        yield f"{reason}={count}"
