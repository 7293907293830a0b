"""The permission matrix: every query and mutation of the schema, walked from the schema itself,
for every built-in role, anonymous callers, and two owners.

The world: the demo data, all of it owned by representative A (SALES, team North); B (SALES,
team South) owns one customer; one user of every other built-in role sits in team South. Every
owned object type is PRIVATE. Then each of them calls every root field with generated arguments
(IDs of A's records wherever an ID is asked for) and this must hold:

- a field answers FORBIDDEN exactly when the caller's role lacks the field's declared permission,
  and UNAUTHENTICATED for every non-public field when nobody is signed in;
- no answer shows any of A's records (their global IDs or email addresses) to a caller that is
  neither in A's team nor one who sees everything — not through lists, ``node``/``nodes``, nested
  connections, counts or aggregates;
- none of A's records or the rows that belong to them changes;
- no input, however odd, gets an internal error.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from crm_graph.app import create_app
from crm_graph.auth.models import Team, User
from crm_graph.auth.roles import BUILTIN_ROLES
from crm_graph.core import ids as global_ids
from crm_graph.core.access import guards
from crm_graph.core.dispatch import Dispatcher
from crm_graph.graphql.access import SIGNED_IN, rule_of
from crm_graph.plugins import make_plugin_manager
from crm_graph.seed import seed_demo
from crm_graph.testing.auth import bearer, make_key, share
from tests.access.matrix import codes, document, mentions

OWNED = ("customers", "opportunities", "quotes", "orders", "tickets")
# Restricted roles first: the ones that see everything run last, when nothing is left to check.
ROLE_ORDER = ("READ_ONLY", "SUPPORT", "MARKETING", "SALES", "MANAGER", "INTEGRATION", "ADMIN")


async def build_world(settings: Any, db: Any) -> dict[str, Any]:
    await seed_demo(settings, count=12)
    a_key, a_id = await make_key(db, settings, role="SALES", email="rep.a@example.com", team="North")
    keys = {"A": a_key}
    for role in ROLE_ORDER:
        keys[role], _ = await make_key(db, settings, role=role, email=f"{role.lower()}.south@example.com", team="South")
    manager_north, _ = await make_key(db, settings, role="MANAGER", email="manager.north@example.com", team="North")
    # Deliver the demo data's events, so plugins that keep copies of records (the change
    # history of crm_audit) hold some of A's too.
    await Dispatcher(db, settings, make_plugin_manager(settings)).drain()
    async with db.writer() as session, session.begin():
        north = await session.scalar(sa.select(Team.id).where(Team.name == "North"))
        for guard in guards().values():
            if guard.owned:
                await session.execute(sa.update(guard.model).values(owner_id=a_id, team_id=north))
    await share(db, "PRIVATE", *OWNED)
    # What belongs to A: every owned record and every row that belongs to one.
    secrets: set[str] = set()
    first_ids: dict[str, str] = {}
    async with db.reader() as session:
        for model, guard in guards().items():
            if not (guard.owned or guard.parent is not None) or not hasattr(model, "id"):
                continue
            for pk in (await session.execute(sa.select(model.id).order_by(model.id))).scalars():
                gid = global_ids.encode(model.__name__, pk)
                secrets.add(gid)
                first_ids.setdefault(model.__name__, gid)
        from crm_graph.customers.models import CustomerEmail

        secrets |= set((await session.execute(sa.select(CustomerEmail.address))).scalars())
        for model in (m for m in _other_models()):
            pk = await session.scalar(sa.select(model.id).order_by(model.id).limit(1))
            if pk is not None:
                first_ids.setdefault(model.__name__, global_ids.encode(model.__name__, pk))
    return {"keys": keys, "secrets": secrets, "ids": first_ids, "a_id": a_id, "manager_north": manager_north}


def _other_models() -> list[Any]:
    from crm_graph.auth.models import ApiKey
    from crm_graph.sales.models import Pipeline, PipelineStage, Product
    from crm_graph.segments.models import Segment
    from crm_graph.support.models import SlaPolicy

    return [Product, Pipeline, PipelineStage, Segment, SlaPolicy, User, Team, ApiKey]


async def fingerprint(db: Any, a_id: int) -> list[Any]:
    """A's records as stored (version, deletion, owner) and how many rows belong to each."""
    out: list[Any] = []
    async with db.reader() as session:
        for model, guard in sorted(guards().items(), key=lambda item: item[0].__name__):
            if guard.owned:
                rows = await session.execute(
                    sa.select(model.id, model.version, model.owner_id, model.team_id, *([model.deleted_at] if hasattr(model, "deleted_at") else []))
                    .where(model.owner_id == a_id).order_by(model.id)
                )
                out.append((model.__name__, [tuple(r) for r in rows]))
            elif guard.parent is not None:
                key = getattr(model, guard.parent_key)
                rows = await session.execute(sa.select(key, sa.func.count()).group_by(key).order_by(key))
                out.append((model.__name__, [tuple(r) for r in rows]))
    return out


