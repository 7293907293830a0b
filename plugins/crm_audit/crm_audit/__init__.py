"""crm-graph-audit: an audit trail of every domain event of a crm-graph server.

Installed next to crm-graph it is found through its entry point (group ``crm_graph``, name
``crm_audit``); ``CRM_PLUGINS_BLOCK=crm_audit`` switches it off.
"""

__version__ = "0.1.0"
