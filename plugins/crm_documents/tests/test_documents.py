"""Documents through the API, on the real LibreOffice: quotes as DOCX and PDF for a Chinese and a
German customer, the same document given again, PDFs made from the outbox, downloads by signed
URL, a pipeline report whose totals are the API's, and bad input."""

from __future__ import annotations

import base64
import io
import zipfile
from decimal import Decimal

import pytest

from documents_support import GENERATE, UPLOAD, customer, docx_text, download, pdf_text, quote, squash

CHINESE = {"name": "北京星辰科技有限公司", "locale": "zh-CN", "email": "zhang.wei@xingchen.cn",
           "address": {"line1": "建国路88号", "city": "北京市", "region": "朝阳区", "postalCode": "100022", "country": "CN"}}
GERMAN = {"name": "Müller Maschinenbau GmbH", "locale": "de-DE", "email": "einkauf@mueller-maschinenbau.de",
          "address": {"line1": "Hauptstraße 5", "city": "München", "postalCode": "80331", "country": "DE"}}
LINES = [("SRV-1", "Wartungsvertrag Premium", "1250.00", "2"), ("SEN-7", "Drucksensor 开发版", "99.90", "3"),
         ("CAB-2", "Kabelsatz 5 m", "15.50", "10")]


def grouped(amount: Decimal, thousands: str, decimal: str) -> str:
    """``amount`` with two decimals and its thousands grouped, written by hand (not by Babel)."""
    whole, frac = f"{amount:.2f}".split(".")
    groups = []
    while whole:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    return f"{thousands.join(groups)}{decimal}{frac}"


async def generate(client, **input):  # noqa: ANN001, ANN003, ANN201
    body = await client.execute(GENERATE, {"input": input})
    return body["generateDocument"]


@pytest.mark.parametrize("who", ["chinese", "german"])
async def test_a_quote_as_docx_and_pdf_in_the_customers_language(crm_client, who):
    person = CHINESE if who == "chinese" else GERMAN
    currency = "CNY" if who == "chinese" else "EUR"
    cid = await customer(crm_client, **person)
    made = await quote(crm_client, cid, currency, LINES)
    total = Decimal(made["total"]["amount"])
    if who == "german":
        expected_total, title, word = f"{grouped(total, '.', ',')} €", "Angebot", "Gesamtbetrag"
    else:
        expected_total, title, word = f"¥{grouped(total, ',', '.')}", "报价单", "总计"

    docx = await generate(crm_client, entityId=made["id"], kind="QUOTE", format="DOCX")
    assert docx["errors"] == [] and docx["created"] is True
    assert docx["document"]["status"] == "READY" and docx["document"]["format"] == "DOCX"
    assert docx["document"]["template"]["locale"] == ("zh_Hans_CN" if who == "chinese" else "de_DE")
    got = await download(crm_client, docx["document"]["downloadUrl"])
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    text = squash(docx_text(got.content))
    for expected in (person["name"], title, word, expected_total, made["number"], *(name for _, name, _, _ in LINES)):
        assert expected in text, (expected, text)

    pdf = await generate(crm_client, entityId=made["id"], kind="QUOTE", format="PDF")
    assert pdf["errors"] == [] and pdf["document"]["status"] == "READY", pdf
    assert pdf["document"]["contentType"] == "application/pdf"
    got = await download(crm_client, pdf["document"]["downloadUrl"])
    assert got.status_code == 200 and got.content.startswith(b"%PDF")
    text, pages = pdf_text(got.content)
    assert pages == 1
    for expected in (person["name"], title, expected_total, made["number"], *(name for _, name, _, _ in LINES)):
        assert expected in text, (expected, text)


async def test_the_same_record_version_gives_the_same_document(crm_client, crm_events):
    cid = await customer(crm_client, **GERMAN)
    made = await quote(crm_client, cid, "EUR", LINES[:1])
    first = await generate(crm_client, entityId=made["id"], kind="QUOTE", format="DOCX")
    again = await generate(crm_client, entityId=made["id"], kind="QUOTE", format="DOCX")
    assert again["created"] is False and again["document"]["id"] == first["document"]["id"]
    assert again["document"]["sha256"] == first["document"]["sha256"]
    assert await crm_events.types("document.*") == ["document.generated"]

    # Sending the quote changes it (a new version): a new document, the old one kept.
    await crm_client.mutate("mutation($id: ID!) { sendQuote(id: $id) { errors { code } } }", {"id": made["id"]})
    later = await generate(crm_client, entityId=made["id"], kind="QUOTE", format="DOCX")
    assert later["created"] is True and later["document"]["id"] != first["document"]["id"]
    listed = await crm_client.execute("query($id: ID!) { node(id: $id) { ... on Quote { documents { id version } } } }", {"id": made["id"]})
    assert [d["id"] for d in listed["node"]["documents"]] == [later["document"]["id"], first["document"]["id"]]
    by_customer = await crm_client.execute("query($id: ID!) { node(id: $id) { ... on Customer { documents { id } } } }", {"id": cid})
    assert len(by_customer["node"]["documents"]) == 2