@pytest.fixture
async def world(settings, db):
    return await build_world(settings, db)


@pytest.fixture
async def app(settings, db):
    return create_app(settings, db=db, dispatcher=False, jobs=False)


async def call(app: Any, key: str | None, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app)
    headers = bearer(key) if key else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost", headers=headers) as http:
        response = await http.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()


def root_fields(app: Any) -> list[tuple[str, str, Any]]:
    """(query|mutation, GraphQL name, declared rule) of every root field of the served schema."""
    strawberry_schema = app.state.schema
    out = []
    for root, type_name in (("query", "Query"), ("mutation", "Mutation")):
        definition = strawberry_schema.get_type_by_name(type_name)
        for field in definition.fields:
            out.append((root, strawberry_schema.config.name_converter.get_graphql_name(field), rule_of(field)))
    return out


async def run_field(app: Any, key: str | None, root: str, name: str, ids: dict[str, str]) -> dict[str, Any]:
    schema = app.state.schema._schema
    for depth in ((3, 2, 1) if root == "query" else (1, 0)):
        query, variables = document(schema, root, name, ids, depth)
        body = await call(app, key, query, variables)
        if not any("token" in (e.get("message") or "").lower() or "depth" in (e.get("message") or "").lower() for e in body.get("errors") or []):
            return body
    return body


def expected_forbidden(role: str | None, rule: Any) -> bool:
    if rule.obj is None:
        return False
    if role is None:
        return True
    if rule.obj == SIGNED_IN:
        return False
    perms = BUILTIN_ROLES[role].permissions
    if rule.admin_only:
        return "*" not in perms
    return not ("*" in perms or f"{rule.obj}:{rule.action}" in perms)


def field_codes(body: dict[str, Any], name: str) -> set[str]:
    return {(e.get("extensions") or {}).get("code", "") for e in body.get("errors") or [] if (e.get("path") or [None])[0] == name}


async def test_every_root_field_declares_a_permission(app):
    fields = root_fields(app)
    assert len(fields) > 80
    # A field that declared nothing is made administrators-only at assembly: none relies on it.
    defaulted = [name for _, name, rule in fields if rule.admin_only]
    assert defaulted == [], defaulted


