"""The API tests' actors (one key per role, a client on real sockets), for the audit tests."""

from tests.api.conftest import actors

__all__ = ["actors"]
