"""Access: users, teams, roles, API keys, session tokens and sharing defaults.

The record-level rules themselves live in ``crm_graph/core/access.py``; this domain decides who
the actor of a request is and what its role allows.
"""
