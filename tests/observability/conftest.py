from tests.plugins.support import clock, receiver, server_factory, settings  # noqa: F401 - fixtures
