from crm_graph.testing.mailservers import smtp_sink  # noqa: F401 - a real SMTP server on loopback per test
