"""The fixtures come from crm-graph's pytest plugin (``crm_client``, ``crm_events``, ``crm_db``,
...; see docs/writing_plugins.md); the suite runs once per database (``--db sqlite`` or ``--db
postgresql``, a throwaway server the run starts itself).

    pytest plugins/crm_service/tests --db sqlite
"""

# The mail programs and the helpdesk, once per run for every module.
from crm_graph.testing.mailservers import dovecot, smtp_sink, smtp_sink_factory  # noqa: F401
from rt_server import rt  # noqa: F401 - Request Tracker, once per run
from crm_graph.testing.backends import (  # noqa: F401
    crm_database_server_url,
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
)
