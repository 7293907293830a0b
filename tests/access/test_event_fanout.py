"""Events reach a webhook subscription only for records its principal may read, and stop when
that principal can no longer sign in."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm_graph.auth.models import ApiKey, User
from crm_graph.core import ids
from crm_graph.core.actor import SYSTEM
from crm_graph.core.clock import utcnow
from crm_graph.core.dispatch import Dispatcher
from crm_graph.core.events import EventDelivery, OutboxEvent
from crm_graph.customers.models import Customer
from crm_graph.customers.service import ServiceConfig, create_customer
from crm_graph.plugins import make_plugin_manager
from crm_graph.settings import Settings
from crm_graph.testing.auth import bearer, make_key, share
from tests.conftest import TEST_SECRET

@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, secret_key=TEST_SECRET, webhook_allow_private=True)


SUBSCRIBE = """mutation { createWebhookSubscription(input: {url: "http://127.0.0.1:9/in", events: ["customer.*"]}) {
  webhookSubscription { id } errors { code } } }"""
CREATE = 'mutation($n: String!) { createCustomer(input: {kind: PERSON, lastName: $n}) { customer { id } errors { code } } }'


async def deliveries(db) -> dict[str, set[str]]:
    """subscription id -> names of the customers whose events it got."""
    async with db.reader() as session:
        rows = await session.execute(
            sa.select(EventDelivery.subscription_id, Customer.last_name)
            .join(OutboxEvent, OutboxEvent.id == EventDelivery.event_pk)
            .join(Customer, sa.cast(Customer.id, sa.String) == OutboxEvent.entity_id)
            .where(EventDelivery.subscription_id.is_not(None))
        )
        out: dict[str, set[str]] = {}
        for sid, name in rows.all():
            out.setdefault(str(sid), set()).add(name)
        return out


async def test_a_subscription_hears_only_of_records_its_principal_may_read(client, db, settings):
    # Integration keys see everything; a custom role gives a team's keys webhooks of their own.
    await client.mutate('mutation { createRole(input: {name: "SALES_HOOKS", permissions: ["customers:*", "webhooks:*"]}) { errors { code } } }')
    north, north_user = await make_key(db, settings, role="SALES_HOOKS", email="north@example.com", team="North")
    south, _ = await make_key(db, settings, role="SALES_HOOKS", email="south@example.com", team="South")
    await share(db, "TEAM", "customers")
    subscription = {}
    for who, key in (("north", north), ("south", south)):
        client.http.headers.update(bearer(key))
        payload = await client.mutate(SUBSCRIBE)
        subscription[who] = payload["webhookSubscription"]["id"]
        await client.mutate(CREATE, {"n": f"{who} customer"})
    dispatcher = Dispatcher(db, settings, make_plugin_manager(settings, entry_points=False))
    await dispatcher.fan_out()
    got = await deliveries(db)
    by_who = {who: got.get(str(ids.decode(sid)[1]), set()) for who, sid in subscription.items()}
    assert by_who == {"north": {"north customer"}, "south": {"south customer"}}

    # Once North's key is revoked, its subscription gets nothing more, even of North's records.
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(ApiKey).where(ApiKey.user_id == north_user).values(revoked_at=utcnow()))
        later = await create_customer(session, actor=SYSTEM, data={"kind": "PERSON", "lastName": "later"}, config=ServiceConfig())
        later.owner_id = north_user
        later.team_id = await session.scalar(sa.select(User.team_id).where(User.id == north_user))
    await dispatcher.fan_out()
    after = await deliveries(db)
    assert all("later" not in names for names in after.values())
