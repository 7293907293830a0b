"""Webhook tests: a real receiver on loopback, a frozen clock, a fast dispatcher."""

from tests.plugins.support import clock, receiver, server_factory, settings  # noqa: F401 - fixtures
