"""Run one publisher round in its own process (the crash test SIGKILLs it while it waits for a receipt).

    python -m tests.chain.publisher_proc <anvil_url> <sqlite_path>
"""

from __future__ import annotations

import sys
from pathlib import Path

from eth_account import Account

from service.chain.eas_relayer import EasClient
from service.chain.embedded import EAS_ADDRESS
from service.chain.publisher import Publisher
from service.chain.rpc import connect
from tests.support.anvil import ANVIL_DEV_KEY_0

from .sqlite_outbox import SqliteOutbox


def main() -> int:
    url, path = sys.argv[1], Path(sys.argv[2])
    client = EasClient(w3=connect(rpc_url=url), eas_address=EAS_ADDRESS, relayer=Account.from_key(ANVIL_DEV_KEY_0))
    Publisher(client=client, outbox=SqliteOutbox(path), receipt_timeout=120).run_once()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
