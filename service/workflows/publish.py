"""The in-process publish loop: the chain's Publisher over the SQL outbox, in one background thread.

On start it first reconciles what a previous run left ``submitted`` (crash between send and receipt), then drains.
One loop per relayer key (the publisher is a single writer; see service.chain.publisher).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from sqlmodel import Session

from service.chain.eas_relayer import EasClient
from service.chain.publisher import Publisher, PublishReport
from service.workflows.outbox import SqlOutbox
from service.workflows.runtime import Runtime
from service.workflows.withdraw import withdraw_review

log = logging.getLogger(__name__)


def _withdrawer(rt: Runtime) -> Callable[[Session, str, int], object]:
    """A review whose attestation cannot land is withdrawn (not live) in the transaction that fails its item."""

    def withdraw(session: Session, review_id: str, now: int) -> object:
        return withdraw_review(session, rt=rt, review_id=review_id, now=now)

    return withdraw


def build_publisher(
    *, rt: Runtime, client: EasClient | None = None, digits: Sequence[str] | None = None, batch_size: int = 20
) -> Publisher:
    """The publisher of one relayer key (``client``, default ``rt.eas``) over the SQL outbox, restricted to that
    key's share of attesters (``digits``, see ``SqlOutbox``) when several keys publish in parallel."""
    return Publisher(
        client=client or rt.eas,
        outbox=SqlOutbox(engine=rt.engine, chain_ref=rt.chain_ref, on_failed=_withdrawer(rt), digits=digits),
        clock=rt.clock,
        batch_size=batch_size,
        confirmations=rt.confirmations,
    )


class PublishLoop:
    def __init__(self, *, rt: Runtime, batch_size: int = 20, interval: float = 0.5) -> None:
        self.publisher = build_publisher(rt=rt, batch_size=batch_size)
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def drain(self) -> PublishReport:
        """Reconcile and publish everything due, synchronously (CLI, tests)."""
        return self.publisher.drain()

    def wakeup(self) -> None:
        self.publisher.wakeup()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="omatrust-publisher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.publisher.run_forever(stop=self._stop, interval=self.interval)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.publisher.wakeup()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
