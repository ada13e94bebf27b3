"""Fixtures shared by every test package (a package's own conftest.py may override a name)."""

import os

pytest_plugins = ["tests.support.fixtures", "tests.support.no_skips"]

# In-process wiring (``wire(Settings())``) gets an in-memory embedded chain unless a test asks for a file: the default
# would be a chain file beside the database, or ./omatrust.chain in the working directory for PostgreSQL — shared by
# every test and locked by whichever process opened it first (docs/chain.md). Subprocess tests build their own env.
os.environ.setdefault("OMATRUST_EMBEDDED_CHAIN_PATH", ":memory:")
