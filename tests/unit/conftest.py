"""Unit tests run with the network off (Unix sockets allowed for SQLite-free helpers)."""

from __future__ import annotations

import pytest
from pytest_socket import disable_socket


@pytest.fixture(autouse=True)
def _no_network() -> None:
    disable_socket(allow_unix_socket=True)
