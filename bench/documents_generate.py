"""Time generateDocument through the API: seconds per DOCX and per PDF (cold and warm converter),
against the engine alone filling the same template (the plain-code floor), in the same run.

    .venv/bin/python bench/documents_generate.py [--quotes 20] [--postgresql]

Makes --quotes quotes of three lines (German customer), then for each: generateDocument as DOCX,
then as PDF (wait: true; the first PDF starts the converter: "cold"). The engine-alone figure
renders the shipped quote template with a quote's context, no database and no HTTP. Prints the
median seconds and the ratios; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import api_client  # noqa: E402
from crm_graph.testing.client import GraphQLClient  # noqa: E402

GENERATE = """mutation($input: GenerateDocumentInput!) { generateDocument(input: $input) {
  document { id status size } errors { code message } } }"""


async def make_quote(client: GraphQLClient, n: int) -> str:
    customer = (await client.mutate(
        "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } errors { code } } }",
        {"i": {"kind": "ORGANIZATION", "organizationName": f"Müller Maschinenbau {n} GmbH", "locale": "de-DE",
               "addresses": [{"line1": "Hauptstraße 5", "postalCode": "80331", "city": "München", "country": "DE", "primary": True}]}}))["customer"]["id"]
    items = []
    for i, (price, qty) in enumerate((("1250.00", "2"), ("99.90", "3"), ("15.50", "10"))):
        product = (await client.mutate(
            "mutation($i: CreateProductInput!) { createProduct(input: $i) { product { id } errors { code } } }",
            {"i": {"sku": f"B-{n}-{i}", "name": f"Artikel {i}", "unitPrice": {"amount": price, "currency": "EUR"}}}))["product"]["id"]
        items.append({"productId": product, "quantity": qty})
    opp = (await client.mutate(
        "mutation($i: CreateOpportunityInput!) { createOpportunity(input: $i) { opportunity { id } errors { code } } }",
        {"i": {"title": f"Deal {n}", "customerId": customer, "currency": "EUR", "lineItems": items}}))["opportunity"]["id"]
    return (await client.mutate(
        "mutation($i: CreateQuoteInput!) { createQuote(input: $i) { quote { id } errors { code } } }",
        {"i": {"opportunityId": opp, "taxRate": "19"}}))["quote"]["id"]


async def timed(client: GraphQLClient, **input: object) -> float:
    start = time.perf_counter()
    body = await client.execute(GENERATE, {"input": input})
    elapsed = time.perf_counter() - start
    payload = body["generateDocument"]
    assert payload["errors"] == [] and payload["document"]["status"] == "READY", payload
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quotes", type=int, default=20)
    parser.add_argument("--postgresql", action="store_true")
    args = parser.parse_args()

    async with api_client("documents", args.postgresql) as (app, client):
        quotes = [await make_quote(client, n) for n in range(args.quotes)]
        docx = [await timed(client, entityId=q, kind="QUOTE", format="DOCX") for q in quotes]
        pdf = [await timed(client, entityId=q, kind="QUOTE", format="PDF") for q in quotes]
        engine_alone = await render_alone(app, quotes[0], args.quotes)

    db = "PostgreSQL" if args.postgresql else "SQLite"
    docx_median, warm = statistics.median(docx), statistics.median(pdf[1:])
    print(f"generateDocument on {db}, {args.quotes} quotes of three lines (German customer):")
    print(f"  DOCX            {docx_median:.3f} s per document (median; min {min(docx):.3f}, max {max(docx):.3f})")
    print(f"  PDF, cold       {pdf[0]:.3f} s (the first: the converter process starts)")
    print(f"  PDF, warm       {warm:.3f} s per document (median; min {min(pdf[1:]):.3f}, max {max(pdf[1:]):.3f})")
    print(f"  engine alone    {engine_alone:.3f} s per DOCX (the shipped template filled, no database, no HTTP)")
    print(f"  ratios          DOCX / engine alone {docx_median / engine_alone:.2f}x; warm PDF / DOCX {warm / docx_median:.2f}x")


async def render_alone(app: object, quote_id: str, runs: int) -> float:
    from crm_documents import contexts
    from crm_documents.delivery import runtime_of
    from crm_documents.formatting import Formatter, parse_locale
    from crm_documents.models import DocumentKind
    from crm_documents.service import TEMPLATES_DIR
    from crm_graph.core import ids

    class Ctx:
        dispatcher = app.state.dispatcher  # type: ignore[attr-defined]

    runtime = runtime_of(Ctx)
    formatter = Formatter(parse_locale("de_DE"))
    async with app.state.db.reader() as session:  # type: ignore[attr-defined]
        built = await contexts.build(DocumentKind.QUOTE, session, ids.decode_as(quote_id, "Quote"), formatter, runtime.config)
    template = (TEMPLATES_DIR / "quote.docx").read_bytes()
    engine = runtime.engine("DOCX")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        engine.render(template, built.context, formatter.filters())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    asyncio.run(main())
