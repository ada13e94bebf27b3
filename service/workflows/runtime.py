"""The wired-up parts a workflow needs, built once by the app factory or the CLI and passed in."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from service.chain.eas import EasClient
from service.identity.dns import ControllerResolver
from service.identity.resolver import DidResolver
from service.workflows.evaluate import ReviewPolicy


def _noop() -> None:
    return None


@dataclass
class Runtime:
    engine: Engine
    eas: EasClient
    resolver: DidResolver | None
    controllers: ControllerResolver | None
    policy: ReviewPolicy = field(default_factory=ReviewPolicy)
    clock: Callable[[], float] = time.time
    # Called after a review is enqueued so the in-process publisher does not wait for its next tick.
    publisher_wakeup: Callable[[], None] = _noop
    # True on the embedded in-process EVM: attestations vanish when the process exits.
    ephemeral_chain: bool = False
