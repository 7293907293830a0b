"""GraphQL API of access: sign-in, the current actor, users, teams, roles, API keys, sharing.

Thin, like every domain's API: the rules are in ``crm_graph/auth/service``. Other domains that
show a record's owner use the ``User`` and ``Team`` types from here.
"""

from __future__ import annotations

from crm_graph.auth.schema.mutations import AccessMutation
from crm_graph.auth.schema.queries import AccessQuery
from crm_graph.auth.schema.types import ApiKey, Role, SharingDefault, Team, User, Viewer, load_team, load_user
from crm_graph.domains import SchemaPart
from crm_graph.auth.schema.types import NODES

SCHEMA = SchemaPart(query=AccessQuery, mutation=AccessMutation, nodes=NODES)

__all__ = ["SCHEMA", "ApiKey", "Role", "SharingDefault", "Team", "User", "Viewer", "load_team", "load_user"]
