"""Seeing the server run: metrics at /metrics (``metrics``), traces through OpenTelemetry
(``tracing``), log lines that carry each request's id (``logs``), and the ASGI middleware that
ties a request to all three (``requests``). docs/operations.md says how to use them."""
