"""crm-graph-audit: a change history of every domain event of a crm-graph server.

The example of a plugin with tables of its own. The security audit log is the core's
(``crm_graph.audit``, ``auditLog``).

Installed next to crm-graph it is found through its entry point (group ``crm_graph``, name
``crm_audit``); ``CRM_PLUGINS_BLOCK=crm_audit`` switches it off.
"""

__version__ = "0.1.0"