async def test_a_pdf_asked_for_without_waiting_is_made_from_the_outbox(crm_client, crm_events):
    cid = await customer(crm_client, **GERMAN)
    made = await quote(crm_client, cid, "EUR", LINES[:2])
    asked = await generate(crm_client, entityId=made["id"], kind="QUOTE", format="PDF", wait=False)
    assert asked["document"]["status"] == "PENDING" and asked["document"]["downloadUrl"] is None
    assert await crm_events.types("document.*") == ["document.requested"]

    await crm_events.deliver()
    found = await crm_client.execute(f"query($id: ID!) {{ node(id: $id) {{ ... on Document {{ status size downloadUrl }} }} }}",
                                     {"id": asked["document"]["id"]})
    assert found["node"]["status"] == "READY" and found["node"]["size"] > 1000
    assert await crm_events.types("document.*") == ["document.requested", "document.generated"]
    got = await download(crm_client, found["node"]["downloadUrl"])
    assert got.content.startswith(b"%PDF") and GERMAN["name"] in pdf_text(got.content)[0]


async def test_download_links_are_signed_expire_and_follow_record_access(crm_client, crm_client_for, crm_settings, monkeypatch):
    cid = await customer(crm_client, **GERMAN)
    made = await quote(crm_client, cid, "EUR", LINES[:1])
    url = (await generate(crm_client, entityId=made["id"], kind="QUOTE", format="DOCX"))["document"]["downloadUrl"]
    assert (await download(crm_client, url)).status_code == 200

    tampered = url.replace("principal=", "principal=x")
    refused = await download(crm_client, tampered)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "BAD_SIGNATURE"

    import time as real_time

    later = real_time.time() + 3600
    monkeypatch.setattr("crm_documents.delivery.time.time", lambda: later)
    expired = await download(crm_client, url)
    assert expired.status_code == 403 and expired.json()["error"]["code"] == "LINK_EXPIRED"
    monkeypatch.undo()

    # A support agent may not read quotes: generating is refused, and the node is not theirs.
    agent = await crm_client_for("SUPPORT")
    body = await agent.execute(GENERATE, {"input": {"entityId": made["id"], "kind": "QUOTE"}})
    assert [(e["field"], e["code"]) for e in body["generateDocument"]["errors"]] == [("entityId", "FORBIDDEN")]


async def test_a_pipeline_report_in_excel_has_the_apis_totals(crm_client):
    import openpyxl

    for person, currency in ((GERMAN, "EUR"), (CHINESE, "EUR")):
        cid = await customer(crm_client, **person)
        await quote(crm_client, cid, currency, LINES)
    pipeline = (await crm_client.execute("{ pipelines(first: 1) { edges { node { id name } } } }"))["pipelines"]["edges"][0]["node"]
    api = (await crm_client.execute(
        "query($id: ID!) { pipelineSummary(pipelineId: $id) { stages { stage { name } count amount { amount } weightedAmount { amount } } "
        "openCount openAmount { amount } weightedForecast { amount } } }", {"id": pipeline["id"]}))["pipelineSummary"]
    assert api["openCount"] == 2

    made = await generate(crm_client, entityId=pipeline["id"], kind="REPORT")
    assert made["errors"] == [] and made["document"]["format"] == "XLSX"
    got = await download(crm_client, made["document"]["downloadUrl"])
    sheet = openpyxl.load_workbook(io.BytesIO(got.content))["Pipeline"]
    names = [s["stage"]["name"] for s in api["stages"]]
    rows = [r for r in sheet.iter_rows() if r[0].value in names][:len(names)]
    assert [r[0].value for r in rows] == names  # one row per stage, in the API's order
    assert rows[-1][0].row - rows[0][0].row == len(names) - 1

    def amount(value: object) -> Decimal:
        return Decimal(str(value or 0)).quantize(Decimal("0.01"))

    for stage, row in zip(api["stages"], rows, strict=True):
        assert row[2].value == stage["count"] and isinstance(row[2].value, int)
        assert amount(row[3].value) == amount((stage["amount"] or {}).get("amount"))
        assert amount(row[4].value) == amount((stage["weightedAmount"] or {}).get("amount"))
    # The totals row sums exactly the stage rows, with formulas kept for Excel to compute.
    first, last = rows[0][0].row, rows[-1][0].row
    totals = sheet.cell(row=last + 1, column=4).value
    assert totals == f"=SUM(D{first}:D{last})"
    assert sum(amount(r[3].value) for r in rows) == sum(amount((s["amount"] or {}).get("amount")) for s in api["stages"])
    open_row = next(r for r in sheet.iter_rows() if r[0].value == "Open")
    assert open_row[2].value == api["openCount"] and amount(open_row[3].value) == amount(api["openAmount"]["amount"])


