"""Support rules: tickets, their thread and status machine, SLA policies and breaches, ratings and
statistics. No GraphQL here; every function takes the session (and, for writes, the actor)."""

from crm_graph.support.service.breaches import check_sla_breaches
from crm_graph.support.service.policies import (
    POLICY_ORDER,
    create_sla_policy,
    matching_policy,
    policies_by_ids,
    policy_select,
    update_sla_policy,
)
from crm_graph.support.service.stats import SupportStats, support_stats
from crm_graph.support.service.tickets import (
    THREAD_ORDER,
    TRANSITIONS,
    assign_ticket,
    change_ticket_status,
    comment_select,
    comments_by_ids,
    create_ticket,
    external_refs_for,
    get_ticket,
    rate_ticket,
    ratings_for,
    reply_to_ticket,
    satisfaction_index,
    tags_for,
    ticket_select,
    tickets_by_ids,
    update_ticket,
)

__all__ = [
    "POLICY_ORDER",
    "SupportStats",
    "THREAD_ORDER",
    "TRANSITIONS",
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
    "ticket_select",
    "tickets_by_ids",
    "update_sla_policy",
    "update_ticket",
]
