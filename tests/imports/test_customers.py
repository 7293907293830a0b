"""Importing customers from XLSX: counts, organization links, error rows, idempotent re-import, dry run."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from crm_graph.customers.models import Customer, CustomerEmail, CustomerKind, CustomerTag
from tests.imports.helpers import run, start, xlsx

N = 10_000
BAD_EMAIL, BAD_DATE, NO_NAME = 17, 4242, 9999  # data row indexes made invalid on purpose

MAPPING = {
    "columns": [
        {"source": "Customer ID", "target": "externalId"},
        {"source": "Name", "target": "fullName"},
        {"source": "E-Mail", "target": "email"},
        {"source": "Phone", "target": "phone"},
        {"source": "Country", "target": "country"},
        {"source": "City", "target": "city"},
        {"source": "Company", "target": "organization"},
        {"source": "Birthday", "target": "birthday"},
        {"source": "Tags", "target": "tags"},
        {"target": "source", "constant": "IMPORT"},
    ],
    "options": {"phoneRegion": "DE"},
}


def _rows() -> list[list[object]]:
    rows: list[list[object]] = [["Customer ID", "Name", "E-Mail", "Phone", "Country", "City", "Company", "Birthday", "Tags"]]
    for i in range(N):
        birthday: object = datetime(1980 + i % 30, 1 + i % 12, 1 + i % 28) if i % 2 else 30000 + i % 5000  # Excel serials too
        rows.append([
            f"C{i:05d}", f"Person{i} Family{i % 97}", f"person{i}@example.com", f"030 {1000000 + i}",
            "DE" if i % 3 else "", "Berlin", f"Company {i % 50}", birthday, "vip, newsletter" if i % 5 == 0 else "",
        ])
    rows[1 + BAD_EMAIL][2] = "not an email"
    rows[1 + BAD_DATE][7] = "31.02.1990"
    rows[1 + NO_NAME][1] = ""
    return rows


async def test_xlsx_upsert_counts_links_errors_and_reimport_changes_nothing(client, db) -> None:
    content = xlsx(_rows())
    job = await run(client, entity="CUSTOMER", content=content, fileName="customers.xlsx", mapping=MAPPING, mode="UPSERT", key="EXTERNAL_REF")
    assert job["status"] == "SUCCEEDED" and job["progress"] == 1.0
    assert (job["rowsTotal"], job["rowsDone"], job["rowsFailed"], job["rowsCreated"]) == (N, N, 3, N - 3)
    errors = {(e["row"], e["field"], e["code"]) for e in job["errors"]}
    assert errors == {(BAD_EMAIL + 2, "email", "INVALID_EMAIL"), (BAD_DATE + 2, "birthday", "INVALID_VALUE"),
                      (NO_NAME + 2, "lastName", "REQUIRED")}
    assert next(e for e in job["errors"] if e["field"] == "email")["column"] == "E-Mail"
    assert job["errorReportUrl"]
    report = await client.http.get(job["errorReportUrl"].replace("http://testserver", ""))
    assert report.status_code == 200
    lines = report.content.decode("utf-8-sig").splitlines()
    assert len(lines) == 4 and lines[0].startswith("row,errors,Customer ID,Name")
    assert "INVALID_EMAIL" in lines[1] and "not an email" in lines[1]

    async with db.reader() as session:
        persons = await session.scalar(sa.select(sa.func.count()).where(Customer.kind == CustomerKind.PERSON))
        orgs = {o.organization_name: o.id for o in await session.scalars(sa.select(Customer).where(Customer.kind == CustomerKind.ORGANIZATION))}
        p = await session.scalar(sa.select(Customer).where(Customer.external_id == "C00010"))
        emails = await session.scalar(sa.select(sa.func.count()).select_from(CustomerEmail))
        tags = await session.scalar(sa.select(sa.func.count()).select_from(CustomerTag))
        before = (await session.execute(sa.select(sa.func.max(Customer.updated_at), sa.func.sum(Customer.version)))).one()
    assert persons == N - 3 and len(orgs) == 50 and emails == N - 3
    assert tags == 2 * len([i for i in range(N) if i % 5 == 0 and i not in (BAD_EMAIL, BAD_DATE, NO_NAME)])
    assert (p.first_name, p.last_name, p.display_name) == ("Person10", "Family10", "Person10 Family10")
    assert p.organization_id == orgs["Company 10"] and p.city == "Berlin" and p.external_system == "import"
    assert p.birthday == (datetime(1899, 12, 30).date().fromordinal(datetime(1899, 12, 30).toordinal() + 30010))

    again = await run(client, entity="CUSTOMER", content=content, fileName="customers.xlsx", mapping=MAPPING, mode="UPSERT", key="EXTERNAL_REF")
    assert (again["rowsCreated"], again["rowsUpdated"], again["rowsUnchanged"], again["rowsFailed"]) == (0, 0, N - 3, 3)
    async with db.reader() as session:
        after = (await session.execute(sa.select(sa.func.max(Customer.updated_at), sa.func.sum(Customer.version)))).one()
        count = await session.scalar(sa.select(sa.func.count()).select_from(Customer))
    assert after == before and count == N - 3 + 50


CSV_HEAD = "id,name,email,birthday\n"


async def test_dry_run_reports_errors_and_writes_nothing(client, db) -> None:
    content = (CSV_HEAD + "1,Ann Lee,ann@example.com,12/04/1990\n2,,bob@example.com,\n3,Cy Young,cy@@x,1990-13-01\n").encode()
    mapping = {"columns": [{"source": "id", "target": "externalId"}, {"source": "name", "target": "fullName"},
                           {"source": "email", "target": "email"}, {"source": "birthday", "target": "birthday"}]}
    job = await run(client, entity="CUSTOMER", content=content, mapping=mapping, dryRun=True, mode="CREATE")
    assert job["dryRun"] and (job["rowsCreated"], job["rowsFailed"]) == (1, 2)
    assert {(e["row"], e["field"], e["code"]) for e in job["errors"]} == {
        (3, "lastName", "REQUIRED"), (4, "email", "INVALID_EMAIL"), (4, "birthday", "INVALID_VALUE")}
    async with db.reader() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0
    # The same with dayFirst: 12/04/1990 is the 12th of April, and it is written now.
    job = await run(client, entity="CUSTOMER", content=content, mapping={**mapping, "options": {"dayFirst": True}}, mode="CREATE")
    assert job["rowsCreated"] == 1
    async with db.reader() as session:
        ann = await session.scalar(sa.select(Customer).where(Customer.external_id == "1"))
    assert ann.birthday.isoformat() == "1990-04-12"


async def test_create_mode_rejects_existing_keys_and_upsert_by_email_updates(client, db) -> None:
    mapping = {"columns": [{"source": "name", "target": "fullName"}, {"source": "email", "target": "email"},
                           {"source": "city", "target": "city"}]}
    first = (CSV_HEAD.replace("id,", "").replace(",birthday", ",city") + "Ann Lee,ANN@example.com,Paris\n").encode()
    job = await run(client, entity="CUSTOMER", content=first, mapping=mapping, mode="CREATE", key="EMAIL")
    assert job["rowsCreated"] == 1
    job = await run(client, entity="CUSTOMER", content=first, mapping=mapping, mode="CREATE", key="EMAIL")
    assert job["rowsFailed"] == 1 and job["errors"][0]["code"] == "DUPLICATE"
    moved = first.replace(b"Paris", b"Lyon")
    job = await run(client, entity="CUSTOMER", content=moved, mapping=mapping, mode="UPSERT", key="EMAIL")
    assert (job["rowsUpdated"], job["rowsCreated"]) == (1, 0)
    async with db.reader() as session:
        ann = await session.scalar(sa.select(Customer))
    assert (ann.city, ann.version) == ("Lyon", 2)


async def test_bad_requests_are_user_errors(client, settings, db) -> None:
    from crm_graph.testing.auth import make_key
    from crm_graph.testing.client import GraphQLClient, asgi_client

    content = b"name,email\nAnn,ann@example.com\n"
    payload = await start(client, entity="CUSTOMER", content=content,
                          mapping={"columns": [{"source": "Nom", "target": "fullName"}]}, mode="CREATE")
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("mapping", "NOT_FOUND")]
    payload = await start(client, entity="CUSTOMER", content=content,
                          mapping={"columns": [{"source": "name", "target": "fullName"}]}, mode="UPSERT", key="EMAIL")
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("key", "REQUIRED")]
    payload = await start(client, entity="PRODUCT", content=content, mapping={"columns": [{"source": "name", "target": "name"}]}, key="EMAIL")
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("key", "INVALID_VALUE")]
    body = await client.post("mutation { startImport(input: {entity: CUSTOMER, content: \"%%%\", mapping: {columns: []}}) { errors { field code } } }")
    assert body["data"]["startImport"]["errors"] == [{"field": "content", "code": "INVALID_VALUE"}]
    # Marketing may update customers but not create them.
    key, _ = await make_key(db, settings, role="MARKETING", email="mkt@example.com")
    async with asgi_client(client.app, key) as http:
        payload = await start(GraphQLClient(http, client.app), entity="CUSTOMER", content=content,
                              mapping={"columns": [{"source": "name", "target": "fullName"}]}, mode="CREATE")
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("entity", "FORBIDDEN")]


async def test_saved_mapping_is_reused(client, db) -> None:
    saved = await client.mutate(
        """mutation($input: SaveImportMappingInput!) { saveImportMapping(input: $input) { importMapping { id name entity } errors { code } } }""",
        {"input": {"name": "Shop export", "entity": "CUSTOMER",
                   "mapping": {"columns": [{"source": "name", "target": "fullName"}, {"source": "mail", "target": "email"}]}}})
    listed = await client.execute("{ importMappings(entity: CUSTOMER) { id name mapping } }")
    assert [m["name"] for m in listed["importMappings"]] == ["Shop export"]
    job = await run(client, entity="CUSTOMER", content="name;mail\nAnn Lee;ann@example.com\n".encode(),
                    mappingId=saved["importMapping"]["id"], key="EMAIL")
    assert job["rowsCreated"] == 1


async def test_multipart_upload_needs_the_authorization_header(client, db) -> None:
    import json as _json

    from crm_graph.imports import service

    operations = _json.dumps({"query": "mutation($f: Upload!) { startImport(input: {entity: CUSTOMER, file: $f, mode: CREATE, "
                              "mapping: {columns: [{source: \"name\", target: \"fullName\"}]}}) { importJob { id fileName } errors { code } } }",
                              "variables": {"f": None}})
    form = {"operations": operations, "map": _json.dumps({"0": ["variables.f"]})}
    files = {"0": ("people.csv", b"name\nAnn Lee\nBo Chen\n", "text/csv")}
    response = await client.http.post("/graphql", data=form, files=files)
    assert response.status_code == 200, response.text
    payload = response.json()["data"]["startImport"]
    assert payload["errors"] == [] and payload["importJob"]["fileName"] == "people.csv"
    await service.wait_background()
    async with db.reader() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 2
    # Without the Authorization header (what a cross-site form sends) the upload is refused.
    del client.http.headers["authorization"]
    response = await client.http.post("/graphql", data=form, files=files)
    assert response.status_code == 400 and "Authorization" in response.text


async def test_limits_are_clear_errors(client, db, monkeypatch) -> None:
    from crm_graph.imports import service

    mapping = {"columns": [{"source": "name", "target": "fullName"}]}
    monkeypatch.setattr(service, "MAX_FILE_BYTES", 20)
    payload = await start(client, entity="CUSTOMER", content=b"name\n" + b"Ann Lee\n" * 5, mapping=mapping, mode="CREATE")
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("file", "FILE_TOO_LARGE")]
    monkeypatch.setattr(service, "MAX_FILE_BYTES", 1_000_000)
    monkeypatch.setattr(service, "MAX_ROWS", 3)
    job = await run(client, entity="CUSTOMER", content=b"name\n" + b"Ann Lee\n" * 5, mapping=mapping, mode="CREATE")
    assert job["status"] == "FAILED" and "more than 3 rows" in job["failure"] and job["rowsDone"] == 0
    async with db.reader() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0
    payload = await start(client, entity="CUSTOMER", content=b"PK\x03\x04 not really a workbook", mapping=mapping, mode="CREATE")
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("file", "INVALID_FILE")]


async def test_create_mode_links_existing_organizations_by_name(client, db) -> None:
    mapping = {"columns": [{"source": "name", "target": "fullName"}, {"source": "company", "target": "organization"}]}
    content = "name,company\nAnn Lee,Acme GmbH\nBo Chen,Acme GmbH\n".encode()
    await run(client, entity="CUSTOMER", content=content, mapping=mapping, mode="CREATE")
    job = await run(client, entity="CUSTOMER", content="name,company\nCy Young,Acme GmbH\n".encode(), mapping=mapping, mode="CREATE")
    assert (job["rowsCreated"], job["rowsFailed"]) == (1, 0)
    async with db.reader() as session:
        orgs = list(await session.scalars(sa.select(Customer.id).where(Customer.kind == CustomerKind.ORGANIZATION)))
        linked = set(await session.scalars(sa.select(Customer.organization_id).where(Customer.kind == CustomerKind.PERSON)))
    assert len(orgs) == 1 and linked == set(orgs)


async def test_an_upsert_never_changes_a_record_its_starter_may_not_change(client, settings, db) -> None:
    """The job writes with Core statements, so the record rules are asked for each match: a
    representative whose customers are PRIVATE updates their own customer, and a row whose key
    matches a colleague's customer fails with FORBIDDEN and leaves it as it was."""
    from crm_graph.testing.auth import make_key, share
    from crm_graph.testing.client import GraphQLClient, asgi_client

    mapping = {"columns": [{"source": "name", "target": "fullName"}, {"source": "email", "target": "email"},
                           {"source": "city", "target": "city"}]}
    await share(db, "PRIVATE", "customers")
    mine, _ = await make_key(db, settings, role="SALES", email="rep.a@example.com", team="North")
    theirs, _ = await make_key(db, settings, role="SALES", email="rep.b@example.com", team="South")
    async with asgi_client(client.app, theirs) as http:
        job = await run(GraphQLClient(http, client.app), entity="CUSTOMER", content=b"name,email,city\nBo Colleague,bo@example.com,Oslo\n",
                        mapping=mapping, mode="CREATE", key="EMAIL")
    assert job["rowsCreated"] == 1
    content = b"name,email,city\nAnn Mine,ann@example.com,Paris\nBo Colleague,bo@example.com,Lyon\n"
    async with asgi_client(client.app, mine) as http:
        rep = GraphQLClient(http, client.app)
        job = await run(rep, entity="CUSTOMER", content=content, mapping=mapping, mode="UPSERT", key="EMAIL")
        assert (job["rowsCreated"], job["rowsFailed"]) == (1, 1)
        assert [(e["row"], e["code"]) for e in job["errors"]] == [(3, "FORBIDDEN")]
        again = await run(rep, entity="CUSTOMER", content=content.replace(b"Paris", b"Rome"), mapping=mapping, mode="UPSERT", key="EMAIL")
        assert (again["rowsUpdated"], again["rowsFailed"]) == (1, 1)
    async with db.reader() as session:
        cities = dict((await session.execute(sa.select(Customer.display_name, Customer.city))).all())
    assert cities == {"Ann Mine": "Rome", "Bo Colleague": "Oslo"}
