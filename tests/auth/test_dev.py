"""`crm-graph serve` in dev: a dev administrator once, a key printed at every start, GraphiQL
signed in with it; production does none of it."""

from __future__ import annotations

from dataclasses import replace

import httpx
import sqlalchemy as sa

from crm_graph.app import create_app
from crm_graph.auth import dev
from crm_graph.auth.models import ApiKey, User
from crm_graph.core.clock import utcnow
from crm_graph.testing.auth import bearer

FIRST = "{ customers(first: 5) { totalCount edges { node { id displayName primaryEmail } } } }"


async def test_dev_admin_key_is_made_once_kept_and_replaced_when_revoked(settings, db, tmp_path):
    settings = replace(settings, data_dir=tmp_path)  # the key file lives in the data directory
    key = await dev.dev_admin_key(settings)
    assert key.startswith("crm_key_") and (tmp_path / "dev_admin_key").read_text().strip() == key
    assert oct((tmp_path / "dev_admin_key").stat().st_mode & 0o777) == "0o600"
    assert await dev.dev_admin_key(settings) == key  # the next start prints the same key
    app = create_app(settings, db=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as http:
        signed_in = (await http.post("/graphql", json={"query": FIRST}, headers=bearer(key))).json()
        anonymous = (await http.post("/graphql", json={"query": FIRST})).json()
    assert signed_in["data"]["customers"]["totalCount"] == 0
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    async with db.writer() as session, session.begin():
        assert await session.scalar(sa.select(sa.func.count()).select_from(User).where(User.email == dev.DEV_ADMIN)) == 1
        await session.execute(sa.update(ApiKey).values(revoked_at=utcnow()))
    replaced = await dev.dev_admin_key(settings)
    assert replaced != key and replaced.startswith("crm_key_")


async def test_graphiql_opens_with_the_key_in_dev_only(settings, db):
    app = create_app(settings, db=db)
    app.state.graphql.ide_headers = {"Authorization": "Bearer crm_key_example"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as http:
        page = await http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "Bearer crm_key_example" in page.text


async def test_demo_records_get_owners_in_two_teams(settings, db, tmp_path):
    from crm_graph.core.actor import SYSTEM
    from crm_graph.customers.models import Customer
    from crm_graph.customers.service import ServiceConfig, create_customer

    settings = replace(settings, data_dir=tmp_path)  # the key file lives in the data directory
    async with db.writer() as session, session.begin():  # demo data is made by the system: no owner
        for i in range(6):
            await create_customer(session, actor=SYSTEM, data={"kind": "PERSON", "lastName": f"D{i}"}, config=ServiceConfig())
    await dev.dev_admin_key(settings, demo_owners=True)
    async with db.reader() as session:
        owners = dict((await session.execute(
            sa.select(User.email, sa.func.count()).join(Customer, Customer.owner_id == User.id).group_by(User.email)
        )).all())
    assert set(owners) == {"north.rep@example.com", "south.rep@example.com"} and sum(owners.values()) >= 6