def _docx_with(text: str) -> bytes:
    from docx import Document

    doc = Document()
    doc.add_paragraph(text)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


async def test_uploads_are_checked_and_versions_kept(crm_client):
    def upload(content: bytes, **extra):  # noqa: ANN003, ANN202
        return crm_client.execute(UPLOAD, {"input": {"name": "Our quote", "kind": "QUOTE", "format": "DOCX", "locale": "de-DE",
                                                     "fileBase64": base64.b64encode(content).decode(), **extra}})

    def codes(body):  # noqa: ANN001, ANN202
        return {(e["field"], e["code"]) for e in body["uploadDocumentTemplate"]["errors"]}

    assert codes(await upload(b"%PDF-1.7 not a word file")) == {("fileBase64", "NOT_THIS_FORMAT")}
    broken = await upload(_docx_with("Total: {{ quote.total"))
    assert codes(broken) == {("fileBase64", "TEMPLATE_SYNTAX")}
    unknown = await upload(_docx_with("Dear {{ contact.salutation }}, {{ quote.total }}"))
    assert codes(unknown) == {("fileBase64", "UNKNOWN_VARIABLE")}
    assert "contact" in unknown["uploadDocumentTemplate"]["errors"][0]["message"]
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", b"\0" * 200_000_000)
    assert codes(await upload(bomb.getvalue())) == {("fileBase64", "TOO_LARGE")}
    bad = await crm_client.execute(UPLOAD, {"input": {"name": "", "kind": "QUOTE", "format": "PPTX", "locale": "xx-??", "fileBase64": "@@"}})
    assert {f for f, _ in codes(bad)} == {"name", "format", "locale", "fileBase64"}

    first = (await upload(_docx_with("Angebot {{ quote.number }}: {{ quote.total }}"), isDefault=True))["uploadDocumentTemplate"]
    assert first["errors"] == [] and first["documentTemplate"]["version"] == 1
    assert first["documentTemplate"]["variables"] == ["quote"]
    cid = await customer(crm_client, **GERMAN)
    made = await quote(crm_client, cid, "EUR", LINES[:1])
    old = await generate(crm_client, entityId=made["id"], kind="QUOTE")
    assert old["document"]["template"] == {**old["document"]["template"], "name": "Our quote", "version": 1}

    second = (await upload(_docx_with("Neu {{ quote.number }}")))["uploadDocumentTemplate"]["documentTemplate"]
    assert second["version"] == 2 and second["isCurrent"] and second["isDefault"]  # it replaces the default
    listed = await crm_client.execute('{ documentTemplates(filter: {name: "Our quote", allVersions: true}) { edges { node { version isCurrent } } } }')
    assert [e["node"] for e in listed["documentTemplates"]["edges"]] == [{"version": 2, "isCurrent": True}, {"version": 1, "isCurrent": False}]
    # The document made from version 1 still names it and still downloads.
    again = await crm_client.execute("query($id: ID!) { node(id: $id) { ... on Document { template { version } downloadUrl } } }",
                                     {"id": old["document"]["id"]})
    assert again["node"]["template"]["version"] == 1
    assert "Angebot" in docx_text((await download(crm_client, again["node"]["downloadUrl"])).content)
    new = await generate(crm_client, entityId=made["id"], kind="QUOTE")
    assert new["document"]["template"]["version"] == 2 and "Neu" in docx_text((await download(crm_client, new["document"]["downloadUrl"])).content)


