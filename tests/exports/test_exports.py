"""Exports through the API: each format read back with its own reader (csv, openpyxl, pyarrow),
Chinese text and money intact, the requester's access applied to the rows, clear refusals of a
bad request, and a download link that serves the requester only and expires."""

from __future__ import annotations

import asyncio
import csv
import io
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import openpyxl
import pyarrow.parquet as pq
import sqlalchemy as sa

from crm_graph.auth.models import User
from crm_graph.core import ids
from crm_graph.customers.models import Customer
from crm_graph.files import service as files
from crm_graph.files.models import StoredFile
from crm_graph.testing.auth import bearer, make_key, share
from crm_graph.testing.client import GraphQLClient, asgi_client
from tests.exports.conftest import JOB, START, download, export
from tests.sales.conftest import CREATE_ORDER, money

CREATE = "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } errors { field code message } } }"


async def _customers(client: GraphQLClient) -> dict[str, str]:
    zhang = await client.mutate(CREATE, {"input": {
        "kind": "PERSON", "firstName": "伟", "lastName": "张", "country": "CN", "tags": ["vip", "华南"],
        "emails": [{"address": "Zhang.Wei@Example.cn"}], "phones": [{"number": "13812345678"}],
    }})
    ada = await client.mutate(CREATE, {"input": {"kind": "PERSON", "firstName": "Ada", "lastName": "Lovelace", "country": "GB"}})
    org = await client.mutate(CREATE, {"input": {"kind": "ORGANIZATION", "organizationName": "深圳贸易有限公司", "country": "CN"}})
    return {"zhang": zhang["customer"]["id"], "ada": ada["customer"]["id"], "org": org["customer"]["id"]}


def _csv_rows(content: bytes) -> list[dict[str, str]]:
    assert content.startswith(b"\xef\xbb\xbf"), "CSV starts with the UTF-8 byte-order mark"
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"), newline="")))


async def test_customers_in_each_format_with_chinese_text(client):
    made = await _customers(client)
    zhang_pk = ids.decode(made["zhang"])[1]

    job = await export(client, "CUSTOMERS", "CSV")
    assert (job["rowsTotal"], job["rowsDone"], job["error"]) == (3, 3, None) and job["finishedAt"]
    assert "/files/" in job["downloadUrl"] and job["downloadUrl"].split("?")[0].endswith(".csv")
    rows = _csv_rows(await download(client, job["downloadUrl"]))
    assert [r["display_name"] for r in rows] == ["张伟", "Ada Lovelace", "深圳贸易有限公司"]
    zhang = rows[0]
    assert zhang["id"] == str(zhang_pk) and zhang["kind"] == "PERSON"
    assert (zhang["email"], zhang["phone"], zhang["tags"]) == ("zhang.wei@example.cn", "+8613812345678", "vip, 华南")
    assert zhang["country"] == "CN" and zhang["organization_id"] == "" and zhang["created_at"].endswith("Z")

    job = await export(client, "CUSTOMERS", "XLSX")
    book = openpyxl.load_workbook(io.BytesIO(await download(client, job["downloadUrl"])), read_only=True)
    sheet = list(book.worksheets[0].iter_rows(values_only=True))
    header, first = sheet[0], dict(zip(sheet[0], sheet[1]))
    assert header[:3] == ("id", "kind", "display_name") and len(sheet) == 4
    assert first["display_name"] == "张伟" and first["tags"] == "vip, 华南" and first["id"] == zhang_pk

    job = await export(client, "CUSTOMERS", "PARQUET")
    table = pq.read_table(io.BytesIO(await download(client, job["downloadUrl"])))
    assert table.num_rows == 3 and str(table.schema.field("id").type) == "int64"
    assert str(table.schema.field("created_at").type) == "timestamp[us, tz=UTC]"
    assert table.column("display_name").to_pylist() == ["张伟", "Ada Lovelace", "深圳贸易有限公司"]


