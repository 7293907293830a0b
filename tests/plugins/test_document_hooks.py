"""The document hooks, as a partner uses them beside the documents plugin (plugins/crm_documents):
a third engine (HTML) whose templates are uploaded and filled, a converter of its own for PDFs,
clashing engines named at start-up, and a sent quote's PDF for a mail plugin to attach (made by
the real LibreOffice)."""

from __future__ import annotations

import base64
import io

import jinja2
import jinja2.meta
import pytest

from crm_graph import hookimpl
from crm_graph.core import ids
from crm_graph.core.documents import Attachment, ConversionError, TemplateError, TemplateInfo
from crm_graph.plugins import PluginError

GENERATE = """
mutation($input: GenerateDocumentInput!) {
  generateDocument(input: $input) { document { id status format contentType fileName downloadUrl failure } errors { field code message } }
}
"""
UPLOAD = """
mutation($input: UploadDocumentTemplateInput!) {
  uploadDocumentTemplate(input: $input) { documentTemplate { id format variables } errors { field code message } }
}
"""


class HtmlEngine:
    format, content_type, extension = "HTML", "text/html; charset=utf-8", "html"

    def _env(self) -> jinja2.Environment:
        env = jinja2.Environment(autoescape=True)
        # The names of the filters the host passes to render, so that checking a template knows them.
        env.filters.update(dict.fromkeys(("money", "date", "datetime", "number", "percent"), str))
        return env

    def inspect(self, template: bytes) -> TemplateInfo:
        try:
            parsed = self._env().parse(template.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise TemplateError(TemplateError.NOT_THIS_FORMAT, "not UTF-8 text") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(TemplateError.TEMPLATE_SYNTAX, exc.message or "syntax error", f"line {exc.lineno}") from exc
        return TemplateInfo(frozenset(jinja2.meta.find_undeclared_variables(parsed)))

    def render(self, template, context, filters):  # noqa: ANN001, ANN201
        env = self._env()
        env.filters.update(filters)
        return env.from_string(template.decode("utf-8")).render(**context).encode()


class PartnerEngines:
    @hookimpl
    def crm_document_engines(self):  # noqa: ANN201
        return HtmlEngine()


class Printer:
    """The partner's converter: HTML to a 'PDF' it writes itself (the first line says so)."""

    name, sources, target = "print-shop", frozenset({"HTML"}), "PDF"

    def __init__(self) -> None:
        self.jobs: list[str] = []
        self.closed = False

    async def convert(self, document: bytes, source: str, *, timeout: float) -> bytes:
        self.jobs.append(source)
        if b"REFUSE" in document:
            raise ConversionError("the print shop cannot read this", retry=False)
        return b"%PDF-1.4\n% print-shop\n" + document

    async def aclose(self) -> None:
        self.closed = True


class PartnerConverter:
    def __init__(self) -> None:
        self.printer = Printer()

    @hookimpl
    def crm_document_converters(self, settings):  # noqa: ANN001, ANN201
        return self.printer


class SecondDocx:
    @hookimpl
    def crm_document_engines(self):  # noqa: ANN201
        engine = HtmlEngine()
        engine.format = "DOCX"  # type: ignore[misc]
        return engine


async def _quote(client) -> dict:  # noqa: ANN001
    async def made(mutation: str, field: str, data: dict) -> dict:  # noqa: ANN001
        return (await client.mutate(mutation, {"input": data}))[field]

    customer = await made("mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } errors { code } } }",
                          "customer", {"kind": "ORGANIZATION", "organizationName": "Tom & Jerry's <Cheese> Ltd", "locale": "en-GB"})
    product = await made("mutation($input: CreateProductInput!) { createProduct(input: $input) { product { id } errors { code } } }",
                         "product", {"sku": "CHS-1", "name": "Aged cheddar", "unitPrice": {"amount": "1234.50", "currency": "GBP"}})
    opp = await made("mutation($input: CreateOpportunityInput!) { createOpportunity(input: $input) { opportunity { id } errors { code } } }",
                     "opportunity", {"title": "Cheese", "customerId": customer["id"], "currency": "GBP",
                                     "lineItems": [{"productId": product["id"], "quantity": "2"}]})
    return await made("mutation($input: CreateQuoteInput!) { createQuote(input: $input) { quote { id number } errors { code } } }",
                      "quote", {"opportunityId": opp["id"], "taxRate": "20"})


async def _upload(client, text: str) -> dict:  # noqa: ANN001
    body = await client.execute(UPLOAD, {"input": {"name": "Web quote", "kind": "QUOTE", "format": "HTML", "locale": "en-GB",
                                                   "fileBase64": base64.b64encode(text.encode()).decode()}})
    return body["uploadDocumentTemplate"]


async def _get(server, url: str):  # noqa: ANN001, ANN202
    from crm_graph.testing.client import asgi_client

    async with asgi_client(server.app) as http:
        return await http.get(url.replace("http://localhost", ""))


async def test_hook_crm_document_engines_a_partner_engine_makes_documents(server_factory):
    server = await server_factory(PartnerEngines(), entry_points=True)
    client = server.client
    broken = await _upload(client, "<p>{{ quote.total </p>")
    assert [(e["field"], e["code"]) for e in broken["errors"]] == [("fileBase64", "TEMPLATE_SYNTAX")]
    unknown = await _upload(client, "<p>{{ invoice.due }}</p>")
    assert [e["code"] for e in unknown["errors"]] == ["UNKNOWN_VARIABLE"]

    uploaded = await _upload(client, "<h1>{{ labels.quote }} {{ quote.number }}</h1><p>{{ customer.name }}</p>"
                                     "<p>{{ quote.total }} / {{ quote.total_amount | money('GBP') }}</p>")
    assert uploaded["errors"] == [] and uploaded["documentTemplate"]["variables"] == ["customer", "labels", "quote"]
    quote = await _quote(client)
    made = (await client.execute(GENERATE, {"input": {"entityId": quote["id"], "templateId": uploaded["documentTemplate"]["id"]}}))["generateDocument"]
    assert made["errors"] == [] and made["document"]["format"] == "HTML" and made["document"]["status"] == "READY"
    html = (await _get(server, made["document"]["downloadUrl"])).text
    assert f"Quote {quote['number']}" in html
    assert "Tom &amp; Jerry&#39;s &lt;Cheese&gt; Ltd" in html  # the engine escapes what it prints
    assert "£2,962.80 / £2,962.80" in html  # 2 x 1,234.50 plus 20 % tax, in en-GB


async def test_hook_crm_document_engines_two_engines_for_one_format_stop_start_up(server_factory):
    with pytest.raises(PluginError, match="DOCX clashes"):
        await server_factory(SecondDocx(), entry_points=True)


async def test_hook_crm_document_converters_a_partner_converter_makes_the_pdf(server_factory):
    partner = PartnerConverter()
    server = await server_factory(PartnerEngines(), partner, entry_points=True)
    client = server.client
    template = (await _upload(client, "<p>{{ customer.name }} {{ quote.number }}</p>"))["documentTemplate"]["id"]
    quote = await _quote(client)
    made = (await client.execute(GENERATE, {"input": {"entityId": quote["id"], "templateId": template, "format": "PDF"}}))["generateDocument"]
    assert made["errors"] == [] and made["document"]["status"] == "READY", made
    assert partner.printer.jobs == ["HTML"]
    content = (await _get(server, made["document"]["downloadUrl"])).content
    assert content.startswith(b"%PDF-1.4\n% print-shop\n") and quote["number"].encode() in content

    refused = (await _upload(client, "<p>REFUSE {{ quote.number }}</p>"))["documentTemplate"]["id"]
    failed = (await client.execute(GENERATE, {"input": {"entityId": quote["id"], "templateId": refused, "format": "PDF"}}))["generateDocument"]
    assert failed["document"]["status"] == "FAILED" and "cannot read" in failed["document"]["failure"]
    assert failed["document"]["downloadUrl"] is None


async def test_hook_crm_document_attachments_gives_a_sent_quote_its_pdf(server_factory, db, settings):
    from pypdf import PdfReader

    server = await server_factory(entry_points=True)
    quote = await _quote(server.client)
    await server.client.mutate("mutation($id: ID!) { sendQuote(id: $id) { errors { code } } }", {"id": quote["id"]})
    pm = server.app.state.plugins
    pk = ids.decode_as(quote["id"], "Quote")
    answers = [await a for a in pm.hook.crm_document_attachments(
        entity_type="Quote", entity_id=pk, purpose="quote.sent", db=db, settings=settings, plugins=pm)]
    attachments = [a for answer in answers if answer for a in answer]
    assert len(attachments) == 1 and isinstance(attachments[0], Attachment)
    pdf = attachments[0]
    assert pdf.content_type == "application/pdf" and pdf.file_name.endswith(".pdf")
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert quote["number"] in text and "Aged cheddar" in text

    other = [await a for a in pm.hook.crm_document_attachments(
        entity_type="Quote", entity_id=pk, purpose="quote.accepted", db=db, settings=settings, plugins=pm)]
    assert [a for a in other if a] == []
