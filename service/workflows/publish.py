"""The in-process publish loop: the chain's Publisher over the SQL outbox, in one background thread.

On start it first reconciles what a previous run left ``submitted`` (crash between send and receipt), then drains.
One loop per relayer key (the publisher is a single writer; see service.chain.publisher).
"""

from __future__ import annotations

import logging
import threading

from service.chain.publisher import Publisher, PublishReport
from service.workflows.outbox import SqlOutbox
from service.workflows.runtime import Runtime

log = logging.getLogger(__name__)


class PublishLoop:
    def __init__(self, *, rt: Runtime, batch_size: int = 20, interval: float = 0.5) -> None:
        self.publisher = Publisher(
            client=rt.eas, outbox=SqlOutbox(engine=rt.engine), clock=rt.clock, batch_size=batch_size
        )
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