async def test_permission_matrix(app, world, db):
    # One world (the demo data takes a while to make) for the whole walk: first what A, A's
    # manager and B see, then every field for every caller.
    await own_and_team_records(app, world)
    await hidden_records_in_nodes_aggregates_and_segments(app, world)
    fields = root_fields(app)
    ids, secrets = world["ids"], world["secrets"]
    before = await fingerprint(db, world["a_id"])
    calls = 0
    failures: list[str] = []
    for role in (None, *ROLE_ORDER):
        key = world["keys"][role] if role else None
        sees_everything = role is not None and BUILTIN_ROLES[role].view_all
        for root, name, rule in fields:
            if name == "logout":
                continue  # would end the caller's own session; tested in tests/auth
            body = await run_field(app, key, root, name, ids)
            calls += 1
            got = field_codes(body, name)
            if any(not e.get("path") for e in body.get("errors") or []):
                failures.append(f"{role} {name}: the generated document was refused: {body['errors']}")
            if "INTERNAL_SERVER_ERROR" in codes(body):
                failures.append(f"{role} {name}: internal error {body['errors']}")
            want_forbidden = expected_forbidden(role, rule)
            denied = "UNAUTHENTICATED" if role is None else "FORBIDDEN"
            if want_forbidden != (denied in got):
                failures.append(f"{role} {name} ({rule}): expected {denied if want_forbidden else 'allowed'}, got {sorted(got) or 'allowed'}")
            if not sees_everything:
                leaked = mentions(body.get("data"), secrets) | {s for s in secrets if "@" in s and s in str(body.get("errors"))}
                if leaked:
                    failures.append(f"{role} {name}: shows A's records {sorted(leaked)[:3]}")
        if not sees_everything:
            after = await fingerprint(db, world["a_id"])
            if after != before:
                changed = [b[0] for b, a in zip(before, after) if a != b]
                failures.append(f"{role}: changed A's records in {changed}")
    assert failures == [], "\n".join(failures)
    # operations x (7 roles + anonymous): the size of the matrix, for the record
    assert calls >= len(fields) * 8 - 8


async def own_and_team_records(app: Any, world: dict[str, Any]) -> None:
    """A sees all of them, a manager of A's team too, B only B's own."""
    count = "{ customers { totalCount } opportunities { totalCount } orders { totalCount } tickets { totalCount } }"
    a = (await call(app, world["keys"]["A"], count, {}))["data"]
    m = (await call(app, world["manager_north"], count, {}))["data"]
    b = (await call(app, world["keys"]["SALES"], count, {}))["data"]
    assert a["customers"]["totalCount"] >= 12 and a["opportunities"]["totalCount"] > 0 and a["tickets"]["totalCount"] > 0
    assert m == a
    assert b == {"customers": {"totalCount": 0}, "opportunities": {"totalCount": 0}, "orders": {"totalCount": 0}, "tickets": {"totalCount": 0}}


async def hidden_records_in_nodes_aggregates_and_segments(app: Any, world: dict[str, Any]) -> None:
    b = world["keys"]["SALES"]
    ids = [world["ids"][t] for t in ("Customer", "Opportunity", "Quote", "Order", "Ticket")]
    body = await call(app, b, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})
    assert body["data"]["nodes"] == [None] * 5
    a_view = await call(app, world["keys"]["A"], "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})
    assert [n["id"] for n in a_view["data"]["nodes"]] == ids
    aggregates = """{
      pipelineSummary { openCount }
      supportStats(from: "2020-01-01T00:00:00Z", to: "2029-01-01T00:00:00Z") { opened }
      rfmAnalysis(windowDays: 3650) { run { customers revenue { amount } } groups { customers } }
      segments { edges { node { size } } }
      previewSegment(filter: {}) { size }
    }"""
    seen_by_b = (await call(app, b, aggregates, {}))
    assert "errors" not in seen_by_b, seen_by_b
    data = seen_by_b["data"]
    assert data["pipelineSummary"]["openCount"] == 0
    assert data["supportStats"]["opened"] == 0
    if data["rfmAnalysis"] is not None:
        assert data["rfmAnalysis"]["run"]["customers"] == 0
        assert all(g["customers"] == 0 for g in data["rfmAnalysis"]["groups"])
    assert all(e["node"]["size"] == 0 for e in data["segments"]["edges"])
    assert data["previewSegment"]["size"] == 0
    seen_by_a = (await call(app, world["keys"]["A"], aggregates, {}))["data"]
    assert seen_by_a["pipelineSummary"]["openCount"] > 0
    assert seen_by_a["previewSegment"]["size"] >= 12
