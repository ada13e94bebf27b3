"""Fixtures shared by every test package (a package's own conftest.py may override a name)."""

pytest_plugins = ["tests.support.fixtures"]