async def _order(client: GraphQLClient, customer: str, currency: str, price: str, quantity: str, tax: str) -> dict[str, Any]:
    payload = await client.mutate(CREATE_ORDER, {"input": {
        "customerId": customer, "taxRate": tax,
        "lineItems": [{"description": f"茶叶 {currency}", "quantity": quantity, "unitPrice": money(price, currency)}],
    }})
    return payload["order"]


async def test_orders_and_lines_keep_money_exact(client):
    made = await _customers(client)
    cny = await _order(client, made["org"], "CNY", "99.50", "2", "13")
    jpy = await _order(client, made["ada"], "JPY", "1500", "3", "10")

    job = await export(client, "ORDERS", "CSV")
    rows = _csv_rows(await download(client, job["downloadUrl"]))
    assert [(r["number"], r["currency"], r["subtotal"], r["tax"], r["total"]) for r in rows] == [
        (cny["number"], "CNY", "199.00", "25.87", "224.87"), (jpy["number"], "JPY", "4500", "450", "4950"),
    ]
    assert rows[0]["customer_name"] == "深圳贸易有限公司" and rows[0]["tax_rate"] == "13"

    job = await export(client, "ORDERS", "PARQUET", filter={"currency": {"eq": "CNY"}})
    table = pq.read_table(io.BytesIO(await download(client, job["downloadUrl"])))
    assert str(table.schema.field("total").type) == "decimal128(19, 4)"
    assert table.to_pylist()[0]["total"] == Decimal("224.87") and table.num_rows == 1

    job = await export(client, "ORDER_LINES", "XLSX", orderFilter={"customer": {"eq": made["ada"]}})
    sheet = list(openpyxl.load_workbook(io.BytesIO(await download(client, job["downloadUrl"])), read_only=True)
                 .worksheets[0].iter_rows(values_only=True))
    line = dict(zip(sheet[0], sheet[1]))
    assert len(sheet) == 2 and line["order_number"] == jpy["number"] and line["description"] == "茶叶 JPY"
    assert (line["currency"], line["unit_price"], line["quantity"], line["total"]) == ("JPY", 1500, 3, 4500)


async def test_opportunities_and_tickets(client):
    made = await _customers(client)
    await client.mutate(
        "mutation($input: CreateOpportunityInput!) { createOpportunity(input: $input) { opportunity { id } errors { code } } }",
        {"input": {"title": "茶叶年度合同", "customerId": made["org"], "amount": money("80000", "CNY")}},
    )
    await client.mutate(
        "mutation($input: CreateTicketInput!) { createTicket(input: $input) { ticket { id } errors { code } } }",
        {"input": {"customerId": made["zhang"], "subject": "发票问题", "channel": "EMAIL", "tags": ["billing"]}},
    )
    job = await export(client, "OPPORTUNITIES", "CSV")
    (opportunity,) = _csv_rows(await download(client, job["downloadUrl"]))
    assert (opportunity["title"], opportunity["amount"], opportunity["currency"]) == ("茶叶年度合同", "80000.00", "CNY")
    assert opportunity["customer_name"] == "深圳贸易有限公司" and opportunity["stage"] and opportunity["pipeline"]
    job = await export(client, "TICKETS", "CSV", ticketFilter={"customerId": {"eq": made["zhang"]}})
    (ticket,) = _csv_rows(await download(client, job["downloadUrl"]))
    assert (ticket["subject"], ticket["customer_name"], ticket["tags"]) == ("发票问题", "张伟", "billing")
    assert ticket["number"].startswith("T-")


