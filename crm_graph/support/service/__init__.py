"""Support rules: tickets, their thread and status machine, SLA policies and breaches, ratings and
statistics. No GraphQL here; every function takes the session (and, for writes, the actor)."""

from crm_graph.support.service.breaches import check_sla_breaches
from crm_graph.support.service.lifecycle import (
    TRANSITIONS,
    change_ticket_status,
    rate_ticket,
    reply_to_ticket,
    satisfaction_index,
)
from crm_graph.support.service.policies import (
    POLICY_ORDER,
    create_sla_policy,
    matching_policy,
    policies_by_ids,
    policy_select,
    update_sla_policy,
)
from crm_graph.support.service.reading import (
    THREAD_ORDER,
    comment_select,
    comments_by_ids,
    external_refs_for,
    get_ticket,
    ratings_for,
    tags_for,
    ticket_payload,
    ticket_select,
    tickets_by_ids,
)
from crm_graph.support.service.stats import SupportStats, support_stats
from crm_graph.support.service.tickets import (
    assign_ticket,
    create_ticket,
    update_ticket,
)

__all__ = [
    "POLICY_ORDER",
    "THREAD_ORDER",
    "TRANSITIONS",
    "SupportStats",
    "assign_ticket",
    "change_ticket_status",
    "check_sla_breaches",
    "comment_select",
    "comments_by_ids",
    "create_sla_policy",
    "create_ticket",
    "external_refs_for",
    "get_ticket",
    "matching_policy",
    "policies_by_ids",
    "policy_select",
    "rate_ticket",
    "ratings_for",
    "reply_to_ticket",
    "satisfaction_index",
    "support_stats",
    "tags_for",
    "ticket_payload",
    "ticket_select",
    "tickets_by_ids",
    "update_sla_policy",
    "update_ticket",
]
