"""Roles: named sets of ``object:action`` permissions.

Objects are the API's kinds of records; actions are ``read``, ``create``, ``update``,
``delete``, ``export`` and ``assign`` (changing a record's owner). An API key's scopes narrow its
role's permissions and never widen them: the key gets the intersection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ACTIONS: tuple[str, ...] = ("read", "create", "update", "delete", "export", "assign")

OBJECTS: tuple[str, ...] = (
    "customers",
    "activities",
    "custom_fields",
    "products",
    "pipelines",
    "opportunities",
    "quotes",
    "orders",
    "tickets",
    "sla_policies",
    "segments",
    "insights",  # customer-value runs and each customer's figures in them
    "campaigns",  # email marketing: campaigns, lists, suppressions, provider exports and imports
    "automation",  # automation flows, their versions, enrolments and step log
    "loyalty",  # points, tiers, earning rules, rewards and coupons (create: earn and redeem; update: adjust and the program)
    "webhooks",
    "users",
    "teams",
    "roles",
    "api_keys",
    "audit_log",
    "settings",
)

RECORDS = ("customers", "activities", "opportunities", "quotes", "orders", "tickets")
REFERENCE = ("custom_fields", "products", "pipelines", "sla_policies", "segments")
# Customer insights (lifetime value): every role that reads customers reads them; those who run
# the value analyses (MANAGER, MARKETING) also refresh the model (``insights:update``).
INSIGHTS_READ = ("insights",)


def grant(objects: Iterable[str], actions: Iterable[str]) -> frozenset[str]:
    return frozenset(f"{o}:{a}" for o in objects for a in actions)


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    permissions: frozenset[str]
    view_all: bool = False  # sees every record, whatever the sharing defaults
    manages_team: bool = False  # sees and changes the PRIVATE records of its team
    builtin: bool = True


READ = ("read",)
WORK = ("read", "create", "update")
FULL = ("read", "create", "update", "delete", "export", "assign")

BUILTIN_ROLES: dict[str, Role] = {
    r.name: r
    for r in (
        Role("ADMIN", "Everything, including users, keys, roles, sharing and the audit log.", frozenset({"*"}), view_all=True),
        Role(
            "MANAGER",
            "Runs a team: every CRM record of the team, reassignment, exports, products, pipelines and service levels.",
            grant(RECORDS, FULL) | grant(REFERENCE, FULL) | grant(("users", "teams", "webhooks", "campaigns"), READ)
            | grant(INSIGHTS_READ, ("read", "update")) | grant(("automation",), ("read", "update")) | grant(("loyalty",), FULL),
            manages_team=True,
        ),
        Role(
            "SALES",
            "Works customers and deals: customers, activities, opportunities, quotes and orders.",
            grant(("customers", "activities", "opportunities", "quotes", "orders"), WORK)
            | grant(("opportunities", "activities"), ("delete",)) | grant(("loyalty",), ("read", "create"))
            | grant(("tickets", *REFERENCE, *INSIGHTS_READ, "users", "teams"), READ),
        ),
        Role(
            "SUPPORT",
            "Works tickets and keeps customer details up to date.",
            grant(("tickets", "activities"), WORK)
            | grant(("customers",), ("read", "update")) | grant(("loyalty",), ("read", "create"))
            | grant(("orders", "opportunities", *REFERENCE, *INSIGHTS_READ, "users", "teams"), READ),
        ),
        Role(
            "MARKETING",
            "Builds segments and campaigns; reads and exports customers and what they bought.",
            grant(("segments", "campaigns", "automation", "loyalty"), FULL)
            | grant(("customers",), ("read", "update", "export"))
            | grant(("activities",), WORK)
            | grant(("orders", "opportunities", "tickets", "custom_fields", "products", "pipelines", "sla_policies", "users", "teams"), READ)
            | grant(INSIGHTS_READ, ("read", "update")),
        ),
        Role(
            "READ_ONLY",
            "Reads every CRM record the sharing rules show; changes nothing.",
            grant((*RECORDS, *REFERENCE, *INSIGHTS_READ, "automation", "loyalty", "users", "teams"), READ),
        ),
        Role(
            "INTEGRATION",
            "For systems that sync (shops, accounting, helpdesks): every record, no access administration.",
            grant((*RECORDS, "products"), ("read", "create", "update", "delete"))
            | grant(("pipelines", "sla_policies", "segments", "custom_fields", *INSIGHTS_READ, "users", "teams"), READ)
            | grant(("webhooks",), ("read", "create", "update", "delete")) | grant(("loyalty",), WORK),
            view_all=True,
        ),
    )
}


# ``write`` in a scope or a custom role stands for these (writing implies reading what you wrote).
ALIASES: dict[str, tuple[str, ...]] = {"write": ("read", "create", "update", "delete")}


def valid_permission(value: str) -> bool:
    """``object:action``, ``object:write``, ``object:*``, ``*:action`` or ``*``."""
    if value == "*":
        return True
    obj, sep, action = value.partition(":")
    known = action in ACTIONS or action in ALIASES or action == "*"
    return bool(sep) and (obj in OBJECTS or obj == "*") and known and value != "*:*"


def expand(permissions: Iterable[str]) -> frozenset[str]:
    """Every concrete ``object:action`` a list of permissions (with wildcards) grants."""
    out: set[str] = set()
    for p in permissions:
        obj, _, action = p.partition(":") if p != "*" else ("*", ":", "*")
        for o in OBJECTS if obj == "*" else (obj,):
            for a in ACTIONS if action == "*" else ALIASES.get(action, (action,)):
                out.add(f"{o}:{a}")
    return frozenset(out)


def narrow(role_permissions: Iterable[str], scopes: Iterable[str] | None) -> frozenset[str]:
    """The permissions of a key: its role's, limited to its scopes."""
    granted = frozenset(role_permissions)
    if scopes is None:
        return granted
    return expand(granted) & expand(scopes)