async def test_rows_hidden_from_the_requester_are_not_in_the_file(client, db, settings):
    await _customers(client)
    key, north = await make_key(db, settings, role="MANAGER", email="north@example.com", team="North")
    _, south = await make_key(db, settings, role="MANAGER", email="south@example.com", team="South")
    await share(db, "PRIVATE", "customers")
    async with db.writer() as session, session.begin():
        south_team = await session.scalar(sa.select(User.team_id).where(User.id == south))
        await session.execute(sa.update(Customer).values(owner_id=south, team_id=south_team))
        await session.execute(sa.update(Customer).where(Customer.display_name == "张伟").values(owner_id=north, team_id=None))
    client.http.headers.update(bearer(key))
    job = await export(client, "CUSTOMERS", "CSV")
    rows = _csv_rows(await download(client, job["downloadUrl"]))
    assert [r["display_name"] for r in rows] == ["张伟"] and job["rowsTotal"] == 1
    # A filter cannot widen it.
    job = await export(client, "CUSTOMERS", "CSV", customerFilter={"or": [{"country": {"eq": "GB"}}, {"country": {"eq": "CN"}}]})
    assert [r["display_name"] for r in _csv_rows(await download(client, job["downloadUrl"]))] == ["张伟"]


async def _errors(client: GraphQLClient, data: dict[str, Any]) -> list[tuple[str | None, str]]:
    body = await client.post(START, {"input": data})
    assert "errors" not in body, body
    payload = body["data"]["startExport"]
    assert payload["exportJob"] is None
    return [(e["field"], e["code"]) for e in payload["errors"]]


async def test_bad_requests_get_clear_errors(client, db, settings):
    assert await _errors(client, {"entity": "CUSTOMERS", "format": "CSV", "filter": {"nope": {"eq": 1}}}) == [
        ("filter.nope", "INVALID_FILTER")]
    assert await _errors(client, {"entity": "CUSTOMERS", "format": "CSV", "filter": [1]}) == [("filter", "INVALID_FILTER")]
    assert await _errors(client, {"entity": "ORDERS", "format": "CSV", "filter": {"customer": {"eq": "garbage"}}}) == [
        ("filter", "INVALID_FILTER")]
    assert await _errors(client, {"entity": "ORDERS", "format": "CSV", "customerFilter": {"country": {"eq": "CN"}}}) == [
        ("customerFilter", "INVALID_VALUE")]
    assert await _errors(client, {"entity": "TICKETS", "format": "XLSX", "filter": {}, "ticketFilter": {}}) == [
        ("ticketFilter", "INVALID_VALUE")]
    assert await _errors(client, {"entity": "ORDERS", "format": "CSV", "filter": {"total": {"gt": "lots"}}}) == [
        ("filter.total.gt", "INVALID_FILTER")]
    # A typed filter is checked by the schema first, with the path of the bad value.
    body = await client.post(START, {"input": {"entity": "ORDERS", "format": "CSV", "orderFilter": {"total": {"gt": "lots"}}}})
    assert "orderFilter.total.gt" in body["errors"][0]["message"] and body.get("data") is None
    # An unknown entity or format is refused by the schema, with the allowed values.
    body = await client.post(START, {"input": {"entity": "INVOICES", "format": "CSV"}})
    assert "INVOICES" in body["errors"][0]["message"] and body.get("data") is None
    # Without the export permission of the entity: FORBIDDEN (SUPPORT may read customers, not export them).
    key, _ = await make_key(db, settings, role="SUPPORT", email="support@example.com")
    client.http.headers.update(bearer(key))
    assert await _errors(client, {"entity": "CUSTOMERS", "format": "CSV"}) == [("entity", "FORBIDDEN")]