async def test_bad_requests_get_user_errors(crm_client):
    cid = await customer(crm_client, **GERMAN)
    made = await quote(crm_client, cid, "EUR", LINES[:1])

    def codes(body):  # noqa: ANN001, ANN202
        return {(e["field"], e["code"]) for e in body["errors"]}

    assert codes(await generate(crm_client, entityId=made["id"], kind="INVOICE")) == {("entityId", "WRONG_ENTITY")}
    assert codes(await generate(crm_client, entityId="bm9wZQ", kind="QUOTE")) == {("entityId", "INVALID_VALUE")}
    assert codes(await generate(crm_client, entityId=made["id"])) == {("kind", "REQUIRED")}
    assert codes(await generate(crm_client, entityId=made["id"], kind="QUOTE", format="XLSX")) == {("format", "UNSUPPORTED_FORMAT")}
    from crm_graph.core.ids import encode

    assert codes(await generate(crm_client, entityId=encode("Quote", 999_999), kind="QUOTE")) == {("entityId", "NOT_FOUND")}


async def test_ten_pdfs_asked_for_at_once_are_all_made_once(crm_client, crm_events):
    import asyncio

    cid = await customer(crm_client, **CHINESE)
    quotes = [await quote(crm_client, cid, "CNY", LINES[:1]) for _ in range(5)]
    # Ten requests, two for each quote: each quote gets one PDF, made once, whoever asked first.
    asked = await asyncio.gather(*(generate(crm_client, entityId=q["id"], kind="QUOTE", format="PDF") for q in quotes * 2))
    assert all(a["errors"] == [] and a["document"]["status"] == "READY" for a in asked), asked
    by_quote = {}
    for q, a in zip(quotes * 2, asked, strict=True):
        by_quote.setdefault(q["id"], set()).add(a["document"]["id"])
    assert all(len(docs) == 1 for docs in by_quote.values()) and len(by_quote) == 5
    assert sorted(a["created"] for a in asked) == [False] * 5 + [True] * 5
    assert (await crm_events.types("document.*")).count("document.generated") == 5
    for a in asked[:5]:
        text, pages = pdf_text((await download(crm_client, a["document"]["downloadUrl"])).content)
        assert CHINESE["name"] in text and pages == 1


@pytest.fixture
def files_directory(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("CRM_DOCUMENTS_STORAGE", str(tmp_path / "files"))
    return tmp_path / "files"


async def test_file_bodies_can_live_in_a_directory(files_directory, crm_client, crm_db):
    import hashlib

    import sqlalchemy as sa

    from crm_documents.models import StoredFile

    cid = await customer(crm_client, **GERMAN)
    made = await quote(crm_client, cid, "EUR", LINES[:1])
    document = (await generate(crm_client, entityId=made["id"], kind="QUOTE", format="DOCX"))["document"]
    sha = document["sha256"]
    on_disk = files_directory / sha[:2] / sha
    assert hashlib.sha256(on_disk.read_bytes()).hexdigest() == sha
    async with crm_db.reader() as session:
        assert await session.scalar(sa.select(StoredFile.content).where(StoredFile.sha256 == sha)) is None
    assert (await download(crm_client, document["downloadUrl"])).content == on_disk.read_bytes()

    on_disk.unlink()  # lost by the disk: a clear answer, not a 500
    gone = await download(crm_client, document["downloadUrl"])
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "GONE"


def test_template_uploads_have_a_size_limit():
    from crm_documents.service import _decode_file
    from crm_graph.core.errors import ErrorCollector

    errors = ErrorCollector()
    assert _decode_file(base64.b64encode(b"x" * 11).decode(), 10, errors) is None
    assert [(e.field, e.code) for e in errors.errors] == [("fileBase64", "TOO_LARGE")]
    fine = ErrorCollector()
    assert _decode_file(base64.b64encode(b"x" * 10).decode(), 10, fine) == b"x" * 10 and fine.errors == []


async def test_a_merged_customers_documents_list_under_the_survivor(crm_client):
    """mergeCustomers moves the quotes to the survivor, and crm_merge_customers the documents
    made from them, so ``Customer.documents`` shows them there."""
    survivor = await customer(crm_client, **GERMAN)
    merged = await customer(crm_client, **{**GERMAN, "email": "einkauf2@mueller-maschinenbau.de"})
    made = await quote(crm_client, merged, "EUR", LINES[:1])
    docx = await generate(crm_client, entityId=made["id"], kind="QUOTE", format="DOCX")
    merge = ("mutation($input: MergeCustomersInput!) { mergeCustomers(input: $input) { plan { plugins } "
             "errors { field code message } } }")
    done = await crm_client.mutate(merge, {"input": {"survivorId": survivor, "mergedIds": [merged]}})
    assert done["plan"]["plugins"]["crm_documents"] == {"documents": 1}
    listed = await crm_client.execute("query($id: ID!) { node(id: $id) { ... on Customer { documents { id } } } }", {"id": survivor})
    assert [d["id"] for d in listed["node"]["documents"]] == [docx["document"]["id"]]
