"""GraphQL API of the support domain: tickets, their thread, SLA policies, ratings, statistics."""

from crm_graph.domains import SchemaPart
from crm_graph.support.schema.types import NODES
from crm_graph.support.schema.inputs import TicketFilter, TicketOrder, decode_filter
from crm_graph.support.schema.live import SupportSubscription
from crm_graph.support.schema.operations import SupportMutation, SupportQuery
from crm_graph.support.schema.types import Ticket, TicketConnection

SCHEMA = SchemaPart(query=SupportQuery, mutation=SupportMutation, subscription=SupportSubscription, nodes=NODES)

__all__ = ["SCHEMA", "Ticket", "TicketConnection", "TicketFilter", "TicketOrder", "decode_filter"]