async def test_the_download_link_is_the_requesters_only_and_expires(app, client, db, settings):
    await _customers(client)
    job = await export(client, "CUSTOMERS", "CSV")
    url = job["downloadUrl"]
    assert _csv_rows(await download(client, url))
    other_key, other = await make_key(db, settings, role="ADMIN", email="other@example.com")
    async with asgi_client(app, other_key) as http:
        other_client = GraphQLClient(http, app)
        # Another principal does not see the job, not even as a node.
        seen = await other_client.execute(JOB, {"id": job["id"]})
        assert seen["exportJob"] is None
        node = await other_client.execute("query($id: ID!) { node(id: $id) { id } }", {"id": job["id"]})
        assert node["node"] is None
    async with asgi_client(app) as anonymous:
        # The link rewritten for another principal fails its signature.
        mine = parse_qs(urlsplit(url).query)["principal"][0]
        forged = url.replace(f"principal={quote(mine)}", f"principal=user%3A{other}")
        assert forged != url
        assert (await anonymous.get(forged)).status_code == 403
        # A link signed for another principal (as if someone made one) serves nothing either.
        async with db.reader() as session:
            stored = await session.scalar(sa.select(StoredFile).where(StoredFile.purpose == "export"))
        assert stored.owner == mine
        theirs = files.download_url(settings, "http://localhost", stored, f"user:{other}")
        assert (await anonymous.get(theirs)).status_code == 404
        # An expired link is refused.
        expired = files.download_url(settings, "http://localhost", stored, mine, ttl=-1)
        response = await anonymous.get(expired)
        assert response.status_code == 403 and response.json()["error"]["code"] == "LINK_EXPIRED"


async def test_rows_are_read_in_keyset_pages_each_once(client, db):
    from crm_graph.exports import service
    from crm_graph.exports.models import ExportEntity, ExportFormat

    for i in range(7):
        await client.mutate(CREATE, {"input": {"kind": "PERSON", "firstName": f"P{i}", "lastName": "Page"}})
    seen: list[tuple[int, int | None]] = []

    async def progress(done: int, total: int | None) -> None:
        seen.append((done, total))

    content, rows = await service.produce(db, entity=ExportEntity.CUSTOMERS, format=ExportFormat.CSV,
                                          filter={"lastName": {"eq": "Page"}}, scope=None, progress=progress, page_size=3)
    names = [r["display_name"] for r in _csv_rows(content)]
    assert rows == 7 and names == [f"P{i} Page" for i in range(7)]
    assert seen == [(0, 7), (3, 7), (6, 7), (7, 7)]


def test_text_that_looks_like_a_formula_stays_text():
    from crm_graph.exports.datasets import CUSTOMERS
    from crm_graph.exports.writers import CsvWriter, XlsxWriter

    row = {"id": 1, "display_name": '=HYPERLINK("http://evil.example","x")', "phone": "+8613812345678",
           "job_title": "-1+cmd|' /C calc'!A0", "tags": "a\x07b"}
    csv_writer = CsvWriter(CUSTOMERS.columns)
    csv_writer.write([row])
    (read,) = _csv_rows(csv_writer.finish())
    assert read["display_name"] == "'" + row["display_name"] and read["job_title"].startswith("'-1")
    assert read["phone"] == "+8613812345678"
    xlsx = XlsxWriter(CUSTOMERS.columns, "customers")
    xlsx.write([row])
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.finish())).worksheets[0]
    header = [c.value for c in sheet[1]]
    cell = sheet.cell(2, header.index("display_name") + 1)
    assert cell.data_type == "s" and cell.value == row["display_name"]
    assert sheet.cell(2, header.index("tags") + 1).value == "ab"


async def test_a_long_run_goes_on_after_its_delivery_is_postponed(client):
    from crm_graph.core.subscribers import find_subscriber
    from crm_graph.exports.subscriber import ExportRuns
    from crm_graph.testing.events import EventLog

    await _customers(client)
    runs = find_subscriber(client.app.state.dispatcher, ExportRuns)
    runs.inline_wait = 0  # as if the export took longer than a delivery waits
    started = await client.mutate(START, {"input": {"entity": "CUSTOMERS", "format": "PARQUET"}})
    totals = await EventLog(client.app).deliver()
    assert totals.postponed >= 1 and len(runs.runs) == 1
    await asyncio.gather(*runs.runs.values())
    job = (await client.execute(JOB, {"id": started["exportJob"]["id"]}))["exportJob"]
    assert job["status"] == "DONE" and job["rowsDone"] == 3 and job["downloadUrl"]
