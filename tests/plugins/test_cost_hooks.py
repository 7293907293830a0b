"""crm_messages_sent: the messages a plugin sent count in customer profitability's marketing cost."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from crm_graph import hookimpl
from crm_graph.core.clock import utcnow
from crm_graph.core.costs import SentMessages, sent_message_sources
from crm_graph.customers.models import Customer
from crm_graph.plugins import PluginError, make_plugin_manager

QUERY = "{ customers(first: 5) { edges { node { profitability { messagesSent marketingCost { amount } } } } } }"
CUSTOMER = "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } errors { code } } }"


class Welcome:
    """One welcome message per customer, sent when the customer was created."""

    @hookimpl
    def crm_messages_sent(self):  # noqa: ANN201
        return SentMessages("welcome", lambda: sa.select(Customer.id.label("customer_id"), Customer.created_at.label("sent_at")))


async def test_hook_crm_messages_sent_a_partners_messages_are_counted_with_the_campaigns(server_factory, db):
    from crm_marketing.models import Recipient, RecipientStatus

    server = await server_factory(Welcome(), entry_points=True)
    created = await server.client.mutate(CUSTOMER, {"i": {"kind": "PERSON", "lastName": "Ada"}})
    async with db.writer() as session, session.begin():
        cid = await session.scalar(sa.select(sa.func.max(Customer.id)))
        session.add_all([Recipient(campaign_id=c, customer_id=cid, email="ada@example.com", status=RecipientStatus.SENT,
                                   sent_at=utcnow(), attempts=1) for c in (1, 2)])
    assert created["customer"]["id"]
    (edge,) = (await server.client.execute(QUERY))["customers"]["edges"]
    # two campaign mails (the marketing plugin's source) and the partner's welcome message
    assert edge["node"]["profitability"]["messagesSent"] == 3
    assert Decimal(edge["node"]["profitability"]["marketingCost"]["amount"]) == Decimal("0.03")


def test_hook_crm_messages_sent_anything_else_is_an_error_naming_the_plugin(settings):
    class Wrong:
        @hookimpl
        def crm_messages_sent(self):  # noqa: ANN201
            return "recipients"

    pm = make_plugin_manager(settings, plugins=[Welcome(), Wrong()], entry_points=False)
    with pytest.raises(PluginError, match="SentMessages"):
        sent_message_sources(pm)
    assert [s.name for s in sent_message_sources(make_plugin_manager(settings, plugins=[Welcome()], entry_points=False))] == ["welcome"]
