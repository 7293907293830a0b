"""Builders for the documents tests: records made through the GraphQL API, and reading files back."""

from __future__ import annotations

import io
import re
import uuid
from typing import Any

ERRORS = "errors { field code message }"
DOCUMENT = "id fileName contentType format status size sha256 failure version downloadUrl template { id name version locale } entity { id }"
GENERATE = f"""
mutation($input: GenerateDocumentInput!) {{ generateDocument(input: $input) {{ created document {{ {DOCUMENT} }} {ERRORS} }} }}
"""
UPLOAD = f"""
mutation($input: UploadDocumentTemplateInput!) {{
  uploadDocumentTemplate(input: $input) {{ documentTemplate {{ id name kind format locale version isDefault isCurrent variables }} {ERRORS} }}
}}
"""


async def _create(client: Any, mutation: str, field: str, payload_field: str, data: dict[str, Any]) -> dict[str, Any]:
    return (await client.mutate(mutation, {"input": data}))[payload_field]


async def customer(client: Any, *, name: str, locale: str, address: dict[str, Any], email: str) -> str:
    created = await _create(client, "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } errors { field code message } } }",
                            "createCustomer", "customer", {
                                "kind": "ORGANIZATION", "organizationName": name, "locale": locale,
                                "emails": [{"address": email}], "addresses": [{**address, "primary": True}]})
    return created["id"]


async def product(client: Any, sku: str, name: str, price: str, currency: str) -> str:
    created = await _create(client, "mutation($input: CreateProductInput!) { createProduct(input: $input) { product { id } errors { field code message } } }",
                            "createProduct", "product", {"sku": sku, "name": name, "unitPrice": {"amount": price, "currency": currency}})
    return created["id"]


async def quote(client: Any, customer_id: str, currency: str, lines: list[tuple[str, str, str, str]], tax_rate: str = "19") -> dict[str, Any]:
    """A quote of ``lines`` (sku, name, unit price, quantity): its id, number and totals."""
    items = []
    suffix = uuid.uuid4().hex[:6]  # SKUs are unique: one set of products per quote
    for sku, name, price, qty in lines:
        items.append({"productId": await product(client, f"{sku}-{suffix}", name, price, currency), "quantity": qty, "description": name})
    opp = await _create(client, "mutation($input: CreateOpportunityInput!) { createOpportunity(input: $input) { opportunity { id } errors { field code message } } }",
                        "createOpportunity", "opportunity", {"title": "Deal", "customerId": customer_id, "currency": currency, "lineItems": items})
    return await _create(client, "mutation($input: CreateQuoteInput!) { createQuote(input: $input) { quote { id number version total { amount currency } } errors { field code message } } }",
                         "createQuote", "quote", {"opportunityId": opp["id"], "taxRate": tax_rate})


async def download(client: Any, url: str) -> Any:
    """GET a download URL as a browser would: with no Authorization header."""
    from crm_graph.testing.client import asgi_client

    async with asgi_client(client.app) as http:
        return await http.get(re.sub(r"^https?://[^/]+", "", url))


def docx_text(content: bytes) -> str:
    from docx import Document

    doc = Document(io.BytesIO(content))
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            parts.extend(cell.text for cell in row.cells)
    return "\n".join(parts)


def pdf_text(content: bytes) -> tuple[str, int]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(content))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    return squash(text), len(reader.pages)


def squash(text: str) -> str:
    """Every run of white space (a no-break space, a line break) as one space."""
    return re.sub(r"\s+", " ", text.replace("\u202f", " ").replace("\xa0", " "))
