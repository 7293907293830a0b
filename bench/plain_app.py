"""The plain code the API is measured against: a Starlette app answering the benchmark's requests
with hand-written SQLAlchemy Core queries and the JSON the GraphQL API would send for them.

    CRM_DATABASE_URL=... CRM_SECRET_KEY=... uvicorn --factory bench.plain_app:create

It checks the same bearer key the API would (hashed with the server's secret, one lookup, then
remembered), and answers ``POST /page`` (100 customers with emails, tags and 5 opportunities
each), ``POST /lookup`` ({"id": n}: one customer's display name) and ``POST /create`` (one
customer row inserted). It is no API: no validation, access rules, events or errors beyond 401.
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_graph.auth.models import ApiKey
from crm_graph.auth.tokens import token_hash
from crm_graph.core.clock import utcnow
from crm_graph.core.ids import encode
from crm_graph.customers.models import Customer, CustomerEmail, CustomerTag
from crm_graph.db.session import Database
from crm_graph.sales.models import Opportunity, PipelineStage
from crm_graph.settings import Settings


def page_statement() -> Any:
    """The page's first statement: 100 customers in creation order."""
    return (sa.select(Customer.id, Customer.display_name).where(Customer.deleted_at.is_(None))
            .order_by(Customer.created_at, Customer.id).limit(100))


async def page_json(conn: Any) -> dict[str, Any]:
    rows = (await conn.execute(page_statement())).all()
    ids = [r.id for r in rows]
    emails: dict[int, list[dict[str, str]]] = defaultdict(list)
    for cid, address in await conn.execute(sa.select(CustomerEmail.customer_id, CustomerEmail.address)
                                           .where(CustomerEmail.customer_id.in_(ids)).order_by(CustomerEmail.customer_id, CustomerEmail.position)):
        emails[cid].append({"address": address})
    tags: dict[int, list[str]] = defaultdict(list)
    for cid, tag in await conn.execute(sa.select(CustomerTag.customer_id, CustomerTag.tag)
                                       .where(CustomerTag.customer_id.in_(ids)).order_by(CustomerTag.customer_id, CustomerTag.tag)):
        tags[cid].append(tag)
    ranked = (sa.select(Opportunity.customer_id, Opportunity.amount, Opportunity.currency, PipelineStage.name,
                        sa.func.row_number().over(partition_by=Opportunity.customer_id,
                                                  order_by=(Opportunity.created_at, Opportunity.id)).label("n"))
              .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
              .where(Opportunity.customer_id.in_(ids), Opportunity.deleted_at.is_(None)).subquery())
    opportunities: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for cid, amount, currency, stage, _ in await conn.execute(sa.select(ranked).where(ranked.c.n <= 5).order_by(ranked.c.customer_id, ranked.c.n)):
        opportunities[cid].append({"node": {"stage": {"name": stage}, "amount": {"amount": str(amount), "currency": currency}}})
    return {"data": {"customers": {"edges": [
        {"node": {"id": encode("Customer", r.id), "displayName": r.display_name, "emails": emails[r.id], "tags": tags[r.id],
                  "opportunities": {"edges": opportunities[r.id]}}} for r in rows]}}}


def create() -> Starlette:
    settings = Settings.from_env()
    db = Database.from_settings(settings)
    key = settings.hash_key()
    known: set[str] = set()

    async def signed_in(request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        if token in known:
            return True
        async with db.engine.connect() as conn:
            found = await conn.scalar(sa.select(ApiKey.id).where(ApiKey.token_hash == token_hash(token, key), ApiKey.revoked_at.is_(None)))
        if found is not None:
            known.add(token)
        return found is not None

    def answer(body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json")

    async def page(request: Request) -> Response:
        if not await signed_in(request):
            return answer({"error": "unauthenticated"}, 401)
        async with db.engine.connect() as conn:
            return answer(await page_json(conn))

    async def lookup(request: Request) -> Response:
        if not await signed_in(request):
            return answer({"error": "unauthenticated"}, 401)
        pk = int((await request.json())["id"])
        async with db.engine.connect() as conn:
            name = await conn.scalar(sa.select(Customer.display_name).where(Customer.id == pk, Customer.deleted_at.is_(None)))
        return answer({"data": {"customer": {"displayName": name} if name is not None else None}})

    async def create_customer(request: Request) -> Response:
        if not await signed_in(request):
            return answer({"error": "unauthenticated"}, 401)
        body = await request.json()
        now = utcnow()
        async with db.engine.begin() as conn:
            result = await conn.execute(Customer.__table__.insert().values(
                kind="PERSON", first_name=body["firstName"], last_name=body["lastName"],
                display_name=f"{body['firstName']} {body['lastName']}", lifecycle_stage="LEAD", consent_status="UNKNOWN",
                version=1, created_at=now, updated_at=now))
            pk = result.inserted_primary_key[0]
        return answer({"data": {"createCustomer": {"customer": {"id": encode("Customer", pk)}, "errors": []}}})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await db.dispose()

    return Starlette(routes=[Route("/page", page, methods=["POST"]), Route("/lookup", lookup, methods=["POST"]),
                             Route("/create", create_customer, methods=["POST"])], lifespan=lifespan)
