"""The fixtures come from crm-graph's pytest plugin (``crm_client``, ``crm_events``, ``crm_db``,
...; see docs/writing_plugins.md). What is left here is this repository's convention: the suite
runs once per database, and ``--db postgresql`` means a throwaway PostgreSQL server the run
starts itself.

    pytest plugins/crm_marketing/tests --db sqlite        # or --db postgresql
"""

# The mail programs, once per run for every module (a fixture imported by a module would be
# that module's own: one exim per module).
from crm_graph.testing.mailservers import dovecot, exim, smtp_sink, smtp_sink_factory  # noqa: F401
from crm_graph.testing.backends import (  # noqa: F401
    crm_database_server_url,
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
)
